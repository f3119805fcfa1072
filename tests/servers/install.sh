#!/bin/sh
# Install the system packages the real test servers and clients need (Debian/Ubuntu, apt-get):
# the Dovecot the test harness runs (tests/servers/dovecot.py), its IMAP and POP3 daemons, and
# the headless Chromium the ops-page tests drive with Playwright (tests/web/; Playwright never
# downloads a browser of its own).  Idempotent: does nothing when all are there.  Must run as
# root.  The package's own system instance is not used by the tests
# (each test starts a private instance on free loopback ports); on a host with systemd you may
# stop it with `systemctl disable --now dovecot`.
set -eu

PACKAGES="dovecot-imapd dovecot-pop3d chromium"

missing=""
for package in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $package"
    fi
done

if [ -z "$missing" ]; then
    echo "install.sh: already installed:$(for p in $PACKAGES; do printf ' %s' "$p"; done)"
    echo "install.sh: $(dovecot --version 2>/dev/null || /usr/sbin/dovecot --version)"
    echo "install.sh: $(chromium --version 2>/dev/null)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: missing:$missing; run this script as root (e.g. sudo $0)." >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: missing:$missing and apt-get is not available; install Dovecot 2.3" \
         "(IMAP and POP3) and Chromium with this system's package manager." >&2
    exit 1
fi

echo "install.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# A stale package index makes the install fail with 404s: refresh it once and retry.
# shellcheck disable=SC2086
if ! apt-get install -y --no-install-recommends $missing; then
    apt-get update
    apt-get install -y --no-install-recommends $missing
fi
echo "install.sh: installed:$missing ($(/usr/sbin/dovecot --version);" \
     "$(chromium --version 2>/dev/null))"
