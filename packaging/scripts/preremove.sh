#!/bin/sh
# camd package: before removal (.deb prerm, .rpm %preun).
#   deb: prerm remove | upgrade NEW-VERSION | deconfigure | failed-upgrade
#   rpm: %preun 0 (removal) | 1 (upgrade)
# On removal, stops and disables camd; on upgrade, leaves it running (the new
# package's postinstall restarts it).
set -e

case "$1" in
	remove | deconfigure | 0) ;;
	*) exit 0 ;;
esac

command -v systemctl >/dev/null 2>&1 || exit 0
if [ -d /run/systemd/system ]; then
	systemctl stop camd.service >/dev/null 2>&1 || true
fi
systemctl disable camd.service >/dev/null 2>&1 || true
exit 0
