package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/notify/webhook"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/mosquitto"
	"github.com/camd/camd/store"
	"github.com/camd/camd/test/camdproc"
)

const secret = "e2e-s3cret"

// receiver is the webhook endpoint: it verifies each signature and
// records the events it accepted, in arrival order.
type receiver struct {
	srv  *httptest.Server
	down atomic.Bool
	mu   sync.Mutex
	got  []events.Event
	bad  int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if r.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var e events.Event
		if err := webhook.Verify([]byte(secret), req.Header.Get(webhook.HeaderSignature), body, time.Minute, time.Now()); err != nil ||
			json.Unmarshal(body, &e) != nil || req.Header.Get(webhook.HeaderIdempotency) != fmt.Sprint(e.ID) {
			r.mu.Lock()
			r.bad++
			r.mu.Unlock()
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.got = append(r.got, e)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) events() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.got...)
}

// ofKinds returns the ids of evs of camera door with one of kinds, each id
// once (a repeat is an at-least-once redelivery).
func ofKinds(evs []events.Event, kinds ...events.Kind) []uint64 {
	var ids []uint64
	seen := map[uint64]bool{}
	for _, e := range evs {
		if e.Camera != "door" || seen[e.ID] {
			continue
		}
		for _, k := range kinds {
			if e.Kind == k {
				ids = append(ids, e.ID)
				seen[e.ID] = true
			}
		}
	}
	return ids
}

func mqttEvents(s *mosquitto.Sub) []events.Event {
	var out []events.Event
	for _, p := range s.All("camd/e2e/events") {
		var e events.Event
		if json.Unmarshal([]byte(p), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// The whole path: camera outages past the debounce become down and up
// events on the webhook (which was down through three of them) and on
// MQTT, in order; a drop under the debounce produces none; camd killed
// with -9 with deliveries pending delivers them after its restart, the
// broker says offline for it meanwhile, and the retained state is right.
func TestNotifyEndToEnd(t *testing.T) {
	if _, ok := any((*store.Store)(nil)).(events.Log); !ok {
		t.Skip("this store keeps no event history yet (store/events.go, from the events branch)")
	}
	bin := camdproc.Build(t.TempDir())
	if bin.Err != nil {
		t.Fatal(bin.Err)
	}
	b := mosquitto.Start(t)
	sub := mosquitto.Subscribe(t, b, "#")
	rcv := newReceiver(t)
	sim := bin.StartSim(t, 1)

	dir := t.TempDir()
	cfgPath := camdproc.WriteConfig(t, dir)
	extra := fmt.Sprintf(`webhooks:
  hooks:
    - url: %s/hook
      secret: %s
      cameras: [door]
  backoff_max: 1s
mqtt:
  broker: %s
  topic_prefix: camd/e2e
  state_interval: 1s
`, rcv.srv.URL, secret, b.URL())
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(extra)
	f.Close()
	dataDir := filepath.Join(dir, "data")

	p := bin.StartCamd(t, dataDir, cfgPath)
	if err := p.WaitStarted(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cl := api.NewClient(p.API, "")
	if _, err := cl.AddCamera(ctx, device.Spec{Name: "door", URL: sim.URL(1)}, true); err != nil {
		t.Fatal(err)
	}
	cl.CloseIdleConnections()
	state := func() map[string]any {
		v, _ := sub.Last("camd/e2e/door/state")
		var m map[string]any
		_ = json.Unmarshal([]byte(v), &m)
		return m
	}
	testutil.WaitFor(t, 60*time.Second, "door RUNNING on MQTT", func() bool { return state()["state"] == "RUNNING" })
	host, _ := os.Hostname()
	node := strings.Trim(regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(host, "_"), "_")
	disc, ok := sub.Last("homeassistant/binary_sensor/" + node + "/door_connectivity/config")
	if !ok || !strings.Contains(disc, `"state_topic":"camd/e2e/door/state"`) || !strings.Contains(disc, `"availability_topic":"camd/e2e/availability"`) {
		t.Fatalf("discovery %q", disc)
	}
	if state()["connectivity"] != "ON" {
		t.Fatalf("state %v", state())
	}

	// A drop under the debounce: no down, no up.
	if err := sim.Fault(ctx, 1, "drop", 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	if ids := ofKinds(mqttEvents(sub), events.CameraDown, events.CameraUp); len(ids) != 0 {
		t.Fatalf("a short drop produced down/up events %v", ids)
	}

	// Three outages past the debounce with the receiver down.
	outage := func(n int) {
		t.Helper()
		if err := sim.Fault(ctx, 1, "drop", 6*time.Second); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 90*time.Second, fmt.Sprintf("outage %d's up on MQTT", n), func() bool {
			return len(ofKinds(mqttEvents(sub), events.CameraUp)) >= n
		})
	}
	rcv.down.Store(true)
	for n := 1; n <= 3; n++ {
		outage(n)
	}
	want := ofKinds(mqttEvents(sub), events.CameraDown, events.CameraUp)
	if len(want) != 6 {
		t.Fatalf("MQTT events: %d down/up for three outages, want 6: %v", len(want), mqttEvents(sub))
	}
	for _, e := range mqttEvents(sub) {
		if e.Kind == events.CameraUp && e.Details["down_for"] == "" {
			t.Errorf("up without down_for: %+v", e)
		}
	}
	rcv.down.Store(false)
	testutil.WaitFor(t, 60*time.Second, "the webhook's backlog", func() bool {
		return len(ofKinds(rcv.events(), events.CameraDown, events.CameraUp)) >= 6
	})
	if got := ofKinds(rcv.events(), events.CameraDown, events.CameraUp); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("webhook got down/up %v, MQTT %v", got, want)
	}
	checkOrder(t, rcv.events())

	// kill -9 with deliveries pending.
	rcv.down.Store(true)
	outage(4)
	pending := ofKinds(mqttEvents(sub), events.CameraDown, events.CameraUp)[6:]
	p.Kill()
	testutil.WaitFor(t, 60*time.Second, "the broker's offline for camd", func() bool {
		v, _ := sub.Last("camd/e2e/availability")
		return v == "offline"
	})
	rcv.down.Store(false)
	p = bin.StartCamd(t, dataDir, cfgPath)
	if err := p.WaitStarted(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 60*time.Second, "the pending events after the restart", func() bool {
		got := ofKinds(rcv.events(), events.CameraDown, events.CameraUp)
		return len(got) >= 8
	})
	if got := ofKinds(rcv.events(), events.CameraDown, events.CameraUp); fmt.Sprint(got[6:]) != fmt.Sprint(pending) {
		t.Fatalf("after the restart the webhook got %v, want %v", got[6:], pending)
	}
	checkOrder(t, rcv.events())
	testutil.WaitFor(t, 60*time.Second, "online and RUNNING again", func() bool {
		v, _ := sub.Last("camd/e2e/availability")
		return v == "online" && state()["state"] == "RUNNING" && state()["connectivity"] == "ON"
	})
	rcv.mu.Lock()
	bad := rcv.bad
	rcv.mu.Unlock()
	if bad != 0 {
		t.Errorf("%d requests failed verification", bad)
	}
	if pl := camdproc.PanicLines(p.Stderr.String()); len(pl) > 0 {
		t.Errorf("camd log shows a panic:\n%s", strings.Join(pl, "\n"))
	}
	if strings.Contains(p.Stderr.String(), secret) {
		t.Error("the webhook secret reached camd's log")
	}
	t.Logf("webhook events: %d (down/up %v); MQTT events: %d", len(rcv.events()), ofKinds(rcv.events(), events.CameraDown, events.CameraUp), len(mqttEvents(sub)))
}

// checkOrder: ids never go back except to repeat the one just delivered.
func checkOrder(t *testing.T, evs []events.Event) {
	t.Helper()
	var last uint64
	for _, e := range evs {
		if e.ID < last {
			t.Fatalf("webhook deliveries out of order at %d after %d", e.ID, last)
		}
		last = e.ID
	}
}
