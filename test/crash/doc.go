// Package crash tests that camd survives being killed. It runs the built
// camd binary ("camd run", and "camd sim" for eight simulated cameras, four
// of which flap: drops, refusals, stalls, garbage, no video) and kills camd
// with SIGKILL 50 times on one data directory: now and then during
// start-up, otherwise 0–2 s into a burst of API writes from two clients
// (adds, stops, starts, restarts, updates with and without a rename,
// removes).
//
// The test keeps a model of what each write may have done: an acknowledged
// (2xx) write has happened, one cut short by the kill may or may not have.
// After each kill it opens the store itself (package store; camd is dead)
// and checks that it opens, that every persisted status is a legal value,
// that no acknowledged add is missing (unless an acknowledged remove
// followed), that no acknowledged remove, stop, start or update was undone,
// and that nothing is there that nobody added. After each restart it checks
// start-up recovery: cameras persisted as stopped stay STOPPED, the others
// are started; every tenth restart it waits for those on the steady
// simulated cameras to be RUNNING, and after the last kill it clears every
// fault, restarts camd and waits for every resumed camera to be RUNNING,
// then stops camd with SIGTERM (exit 0). Every camd log is scanned for
// panics.
//
// The figures (kills, writes acknowledged, start-up and recovery times) are
// printed with t.Log:
//
//	CGO_ENABLED=1 go test -race -count=1 -v ./test/crash/
//
// CAMD_CRASH_SEED replays a run's random choices (the kill moments depend
// on timing too); CAMD_CRASH_ITERATIONS changes the number of kills.
package crash
