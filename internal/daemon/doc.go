// Package daemon is camd run: it opens the store, binds the control API
// and the RTSP relay, starts the cameras and runs until its context is
// cancelled or it decides to stop (FD ceiling), then shuts down in order.
//
// New does everything that can fail at start-up (a locked data file, a busy
// port) and leaves nothing behind when it fails. Run owns every goroutine
// it starts and returns once they have ended. Main adds the process-level
// parts: signals (SIGTERM and SIGINT shut down, a second one exits at once,
// SIGHUP reloads) and the hard-exit backstop.
//
// Caveats: the backstop ends the process with os.Exit (or Options.Exit)
// when shutdown takes longer than Config.ShutdownDeadline, so deferred
// functions of other goroutines do not run; statuses written before that
// point are safe in the store, which bbolt keeps consistent.
package daemon
