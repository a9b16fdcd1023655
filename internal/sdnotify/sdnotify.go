// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)) without cgo.
//
// Every function is a no-op that returns (false, nil) when NOTIFY_SOCKET is
// not set, so callers need not know whether they run under systemd.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Send sends one notification, such as "READY=1" or "STATUS=…". It reports
// whether a notification socket was found.
func Send(state string) (bool, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	// A leading '@' names a socket in the abstract namespace.
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return true, fmt.Errorf("sd_notify: dial %s: %w", os.Getenv("NOTIFY_SOCKET"), err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return true, fmt.Errorf("sd_notify: send: %w", err)
	}
	return true, nil
}

// Ready tells systemd that start-up is finished.
func Ready() (bool, error) { return Send("READY=1") }

// Stopping tells systemd that shutdown has begun.
func Stopping() (bool, error) { return Send("STOPPING=1") }

// Reloading tells systemd that the configuration is being reloaded; call
// Ready when done.
func Reloading() (bool, error) {
	return Send("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10))
}

// Status sets the one-line status shown by systemctl status.
func Status(s string) (bool, error) { return Send("STATUS=" + s) }

// Watchdog pets the systemd watchdog.
func Watchdog() (bool, error) { return Send("WATCHDOG=1") }

// WatchdogInterval returns the watchdog timeout systemd expects pings
// within (WatchdogSec), or 0 when the watchdog is not enabled for this
// process. Ping at half of it or more often.
func WatchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond
}
