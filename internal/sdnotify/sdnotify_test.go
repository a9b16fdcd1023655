package sdnotify

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestSendWithoutSocketIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	ok, err := Ready()
	if ok || err != nil {
		t.Fatalf("Ready() = %v, %v; want false, nil", ok, err)
	}
}

func TestSendDeliversToSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", path)

	for _, tc := range []struct {
		send func() (bool, error)
		want string
	}{
		{Ready, "READY=1"},
		{func() (bool, error) { return Status("2 cameras: 2 running") }, "STATUS=2 cameras: 2 running"},
		{Watchdog, "WATCHDOG=1"},
		{Stopping, "STOPPING=1"},
	} {
		if ok, err := tc.send(); !ok || err != nil {
			t.Fatalf("send %q = %v, %v", tc.want, ok, err)
		}
		buf := make([]byte, 256)
		_ = ln.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:n]); got != tc.want {
			t.Fatalf("got %q, want %q", got, tc.want)
		}
	}
}

func TestSendToMissingSocketFails(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nope.sock"))
	if ok, err := Ready(); !ok || err == nil {
		t.Fatalf("Ready() = %v, %v; want true and an error", ok, err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	if d := WatchdogInterval(); d != 0 {
		t.Fatalf("unset: %v", d)
	}
	t.Setenv("WATCHDOG_USEC", "4000000")
	t.Setenv("WATCHDOG_PID", "")
	if d := WatchdogInterval(); d != 4*time.Second {
		t.Fatalf("got %v", d)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if d := WatchdogInterval(); d != 0 {
		t.Fatalf("other pid: %v", d)
	}
	t.Setenv("WATCHDOG_PID", strconv.Itoa(osGetpid()))
	if d := WatchdogInterval(); d != 4*time.Second {
		t.Fatalf("own pid: %v", d)
	}
}
