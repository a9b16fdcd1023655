#!/bin/sh
# camd package: after install or upgrade (.deb postinst, .rpm %post).
#   deb: postinst configure [OLD-VERSION] | abort-upgrade | abort-remove | ...
#   rpm: %post 1 (install) | 2 (upgrade)
# Creates the camd system user and the data dir and makes the config
# root:camd 0640; where systemd is running,
# reloads it and enables and starts camd (an upgrade restarts it if it was
# running). In a chroot or container without a running systemd it only
# enables the unit for the next boot and starts nothing.
set -e

upgrade=no
case "$1" in
	configure) [ -n "$2" ] && upgrade=yes ;;
	1) ;;
	2) upgrade=yes ;;
	abort-upgrade | abort-remove | abort-deconfigure) ;;
	*) exit 0 ;;
esac

# The camd user and group: a system account without a login or a home of
# its own (its "home" is the data dir, which systemd's StateDirectory owns).
if ! getent group camd >/dev/null 2>&1; then
	groupadd --system camd
fi
if ! getent passwd camd >/dev/null 2>&1; then
	nologin=/usr/sbin/nologin
	[ -x "$nologin" ] || nologin=/sbin/nologin
	[ -x "$nologin" ] || nologin=/bin/false
	useradd --system --gid camd --home-dir /var/lib/camd --no-create-home \
		--shell "$nologin" --comment "camd camera daemon" camd
fi

# The config can hold relay passwords: root writes it, the camd group
# reads it, no one else does. dpkg and rpm unpack it as root:root; an
# older package installed it 0644.
conf=/etc/camd/camd.yaml
if [ -f "$conf" ] && [ ! -L "$conf" ]; then
	if [ "$(stat -c %G "$conf")" = root ]; then
		chgrp camd "$conf"
	fi
	chmod g+r,o-rwx "$conf"
fi

# The data dir (systemd also creates it from StateDirectory=camd, mode 0700).
if [ ! -d /var/lib/camd ]; then
	mkdir -p /var/lib/camd
	chown camd:camd /var/lib/camd
	chmod 0700 /var/lib/camd
fi

command -v systemctl >/dev/null 2>&1 || exit 0

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if [ "$upgrade" = yes ]; then
		# Keep the administrator's choice: restart only if it was running.
		systemctl try-restart camd.service >/dev/null 2>&1 || true
	else
		systemctl enable --now camd.service >/dev/null 2>&1 || true
	fi
elif [ "$upgrade" = no ]; then
	# No running systemd (image build, chroot): enable for the next boot.
	systemctl enable camd.service >/dev/null 2>&1 || true
fi
exit 0
