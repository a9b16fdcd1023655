#!/usr/bin/env bash
# make e2e-systemd: installs the camd .deb into a real systemd (booted as
# PID 1 in a systemd-nspawn container) and checks that the service behaves:
# start, READY, user, crash restart, clean stop, watchdog, no start-rate
# lockout, remove/purge/reinstall, and "camd install"/"camd uninstall".
#
# Needs root and the Debian packages systemd-container and debootstrap (and
# util-linux for nsenter). The container's root file system (Debian bookworm,
# minbase + systemd + dbus) is built once with debootstrap from the mirror
# apt already uses and cached under $CAMD_E2E_CACHE (default
# /var/cache/camd-e2e), keyed by ROOTFS_KEY; every run boots an ephemeral
# copy of it with a private network, so nothing is left behind.
#
# Prints one PASS/FAIL line per check with its timing; exits non-zero if any
# check failed.
set -uo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
DIST=${CAMD_E2E_DIST:-$REPO/dist}
CACHE=${CAMD_E2E_CACHE:-/var/cache/camd-e2e}
SUITE=bookworm
ROOTFS_KEY=$SUITE-v1 # bump when the debootstrap command changes
ROOTFS=$CACHE/rootfs-$ROOTFS_KEY
INCLUDE=systemd,systemd-sysv,dbus,procps
LOG=$(mktemp /tmp/camd-e2e-nspawn.XXXXXX.log)
FAILED=0
NSPAWN_PID=
LEADER=

say() { printf '%s\n' "$*"; }
die() {
	say "FAIL setup: $*"
	exit 1
}
now_ms() { date +%s%3N; }
secs() { # milliseconds -> "1.234s"
	printf '%d.%03ds' $(($1 / 1000)) $(($1 % 1000))
}
pass() { say "PASS $1"; }
fail() {
	say "FAIL $1"
	FAILED=$((FAILED + 1))
}

# c CMD...: run CMD inside the container.
c() { nsenter -t "$LEADER" -m -u -i -n -p -- "$@"; }
# cq CMD...: same, quietly.
cq() { c "$@" >/dev/null 2>&1; }

# wait_for SECONDS CMD...: polls CMD every 50 ms until it succeeds; sets
# WAITED (ms). Returns non-zero on time-out.
wait_for() {
	local limit=$(($1 * 1000)) start
	shift
	start=$(now_ms)
	while :; do
		if "$@" >/dev/null 2>&1; then
			WAITED=$(($(now_ms) - start))
			return 0
		fi
		WAITED=$(($(now_ms) - start))
		[ "$WAITED" -ge "$limit" ] && return 1
		sleep 0.05
	done
}

prop() { c systemctl show -p "$1" --value camd.service 2>/dev/null; }
mainpid() { prop MainPID; }
is_active() { [ "$(c systemctl is-active camd.service 2>/dev/null)" = active ]; }
is_inactive() {
	local s
	s=$(c systemctl is-active camd.service 2>/dev/null)
	[ "$s" = inactive ] || [ "$s" = unknown ]
}
# active_not PID: active with a main PID other than PID.
active_not() {
	local p
	p=$(mainpid)
	is_active && [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$1" ]
}
camera_running() {
	c camd camera show cam1 --json 2>/dev/null | grep -Eq '"state": *"RUNNING"'
}
camera_state() {
	c camd camera show cam1 --json 2>/dev/null | grep -Eo '"state": *"[A-Z]+"' | head -1
}
proc_user() { # user name of PID inside the container
	local uid
	uid=$(c awk '/^Uid:/ {print $2}' "/proc/$1/status" 2>/dev/null)
	c getent passwd "$uid" | cut -d: -f1
}
journal_tail() {
	c journalctl -u camd.service --no-pager -n "${1:-15}" 2>/dev/null | sed 's/^/    | /'
}

cleanup() {
	if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
		kill -TERM "$NSPAWN_PID" 2>/dev/null
		for _ in $(seq 1 100); do
			kill -0 "$NSPAWN_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$NSPAWN_PID" 2>/dev/null
	fi
	rm -f "$LOG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- setup -------------------------------------------------------------------

[ "$(id -u)" = 0 ] || die "needs root"
for t in systemd-nspawn debootstrap nsenter; do
	command -v "$t" >/dev/null 2>&1 || die "$t is missing (apt-get install systemd-container debootstrap util-linux)"
done
DEB=$(ls -t "$DIST"/camd_*_amd64.deb 2>/dev/null | head -1)
[ -n "$DEB" ] || die "no $DIST/camd_*_amd64.deb (run make packages)"
BIN=$DIST/camd-linux-amd64
[ -x "$BIN" ] || die "no $BIN (run make packages)"
say "package: $DEB"

# The Debian mirror apt already uses (deb822 .sources, then sources.list).
mirror() {
	local m
	m=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
	[ -z "$m" ] && m=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) {print $i; exit}}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -1)
	echo "${m:-http://deb.debian.org/debian}"
}

if [ ! -f "$ROOTFS/.camd-e2e-ready" ]; then
	MIRROR=$(mirror)
	say "building the container root file system ($SUITE from $MIRROR) in $ROOTFS ..."
	mkdir -p "$CACHE"
	tmp=$ROOTFS.tmp.$$
	rm -rf "$tmp"
	t0=$(now_ms)
	if ! debootstrap --variant=minbase --include=$INCLUDE "$SUITE" "$tmp" "$MIRROR" >"$LOG" 2>&1; then
		tail -20 "$LOG"
		rm -rf "$tmp"
		die "debootstrap failed"
	fi
	# The container has a private network: only loopback, nothing to wait for.
	touch "$tmp/.camd-e2e-ready"
	rm -rf "$ROOTFS"
	mv "$tmp" "$ROOTFS"
	say "root file system built in $(secs $(($(now_ms) - t0)))"
fi

# --- L. lintian: no errors ---------------------------------------------------
if command -v lintian >/dev/null 2>&1; then
	if out=$(lintian --fail-on error "$DEB" 2>&1); then
		pass "L lintian: no errors ($(echo "$out" | grep -c '^W:') warnings)"
	else
		fail "L lintian: $(echo "$out" | grep '^E:' | tr '\n' ' ')"
	fi
else
	fail "L lintian is missing (apt-get install lintian)"
fi

# --- 0. no running systemd (chroot-like container): install does no harm -----
check0() {
	local out t0
	t0=$(now_ms)
	out=$(systemd-nspawn -q --console=pipe -D "$ROOTFS" --ephemeral --register=no --keep-unit --private-network \
		--bind-ro="$DIST":/mnt/dist sh -c '
		set -e
		[ ! -d /run/systemd/system ] || { echo "systemd is running?"; exit 1; }
		dpkg -i /mnt/dist/'"$(basename "$DEB")"' >/dev/null
		getent passwd camd >/dev/null || { echo "no camd user"; exit 1; }
		[ "$(stat -c "%U:%G %a" /etc/camd/camd.yaml)" = "root:camd 640" ] || { echo "/etc/camd/camd.yaml is $(stat -c "%U:%G %a" /etc/camd/camd.yaml)"; exit 1; }
		[ -L /etc/systemd/system/multi-user.target.wants/camd.service ] || { echo "not enabled for boot"; exit 1; }
		if pgrep -x camd >/dev/null; then echo "camd was started"; exit 1; fi
		dpkg -P camd >/dev/null
		[ ! -e /etc/systemd/system/multi-user.target.wants/camd.service ] || { echo "still enabled after purge"; exit 1; }
		echo ok' </dev/null 2>>"$LOG")
	if [ "$out" = ok ]; then
		pass "0 without a running systemd (plain container): dpkg -i exits 0, creates the user, config root:camd 0640, enables for boot, starts nothing; dpkg -P cleans up ($(secs $(($(now_ms) - t0))))"
	else
		fail "0 without a running systemd: $out"
	fi
}
check0

t0=$(now_ms)
systemd-nspawn -D "$ROOTFS" --ephemeral --register=no --keep-unit --private-network \
	--console=passive --bind-ro="$DIST":/mnt/dist -b >"$LOG" 2>&1 &
NSPAWN_PID=$!
for _ in $(seq 1 300); do
	LEADER=$(pgrep -P "$NSPAWN_PID" 2>/dev/null | head -1)
	[ -n "$LEADER" ] && break
	kill -0 "$NSPAWN_PID" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$LEADER" ]; then
	tail -20 "$LOG"
	die "systemd-nspawn did not start a container"
fi
booted() {
	local s
	s=$(c systemctl is-system-running 2>/dev/null)
	[ "$s" = running ] || [ "$s" = degraded ]
}
if ! wait_for 120 booted; then
	tail -20 "$LOG"
	die "the container's systemd did not finish booting within 120 s ($(c systemctl is-system-running 2>&1))"
fi
say "container booted in $(secs $(($(now_ms) - t0))) (systemd PID $LEADER on the host, $(c systemctl --version | head -1))"

DEBNAME=/mnt/dist/$(basename "$DEB")

# --- 1. dpkg -i: active within 5 s, user camd, READY ------------------------
check1() {
	local t0 out pid user st
	t0=$(now_ms)
	if ! out=$(c dpkg -i "$DEBNAME" 2>&1); then
		fail "1 dpkg -i: $(echo "$out" | tail -3)"
		return
	fi
	if ! wait_for 5 is_active; then
		fail "1 dpkg -i -> active: not active $(secs $(($(now_ms) - t0))) after dpkg -i ($(prop ActiveState)/$(prop SubState))"
		journal_tail
		return
	fi
	local took=$(($(now_ms) - t0))
	out=$(c systemd-analyze verify /lib/systemd/system/camd.service 2>&1)
	if [ -n "$out" ]; then
		fail "1 systemd-analyze verify camd.service: $out"
	else
		pass "1a systemd-analyze verify /lib/systemd/system/camd.service: no output"
	fi
	pid=$(mainpid)
	user=$(proc_user "$pid")
	st=$(prop StatusText)
	if [ "$(prop Type)" = notify ] && [ "$(prop SubState)" = running ] && [ "$user" = camd ] && [ "$(prop NRestarts)" = 0 ]; then
		pass "1 dpkg -i -> active (Type=notify: READY=1 received) in $(secs "$took"), MainPID $pid runs as $user, status \"$st\""
	else
		fail "1 dpkg -i -> active in $(secs "$took") but Type=$(prop Type) SubState=$(prop SubState) user=$user NRestarts=$(prop NRestarts)"
	fi
	if [ -n "$st" ]; then
		pass "1b STATUS= reported: \"$st\""
	else
		fail "1b no STATUS= text from camd (systemctl show -p StatusText is empty)"
	fi
	if [ "$(c stat -c '%U %a' /var/lib/camd)" = "camd 700" ]; then
		pass "1c /var/lib/camd is owned by camd, mode 0700"
	else
		fail "1c /var/lib/camd: $(c stat -c '%U %a' /var/lib/camd 2>&1)"
	fi
	# The config can hold passwords: root:camd 0640, and camd (as camd)
	# read it, or it would not have started with --config.
	if [ "$(c stat -c '%U:%G %a' /etc/camd/camd.yaml)" = "root:camd 640" ]; then
		pass "1d /etc/camd/camd.yaml is root:camd, mode 0640"
	else
		fail "1d /etc/camd/camd.yaml: $(c stat -c '%U:%G %a' /etc/camd/camd.yaml 2>&1)"
	fi
	# The hardening is in force in the running process: a private user
	# namespace (camd is not uid 0's full range), a /proc without /proc/sys,
	# and the memory and task ceilings on its cgroup.
	local umap procsys mem tasks
	umap=$(c cat "/proc/$pid/uid_map" 2>&1 | awk '{print $1, $2, $3}' | tr '\n' ';')
	procsys=$(c grep -q ' /proc .*subset=pid' "/proc/$pid/mountinfo" && echo hidden || echo visible)
	mem=$(prop MemoryMax)
	tasks=$(prop TasksMax)
	if [ "$(prop PrivateUsers)" = yes ] && [ "$(prop PrivateIPC)" = yes ] && [ "$(prop ProcSubset)" = pid ] &&
		! echo "$umap" | grep -q '^0 0 4294967295;$' && [ "$procsys" = hidden ] &&
		[ "$mem" = 1073741824 ] && [ "$tasks" = 512 ]; then
		pass "1e hardening in force: PrivateUsers (uid_map $umap) PrivateIPC, ProcSubset=pid (/proc/sys $procsys), MemoryMax=$mem, TasksMax=$tasks"
	else
		fail "1e hardening: PrivateUsers=$(prop PrivateUsers) uid_map=$umap PrivateIPC=$(prop PrivateIPC) ProcSubset=$(prop ProcSubset) /proc/sys $procsys MemoryMax=$mem TasksMax=$tasks"
	fi
}

# --- 2. camera RUNNING; kill -9 -> restarted and camera RUNNING again -------
check2() {
	local t0 pid
	cq systemd-run --unit=camd-sim --property=Restart=always /usr/bin/camd sim --cameras 1 --listen 127.0.0.1:18555 --control 127.0.0.1:18556
	sim_up() { c bash -c 'exec 3<>/dev/tcp/127.0.0.1/18555'; }
	if ! wait_for 10 sim_up; then
		fail "2 camd sim did not listen on 127.0.0.1:18555: $(c journalctl -u camd-sim --no-pager -n 5 2>&1)"
		return
	fi
	if ! out=$(c camd camera add cam1 rtsp://127.0.0.1:18555/cam1 2>&1); then
		fail "2 camd camera add: $out"
		return
	fi
	if ! wait_for 15 camera_running; then
		fail "2 camera cam1 not RUNNING within 15 s ($(camera_state))"
		journal_tail
		return
	fi
	pass "2a camd camera add cam1 -> RUNNING in $(secs "$WAITED")"
	pid=$(mainpid)
	t0=$(now_ms)
	cq kill -9 "$pid"
	if ! wait_for 4 active_not "$pid"; then
		fail "2b kill -9 $pid: not restarted within RestartSec (2 s) + 2 s ($(prop ActiveState)/$(prop SubState))"
		return
	fi
	local restarted=$(($(now_ms) - t0))
	if ! wait_for 15 camera_running; then
		fail "2b restarted in $(secs "$restarted") but cam1 not RUNNING again within 15 s ($(camera_state))"
		return
	fi
	pass "2b kill -9 MainPID $pid -> restarted (MainPID $(mainpid)) in $(secs "$restarted"); cam1 RUNNING again $(secs $(($(now_ms) - t0))) after the kill, not re-added"
}

# --- 3. systemctl stop: inactive within 3 s, clean; start -> camera back ----
check3() {
	local t0 took
	t0=$(now_ms)
	c systemctl stop camd.service
	took=$(($(now_ms) - t0))
	local status result
	status=$(prop ExecMainStatus)
	result=$(prop Result)
	if is_inactive && [ "$took" -le 3000 ] && [ "$status" = 0 ] && [ "$result" = success ]; then
		pass "3a systemctl stop -> inactive in $(secs "$took"), ExecMainStatus=$status Result=$result"
	else
		fail "3a systemctl stop took $(secs "$took"): $(c systemctl is-active camd.service) ExecMainStatus=$status Result=$result"
		journal_tail
	fi
	t0=$(now_ms)
	c systemctl start camd.service
	if wait_for 15 camera_running; then
		pass "3b systemctl start -> active and cam1 RUNNING in $(secs $(($(now_ms) - t0)))"
	else
		fail "3b systemctl start: cam1 not RUNNING within 15 s ($(camera_state), $(prop ActiveState))"
	fi
}

# --- 3c. systemctl reload (SIGHUP) does not kill camd ------------------------
check3c() {
	local pid n0
	pid=$(mainpid)
	n0=$(prop NRestarts)
	if ! out=$(c systemctl reload camd.service 2>&1); then
		fail "3c systemctl reload: $out"
		return
	fi
	sleep 2
	if is_active && [ "$(mainpid)" = "$pid" ] && [ "$(prop NRestarts)" = "$n0" ] && camera_running; then
		pass "3c systemctl reload (SIGHUP): same MainPID $pid 2 s later, no restart, cam1 RUNNING"
	else
		fail "3c systemctl reload: MainPID $pid -> $(mainpid), NRestarts $n0 -> $(prop NRestarts), $(prop ActiveState), cam1 $(camera_state)"
		journal_tail
	fi
}

# --- 4. watchdog: SIGSTOP with WatchdogSec=3 -> killed and restarted --------
check4() {
	local pid t0
	c mkdir -p /run/systemd/system/camd.service.d
	c sh -c 'printf "[Service]\nWatchdogSec=3\n" >/run/systemd/system/camd.service.d/e2e-watchdog.conf'
	c systemctl daemon-reload
	c systemctl restart camd.service
	if ! wait_for 5 is_active || [ "$(prop WatchdogUSec)" != 3s ]; then
		fail "4 restart with WatchdogSec=3: $(prop ActiveState), WatchdogUSec=$(prop WatchdogUSec)"
		return
	fi
	# Still alive after two watchdog periods: camd pets the watchdog.
	pid=$(mainpid)
	local n0
	n0=$(prop NRestarts)
	sleep 6.5
	if [ "$(mainpid)" != "$pid" ] || [ "$(prop NRestarts)" != "$n0" ] || ! is_active; then
		fail "4a camd did not survive 6.5 s with WatchdogSec=3 (does it send WATCHDOG=1?)"
		journal_tail
		return
	fi
	pass "4a camd petted the watchdog: same MainPID $pid after 6.5 s with WatchdogSec=3"
	t0=$(now_ms)
	cq kill -STOP "$pid"
	if wait_for 12 active_not "$pid"; then
		pass "4b kill -STOP $pid -> watchdog killed it, restarted as MainPID $(mainpid) in $(secs "$WAITED")"
	else
		fail "4b kill -STOP $pid: not restarted within 12 s ($(prop ActiveState)/$(prop SubState), MainPID $(mainpid))"
		journal_tail
		cq kill -CONT "$pid"
	fi
	c rm -f /run/systemd/system/camd.service.d/e2e-watchdog.conf
	c systemctl daemon-reload
	c systemctl restart camd.service
	wait_for 5 is_active
}

# --- 5. 20 kill -9 in a row: still restarted after the last -----------------
check5() {
	local i pid t0 n0 worst=0
	n0=$(prop NRestarts)
	t0=$(now_ms)
	for i in $(seq 1 20); do
		pid=$(mainpid)
		cq kill -9 "$pid"
		if ! wait_for 6 active_not "$pid"; then
			fail "5 kill -9 #$i (PID $pid): not restarted within 6 s ($(prop ActiveState)/$(prop SubState) Result=$(prop Result))"
			journal_tail
			return
		fi
		[ "$WAITED" -gt "$worst" ] && worst=$WAITED
	done
	local n1
	n1=$(prop NRestarts)
	if wait_for 15 camera_running; then
		pass "5 20 kill -9 in a row: restarted every time (NRestarts $n0 -> $n1, slowest restart $(secs "$worst"), $(secs $(($(now_ms) - t0))) in all); cam1 RUNNING"
	else
		fail "5 20 kills: restarted every time but cam1 not RUNNING afterwards ($(camera_state))"
	fi
}

# --- 6. dpkg -r stops and removes; dpkg -P removes state; reinstall ---------
check6() {
	local t0 out
	t0=$(now_ms)
	if ! out=$(c dpkg -r camd 2>&1); then
		fail "6a dpkg -r: $out"
		return
	fi
	local took=$(($(now_ms) - t0))
	if is_inactive && ! cq test -e /lib/systemd/system/camd.service && [ "$(prop LoadState)" = not-found ] &&
		! cq pgrep -x camd -u camd && cq test -f /var/lib/camd/camd.db; then
		pass "6a dpkg -r in $(secs "$took"): service stopped, unit removed (LoadState=not-found), no camd process, state kept"
	else
		fail "6a dpkg -r: active=$(c systemctl is-active camd.service) LoadState=$(prop LoadState) unit=$(c ls /lib/systemd/system/camd.service 2>&1) procs=$(c pgrep -a -u camd 2>&1) state=$(c ls /var/lib/camd 2>&1)"
	fi
	c dpkg -P camd >/dev/null 2>&1
	if ! cq test -e /var/lib/camd && ! cq getent passwd camd && ! cq test -e /etc/camd/camd.yaml; then
		pass "6b dpkg -P: /var/lib/camd, /etc/camd/camd.yaml and the camd user removed"
	else
		fail "6b dpkg -P: left $(c ls -d /var/lib/camd /etc/camd/camd.yaml 2>/dev/null) $(c getent passwd camd)"
	fi
	t0=$(now_ms)
	if c dpkg -i "$DEBNAME" >/dev/null 2>&1 && wait_for 5 is_active; then
		pass "6c reinstall: active in $(secs $(($(now_ms) - t0))) as $(proc_user "$(mainpid)")"
	else
		fail "6c reinstall: $(prop ActiveState)/$(prop SubState)"
		journal_tail
	fi
	c dpkg -P camd >/dev/null 2>&1
}

# --- 7. camd install / camd uninstall ----------------------------------------
check7() {
	local t0 out
	c install -m 0755 /mnt/dist/camd-linux-amd64 /usr/local/bin/camd
	t0=$(now_ms)
	if ! out=$(c /usr/local/bin/camd install 2>&1); then
		fail "7a camd install: $out"
		journal_tail
		return
	fi
	if ! wait_for 5 is_active; then
		fail "7a camd install: not active within 5 s ($(prop ActiveState)/$(prop SubState)): $out"
		journal_tail
		return
	fi
	local took=$(($(now_ms) - t0))
	# The same unit as the package's, but for the ExecStart line.
	local diffout
	diffout=$(c sh -c 'dpkg-deb --fsys-tarfile '"$DEBNAME"' | tar -xO ./lib/systemd/system/camd.service | grep -v ^ExecStart= >/tmp/pkg.unit;
		grep -v ^ExecStart= /etc/systemd/system/camd.service | diff /tmp/pkg.unit -' 2>&1)
	local exec
	exec=$(c grep ^ExecStart= /etc/systemd/system/camd.service)
	if [ -z "$diffout" ] && [ "${exec#ExecStart=/usr/local/bin/camd run }" != "$exec" ] && [ "$(proc_user "$(mainpid)")" = camd ] &&
		[ -z "$(c systemd-analyze verify /etc/systemd/system/camd.service 2>&1)" ]; then
		pass "7a camd install -> active in $(secs "$took") as camd; /etc/systemd/system/camd.service = the packaged unit with $exec; verify clean"
	else
		fail "7a camd install: unit differs from the package's ($diffout) or $exec or user $(proc_user "$(mainpid)")"
	fi
	if c camd service status | grep -q running; then
		pass "7b camd service status: $(c camd service status)"
	else
		fail "7b camd service status: $(c camd service status 2>&1)"
	fi
	local pid
	pid=$(mainpid)
	cq kill -9 "$pid"
	if wait_for 4 active_not "$pid"; then
		pass "7c installed service: kill -9 -> restarted in $(secs "$WAITED")"
	else
		fail "7c installed service: kill -9 -> not restarted within 4 s"
	fi
	t0=$(now_ms)
	if out=$(c /usr/local/bin/camd uninstall 2>&1) && is_inactive && ! cq test -e /etc/systemd/system/camd.service &&
		[ "$(prop LoadState)" = not-found ] && ! cq pgrep -x camd -u camd; then
		pass "7d camd uninstall in $(secs $(($(now_ms) - t0))): stopped, unit removed"
	else
		fail "7d camd uninstall: $out; active=$(c systemctl is-active camd.service) LoadState=$(prop LoadState)"
	fi
	out=$(c camd service status 2>&1)
	if [ $? -ne 0 ] && echo "$out" | grep -q "not installed"; then
		pass "7e camd service status after uninstall: $out"
	else
		fail "7e camd service status after uninstall: $out"
	fi
}

check1
check2
check3
check3c
check4
check5
check6
check7

if [ "$FAILED" -ne 0 ]; then
	say "e2e-systemd: $FAILED check(s) FAILED"
	exit 1
fi
say "e2e-systemd: all checks passed"
