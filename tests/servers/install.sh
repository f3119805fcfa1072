#!/bin/sh
# Install the system packages the real test servers and clients need (Debian/Ubuntu, apt-get):
# the Dovecot the test harness runs (tests/servers/dovecot.py), its IMAP and POP3 daemons, the
# Cyrus IMAP of tests/servers/cyrus.py, and the headless Chromium the ops-page tests drive with
# Playwright (tests/web/; Playwright never downloads a browser of its own).  Idempotent: does
# nothing when all are there.  Must run as root.  The packages' own system instances are not
# used by the tests (each test starts a private instance on free loopback ports); on a host
# with systemd you may stop them with `systemctl disable --now dovecot cyrus-imapd`.
#
# Cyrus' daemons come in cyrus-imapd and cyrus-pop3d, which Conflict with dovecot-imapd and
# dovecot-pop3d (all Provide imap-server): `apt-get install cyrus-imapd` would REMOVE Dovecot.
# So only cyrus-common (master, ctl_cyrusdb, reconstruct), cyrus-admin and the SASL tools are
# installed as packages, and the two .deb files are fetched with `apt-get download` and
# unpacked with `dpkg -x` into CYRUS_DIR, a folder of the tests' own; their libraries all come
# with cyrus-common.  CYRUS_DIR/version holds the unpacked version: when it differs from
# cyrus-common's (after an upgrade), they are fetched again.
set -eu

PACKAGES="dovecot-imapd dovecot-pop3d cyrus-common cyrus-admin sasl2-bin libsasl2-modules chromium"
CYRUS_DIR="${ACKMAIL_TEST_CYRUS_DIR:-/opt/ackmail-tests/cyrus}"
CYRUS_DAEMONS="cyrus-imapd cyrus-pop3d"

missing=""
for package in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $package"
    fi
done

cyrus_version() {
    dpkg-query -W -f='${Version}' cyrus-common 2>/dev/null || true
}

cyrus_unpacked() {
    [ -x "$CYRUS_DIR/usr/lib/cyrus/bin/imapd" ] && [ -x "$CYRUS_DIR/usr/lib/cyrus/bin/pop3d" ] \
        && [ "$(cat "$CYRUS_DIR/version" 2>/dev/null)" = "$(cyrus_version)" ]
}

if [ -z "$missing" ] && cyrus_unpacked; then
    echo "install.sh: already installed:$(for p in $PACKAGES; do printf ' %s' "$p"; done)," \
         "Cyrus daemons $(cat "$CYRUS_DIR/version") in $CYRUS_DIR"
    echo "install.sh: $(dovecot --version 2>/dev/null || /usr/sbin/dovecot --version)"
    echo "install.sh: $(chromium --version 2>/dev/null)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: missing:$missing (or the Cyrus daemons in $CYRUS_DIR); run this script" \
         "as root (e.g. sudo $0)." >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: missing:$missing and apt-get is not available; install Dovecot 2.3" \
         "(IMAP and POP3), Cyrus IMAP 3 and Chromium with this system's package manager." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if [ -n "$missing" ]; then
    echo "install.sh: installing:$missing"
    # A stale package index makes the install fail with 404s: refresh it once and retry.
    # shellcheck disable=SC2086
    if ! apt-get install -y --no-install-recommends $missing; then
        apt-get update
        apt-get install -y --no-install-recommends $missing
    fi
    echo "install.sh: installed:$missing ($(/usr/sbin/dovecot --version);" \
         "$(chromium --version 2>/dev/null))"
fi

if ! cyrus_unpacked; then
    version="$(cyrus_version)"
    download="$(mktemp -d)"
    trap 'rm -rf "$download"' EXIT
    # The daemons must match cyrus-common exactly (it holds their libraries and tools).
    # shellcheck disable=SC2086
    (cd "$download" && chmod 777 . && apt-get download $(for p in $CYRUS_DAEMONS; do
        printf ' %s=%s' "$p" "$version"; done))
    rm -rf "$CYRUS_DIR"
    mkdir -p "$CYRUS_DIR"
    for deb in "$download"/*.deb; do
        dpkg -x "$deb" "$CYRUS_DIR"
    done
    echo "$version" > "$CYRUS_DIR/version"
    echo "install.sh: unpacked$(for p in $CYRUS_DAEMONS; do printf ' %s' "$p"; done)" \
         "$version into $CYRUS_DIR (not installed: they would remove Dovecot)"
fi
