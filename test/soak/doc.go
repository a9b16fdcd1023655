// Package soak is camd's soak test: "make soak" (SOAK=2m by default) runs
// TestSoak for the duration in CAMD_SOAK; without CAMD_SOAK the test skips,
// so that "go test ./..." does not run it.
//
// It runs the built camd binary: "camd sim" with 64 simulated cameras, and
// "camd run" (short supervision thresholds: stall 3 s, backoff cap 2 s)
// with all 64 added. For a warm-up (a sixth of the duration, 15 s to 1 min)
// and then for the rest, it applies a random schedule of every fault kind
// (stall, one-shot and timed drops, refuse, garbage, no video; about two a
// second, 1–12 s each) while relay readers (gortsplib clients playing or
// only describing a camera), API clients (reads, restarts, stops and
// starts, extra cameras added, updated and removed, requests given up
// half-way) and raw connections dropped half-way come and go.
//
// After each phase every fault is cleared and the load undoes its changes;
// every camera must then be RUNNING within stall threshold + backoff cap
// (plus a little slack for the handshake and a loaded machine) of its fault
// clearing. camd is then sampled at rest. Open FDs (/proc/PID/fd) and
// goroutines (go_goroutines from /metrics) at the end must not exceed
// their values at rest after start-up. RSS (/proc/PID/status) must have
// grown by less than 10% from the rest after the warm-up: the first relay
// readers and API clients fill pools and caches that stay (a few percent,
// printed with the RSS over post-start-up, split into private memory and
// mapped files). The store file stays under 1 MiB. Every 5 s a sample is
// taken as well; the whole series is printed.
// Finally camd must exit 0 on SIGTERM, neither log may show a panic, and
// the store must hold the 64 cameras, all persisted as running.
//
//	CAMD_SOAK=2m go test -count=1 -v -run TestSoak ./test/soak/
//
// CAMD_SOAK_SEED replays a run's random schedule.
package soak
