#!/usr/bin/env bash
# The whole test suite, exactly as README.md gives it (and as .ci/run calls it).
# Installs what the tests need first: Python packages into ./.venv, and the system
# packages of the real test servers (Dovecot) when they are missing and this user can.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test,postgres]' \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
if [ -f tests/servers/install.sh ]; then
    bash tests/servers/install.sh
fi
exec .venv/bin/python -m pytest "$@"
