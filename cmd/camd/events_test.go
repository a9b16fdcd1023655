package main

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// jsonEvents decodes camd events --json output, one event a line.
func jsonEvents(t *testing.T, out string) []events.Event {
	t.Helper()
	var evs []events.Event
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var e events.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("camd events --json printed %q: %v", line, err)
		}
		evs = append(evs, e)
	}
	return evs
}

func evKinds(evs []events.Event) []events.Kind {
	ks := make([]events.Kind, len(evs))
	for i, e := range evs {
		ks[i] = e.Kind
	}
	return ks
}

// camd events --follow prints a camera's outage as it happens (down, then
// up), and camd events prints it from the history afterwards.
func TestEventsCLIFollowsAnOutage(t *testing.T) {
	t.Parallel()
	needLinux(t)
	s := simtest.Start(t, sim.Config{Cameras: 1, NoUDP: true})
	dir := t.TempDir()
	cfg := writeConfig(t, t.TempDir(), fastConfig)
	p := startCamd(t, dir, nil, "--config", cfg)
	addCameras(t, p, s, 1)
	waitRunning(t, p, 1, 30*time.Second)

	f := startProc(t, nil, "events", "--follow", "--json", "--camera", "cam1", "--api", p.api, "--data-dir", dir)
	testutil.WaitFor(t, 20*time.Second, "the follower to print cam1's start", func() bool {
		return strings.Contains(f.stdout.String(), `"kind":"started"`)
	})
	if err := s.SetFault(1, sim.FaultDrop, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 40*time.Second, "the follower to print down and up", func() bool {
		return strings.Contains(f.stdout.String(), `"kind":"up"`)
	})
	got := evKinds(jsonEvents(t, f.stdout.String()))
	want := []events.Kind{events.CameraAdded, events.CameraStarted, events.CameraDown, events.CameraUp}
	if strings.Join(kindStrings(got), " ") != strings.Join(kindStrings(want), " ") {
		t.Fatalf("camd events --follow printed %v, want %v", got, want)
	}
	f.signal(syscall.SIGINT)
	if code, _, ok := f.wait(10 * time.Second); !ok || code != 0 {
		t.Fatalf("camd events --follow after SIGINT: exited %v, code %d; want 0", ok, code)
	}

	l := startProc(t, nil, "events", "--camera", "cam1", "--api", p.api, "--data-dir", dir)
	if code, _, ok := l.wait(20 * time.Second); !ok || code != 0 {
		t.Fatalf("camd events: exited %v, code %d\n%s", ok, code, l.stderr.String())
	}
	out := l.stdout.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[2], " down ") || !strings.Contains(lines[3], " up ") || !strings.Contains(lines[3], "down_for=") {
		t.Fatalf("camd events printed:\n%s\nwant added, started, down, up (with down_for)", out)
	}

	bad := startProc(t, nil, "events", "--kind", "nonsense", "--api", p.api, "--data-dir", dir)
	if code, _, ok := bad.wait(20 * time.Second); !ok || code != 1 || !oneLine(bad.stderr.String()) || !strings.Contains(bad.stderr.String(), "nonsense") {
		t.Fatalf("camd events --kind nonsense: code %d, stderr %q; want 1 and one line naming it", code, bad.stderr.String())
	}
}

func kindStrings(ks []events.Kind) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = string(k)
	}
	return out
}
