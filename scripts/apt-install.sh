#!/bin/sh
# Install Debian/Ubuntu packages that are missing, where apt and root (or sudo) are at hand.
# Without them, say so and go on: the data falls back to a download, browser tests skip.
set -u
missing=""
for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: no apt-get here; not installing$missing"
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "note: not root; not installing$missing (sudo apt-get install$missing)"
    exit 0
fi
echo "apt-get install$missing"
$SUDO apt-get update -q >/dev/null \
    && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing >/dev/null \
    || echo "note: apt-get could not install$missing"
