package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/stream/sim"
)

// The relay's "stream ended" line says why: "camera removed" for a camera
// that was removed, "daemon shutting down" for one whose daemon stopped.
func TestRelayEndReason(t *testing.T) {
	s, err := sim.New(sim.Config{Cameras: 2, NoUDP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	logs := &testutil.LogBuffer{}
	d, err := New(context.Background(), Options{Config: testConfig(t.TempDir()), Stderr: logs, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for i, name := range []string{"gone", "kept"} {
		if _, err := d.Manager().Add(ctx, device.Spec{Name: name, URL: s.URL(i + 1)}, true); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 30*time.Second, name+"'s relay stream", func() bool {
			return strings.Contains(logs.String(), `msg="relay: stream started" camera=`+name)
		})
	}
	if err := d.Manager().Remove(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	out := logs.String()
	for _, want := range []string{
		`msg="relay: stream ended" camera=gone reason="camera removed"`,
		`msg="relay: stream ended" camera=kept reason="daemon shutting down"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if n := strings.Count(out, `reason="camera removed"`); n != 1 {
		t.Errorf("%d lines say camera removed, want 1 (for the camera removed)", n)
	}
}
