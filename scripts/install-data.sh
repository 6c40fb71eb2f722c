#!/bin/sh
# Install the Debian/Ubuntu package dataset-fashion-mnist where apt is available;
# otherwise leave it to `fmnist data` to download into the user cache.
set -u
if [ -d /usr/share/datasets/fashion-mnist ] || ! command -v apt-get >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "note: not root; skipping apt-get install dataset-fashion-mnist, will download instead"
    exit 0
fi
echo "installing the dataset-fashion-mnist package"
$SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null \
    || echo "note: apt-get could not install dataset-fashion-mnist; will download instead"
