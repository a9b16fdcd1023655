// Package device keeps cameras running.
//
// Each camera has one supervisor, the only owner and writer of that
// camera's state. Its decisions are a pure state machine (machine.go), a
// table of rules (machine_rules.go) that go generate also writes into
// docs/ARCHITECTURE.md#the-camera-state-machine. The supervisor's run loop
// (supervisor.go) feeds it events (operator commands, how a reader's
// connection attempt ended, the first frame, its timers firing) and carries
// out what it decides: launching a reader (one connection attempt, see
// package stream), arming deadlines, persisting a status, emitting an
// event. Others ask a supervisor for things through its methods, which
// talk to its goroutine over channels.
//
// The Manager owns the set of supervisors: it adds, removes, starts and
// stops cameras, persists status changes to the store (batched, and only
// when a persisted status changes), recovers cameras at start-up and stops
// them all at shutdown.
package device
