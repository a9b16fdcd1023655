#!/bin/sh
# camd package: after removal (.deb postrm, .rpm %postun).
#   deb: postrm remove | purge | upgrade NEW-VERSION | abort-install | ...
#   rpm: %postun 0 (removal) | 1 (upgrade)
# Tells systemd the unit is gone. Only a purge (.deb) removes camd's state
# (/var/lib/camd: the camera database and the API token) and the camd user;
# a plain removal keeps them, so reinstalling brings the cameras back.
set -e

case "$1" in
	remove | purge | 0) ;;
	*) exit 0 ;;
esac

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	systemctl reset-failed camd.service >/dev/null 2>&1 || true
fi

if [ "$1" = purge ]; then
	rm -rf /var/lib/camd
	if getent passwd camd >/dev/null 2>&1; then
		userdel camd >/dev/null 2>&1 || true
	fi
	if getent group camd >/dev/null 2>&1; then
		groupdel camd >/dev/null 2>&1 || true
	fi
fi
exit 0
