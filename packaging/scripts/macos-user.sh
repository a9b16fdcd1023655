#!/bin/sh
# camd on macOS: the _camd user and group that launchd runs camd as
# (UserName and GroupName in com.camd.camd.plist), and the dirs camd
# writes, owned by them. Run as root by the .pkg's preinstall and by
# "camd install"; running it again changes nothing.
#
# The user is hidden, has no password, no login shell and no home, and
# gets the lowest id from 200 to 499 that is free as both a user id and a
# group id (macOS's range for system daemons).
set -e
name=_camd
data="/Library/Application Support/camd"
logs=/Library/Logs/camd

if ! dscl . -read "/Groups/$name" PrimaryGroupID >/dev/null 2>&1 ||
	! dscl . -read "/Users/$name" UniqueID >/dev/null 2>&1; then
	used=$( (dscl . -list /Users UniqueID; dscl . -list /Groups PrimaryGroupID) | awk '{print $2}')
	id=200
	while printf '%s\n' "$used" | grep -qx "$id"; do
		id=$((id + 1))
	done
	[ "$id" -lt 500 ] || { echo "macos-user.sh: no free id from 200 to 499 for $name" >&2; exit 1; }
fi
if ! dscl . -read "/Groups/$name" PrimaryGroupID >/dev/null 2>&1; then
	dscl . -create "/Groups/$name"
	dscl . -create "/Groups/$name" PrimaryGroupID "$id"
	dscl . -create "/Groups/$name" RealName "camd camera daemon"
	dscl . -create "/Groups/$name" Password '*'
fi
gid=$(dscl . -read "/Groups/$name" PrimaryGroupID | awk '{print $2}')
if ! dscl . -read "/Users/$name" UniqueID >/dev/null 2>&1; then
	dscl . -create "/Users/$name"
	dscl . -create "/Users/$name" UniqueID "$id"
	dscl . -create "/Users/$name" PrimaryGroupID "$gid"
	dscl . -create "/Users/$name" RealName "camd camera daemon"
	dscl . -create "/Users/$name" UserShell /usr/bin/false
	dscl . -create "/Users/$name" NFSHomeDirectory /var/empty
	dscl . -create "/Users/$name" Password '*'
	dscl . -create "/Users/$name" IsHidden 1
fi

# The state (camd.db, the API token) and the log: camd's own. A state dir
# left by an older camd that ran as root is handed over with its files.
mkdir -p "$data" "$logs"
chown -R "$name:$name" "$data" "$logs"
chmod 0700 "$data"
chmod 0755 "$logs"
exit 0
