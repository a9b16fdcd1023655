#!/bin/sh
# camd .pkg preinstall (macOS): on an upgrade, unload the running daemon so
# that the new binary and plist take effect when postinstall loads it again.
# $3 is the target volume.
[ "${3:-/}" = / ] || exit 0
launchctl bootout system/com.camd.camd >/dev/null 2>&1 || true
exit 0
