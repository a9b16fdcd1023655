// Package device keeps cameras running.
//
// Each camera has one Supervisor, the only owner and writer of that camera's
// state. It runs the state machine described in
// docs/ARCHITECTURE.md#the-camera-state-machine: it starts a reader (one
// connection attempt, see package stream), watches for frames with a
// deadline, and decides when to retry, when a stream has stalled, when a
// flapping camera counts as crashed and when to force a full restart. Others
// ask it for things through its methods, which talk to its goroutine over
// channels.
//
// The Manager owns the set of supervisors: it adds, removes, starts and
// stops cameras, persists status changes to the store (batched, and only
// when a persisted status changes), recovers cameras at start-up and stops
// them all at shutdown.
package device
