#!/bin/sh
# camd .pkg postinstall (macOS): put the default config in place (never over
# an existing one; root:_camd 0640), create the log dir, and load the
# launchd daemon, which
# starts camd now (RunAtLoad) and keeps it running (KeepAlive).
# $3 is the target volume; loading only makes sense on the running system.
set -e
target=${3:-/}
conf="$target/usr/local/etc/camd/camd.yaml"
default="$target/usr/local/share/camd/camd.yaml.default"
mkdir -p "$target/usr/local/etc/camd" "$target/Library/Logs/camd"
if [ ! -f "$conf" ] && [ -f "$default" ]; then
	cp "$default" "$conf"
	chmod 0640 "$conf"
fi
# The config can hold relay passwords: root writes it, the _camd group
# reads it, no one else does. An older package installed it 0644.
if [ -f "$conf" ] && [ ! -L "$conf" ]; then
	if [ "$target" = / ] && [ "$(stat -f %Sg "$conf")" = wheel ]; then
		chgrp _camd "$conf"
	fi
	chmod g+r,o-rwx "$conf"
fi
plist="$target/Library/LaunchDaemons/com.camd.camd.plist"
chown root:wheel "$plist"
chmod 0644 "$plist"
[ "$target" = / ] || exit 0
launchctl bootout system/com.camd.camd >/dev/null 2>&1 || true
launchctl bootstrap system "$plist"
launchctl enable system/com.camd.camd
exit 0
