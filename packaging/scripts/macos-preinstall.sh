#!/bin/sh
# camd .pkg preinstall (macOS): on an upgrade, unload the running daemon so
# that the new binary and plist take effect when postinstall loads it again;
# then create the _camd user and group camd runs as, and its dirs
# (macos-user.sh, next to this script in the package). $3 is the target
# volume; the user is created only on the running system.
[ "${3:-/}" = / ] || exit 0
launchctl bootout system/com.camd.camd >/dev/null 2>&1 || true
sh "$(dirname "$0")/macos-user.sh" || exit 1
exit 0
