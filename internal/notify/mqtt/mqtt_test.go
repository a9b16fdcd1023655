package mqtt

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/mosquitto"
)

// cams is a States whose cameras the test changes.
type cams struct {
	mu sync.Mutex
	s  []CameraState
}

func (c *cams) States() []CameraState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]CameraState(nil), c.s...)
}

func (c *cams) set(name, state string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.s {
		if c.s[i].Name == name {
			c.s[i].State = state
			return
		}
	}
	c.s = append(c.s, CameraState{Name: name, State: state, FPS: 25, Bitrate: 2e6})
}

func newPublisher(t *testing.T, b *mosquitto.Broker, l events.Log, st States) *Publisher {
	t.Helper()
	p, err := New(Config{Broker: b.URL(), Log: l, States: st, Discovery: true, NodeID: "box1", Version: "test",
		StateInterval: 200 * time.Millisecond, Timeout: 5 * time.Second, BackoffMin: 50 * time.Millisecond, BackoffMax: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func stateOf(t *testing.T, s *mosquitto.Sub, topic string) statePayload {
	t.Helper()
	v, _ := s.Last(topic)
	var sp statePayload
	_ = json.Unmarshal([]byte(v), &sp)
	return sp
}

// Discovery messages carry what Home Assistant requires (unique_id,
// state_topic, device_class, availability, device) and the state payload
// has the values their templates read, matching payload_on/off.
func TestDiscoveryAndState(t *testing.T) {
	b := mosquitto.Start(t)
	s := mosquitto.Subscribe(t, b, "#")
	l := events.NewMemLog(0)
	c := &cams{}
	c.set("door", "RUNNING")
	c.set("yard.cam", "CRASHED")
	p := newPublisher(t, b, l, c)
	p.Start()

	topic := "homeassistant/binary_sensor/box1/door_connectivity/config"
	testutil.WaitFor(t, 30*time.Second, "discovery", func() bool { _, ok := s.Last(topic); return ok })
	raw, _ := s.Last(topic)
	var d map[string]any
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		t.Fatalf("discovery payload %q: %v", raw, err)
	}
	for _, k := range []string{"unique_id", "state_topic", "device_class", "availability_topic", "device", "payload_on", "payload_off", "value_template"} {
		if d[k] == nil || d[k] == "" {
			t.Errorf("discovery lacks %s: %s", k, raw)
		}
	}
	if d["device_class"] != "connectivity" || d["availability_topic"] != "camd/box1/availability" || d["state_topic"] != "camd/box1/door/state" {
		t.Errorf("discovery %s", raw)
	}
	dev, _ := d["device"].(map[string]any)
	if ids, _ := dev["identifiers"].([]any); len(ids) != 1 || ids[0] != "camd_box1" {
		t.Errorf("device %v", dev)
	}
	for _, sensor := range []string{"homeassistant/sensor/box1/door_fps/config", "homeassistant/sensor/box1/door_bitrate/config",
		"homeassistant/binary_sensor/box1/yard_cam_connectivity/config"} {
		testutil.WaitFor(t, 10*time.Second, sensor, func() bool { _, ok := s.Last(sensor); return ok })
		raw, _ := s.Last(sensor)
		var m map[string]any
		_ = json.Unmarshal([]byte(raw), &m)
		if m["unique_id"] == nil || m["state_topic"] == nil || m["availability_topic"] == nil || m["device"] == nil {
			t.Errorf("%s: %s", sensor, raw)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "online", func() bool { v, _ := s.Last("camd/box1/availability"); return v == "online" })
	testutil.WaitFor(t, 10*time.Second, "door's state", func() bool { return stateOf(t, s, "camd/box1/door/state").Connectivity == d["payload_on"] })
	if sp := stateOf(t, s, "camd/box1/door/state"); sp.State != "RUNNING" || sp.FPS != 25 || sp.BitrateKbps != 2000 {
		t.Errorf("door state %+v", sp)
	}
	testutil.WaitFor(t, 10*time.Second, "yard's state", func() bool {
		return stateOf(t, s, "camd/box1/yard.cam/state").Connectivity == d["payload_off"]
	})
	unique := map[string]bool{}
	for _, m := range p.discoveryMessages("door") {
		var v map[string]any
		_ = json.Unmarshal(m.payload, &v)
		unique[v["unique_id"].(string)] = true
	}
	if len(unique) != 3 {
		t.Errorf("unique ids %v", unique)
	}

	// A camera goes down: its event is published and its state follows.
	c.set("door", "CRASHED")
	e, _ := l.Append(events.Event{Camera: "door", Kind: events.CameraDown, Details: map[string]string{"error": "refused"}})
	testutil.WaitFor(t, 10*time.Second, "the down event", func() bool { return len(s.All("camd/box1/events")) > 0 })
	var got events.Event
	_ = json.Unmarshal([]byte(s.All("camd/box1/events")[0]), &got)
	if got.ID != e.ID || got.Kind != events.CameraDown || got.Camera != "door" {
		t.Errorf("event %+v", got)
	}
	testutil.WaitFor(t, 10*time.Second, "door OFF", func() bool { return stateOf(t, s, "camd/box1/door/state").Connectivity == "OFF" })

	// Close says offline.
	_ = p.Close()
	testutil.WaitFor(t, 10*time.Second, "offline after Close", func() bool { v, _ := s.Last("camd/box1/availability"); return v == "offline" })
}

// mosquitto is killed and restarted (losing its retained messages): the
// publisher reconnects and the retained states are right again, with the
// changes made while the broker was gone; events appended meanwhile are
// published after the reconnect.
func TestBrokerRestart(t *testing.T) {
	b := mosquitto.Start(t)
	l := events.NewMemLog(0)
	c := &cams{}
	c.set("door", "RUNNING")
	c.set("yard", "RUNNING")
	var logs testutil.LogBuffer
	p := newPublisher(t, b, l, c)
	p.log = testutil.Logger(&logs)
	p.Start()
	s := mosquitto.Subscribe(t, b, "camd/#")
	testutil.WaitFor(t, 30*time.Second, "yard's state", func() bool { return stateOf(t, s, "camd/box1/yard/state").State == "RUNNING" })

	b.Kill()
	testutil.WaitFor(t, 30*time.Second, "the publisher to see the broker gone", func() bool { return !p.Connected() })
	c.set("yard", "CRASHED")
	e, _ := l.Append(events.Event{Camera: "yard", Kind: events.CameraDown})
	time.Sleep(500 * time.Millisecond) // some failed attempts
	if !b.Restart() {
		t.Fatalf("mosquitto did not restart:\n%s", b.Out.String())
	}
	s2 := mosquitto.Subscribe(t, b, "camd/#")
	testutil.WaitFor(t, 30*time.Second, "retained states after the restart", func() bool {
		return stateOf(t, s2, "camd/box1/yard/state").Connectivity == "OFF" && stateOf(t, s2, "camd/box1/door/state").Connectivity == "ON"
	})
	testutil.WaitFor(t, 10*time.Second, "online after the restart", func() bool { v, _ := s2.Last("camd/box1/availability"); return v == "online" })
	// The event was published once connected; the new subscriber may have
	// subscribed after it, so the publisher's cursor says it.
	testutil.WaitFor(t, 10*time.Second, "the event published", func() bool { c, _ := l.Cursor(cursorName); return c >= e.ID })
	if n := len(logs.Lines("connection to the broker lost")); n != 1 {
		t.Errorf("%d lines about the lost connection, want 1:\n%s", n, logs.String())
	}
	if n := len(logs.Lines("connected again")); n != 1 {
		t.Errorf("%d reconnection lines, want 1:\n%s", n, logs.String())
	}
}

// TestMain runs a publisher as a child process for the last-will test.
func TestMain(m *testing.M) {
	if addr := os.Getenv("CAMD_MQTT_CHILD"); addr != "" {
		p, err := New(Config{Broker: "mqtt://" + addr, Log: events.NewMemLog(0), NodeID: "box9",
			States: StatesFunc(func() []CameraState { return []CameraState{{Name: "door", State: "RUNNING"}} })})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		p.Start()
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		<-ch
		_ = p.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The publisher's process is killed with -9: the broker publishes its last
// will, "offline", retained.
func TestKilledClientWill(t *testing.T) {
	b := mosquitto.Start(t)
	s := mosquitto.Subscribe(t, b, "camd/box9/#")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CAMD_MQTT_CHILD="+b.Addr())
	var out testutil.LogBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = testutil.DieWithParent()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	testutil.WaitFor(t, 30*time.Second, "online", func() bool { v, _ := s.Last("camd/box9/availability"); return v == "online" })
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	testutil.WaitFor(t, 60*time.Second, "the will", func() bool { v, _ := s.Last("camd/box9/availability"); return v == "offline" })
	s2 := mosquitto.Subscribe(t, b, "camd/box9/availability")
	testutil.WaitFor(t, 10*time.Second, "offline retained", func() bool { v, _ := s2.Last("camd/box9/availability"); return v == "offline" })
}

// A broker that accepts TCP and never answers: appending events never
// waits for it, and Close returns at once, leaving no goroutine behind.
func TestSilentBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	base := runtime.NumGoroutine()
	l := events.NewMemLog(0)
	p, err := New(Config{Broker: "mqtt://" + ln.Addr().String(), Log: l, Discovery: true,
		States: StatesFunc(func() []CameraState { return nil }), Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	testutil.WaitFor(t, 10*time.Second, "a connection attempt", func() bool { mu.Lock(); defer mu.Unlock(); return len(conns) > 0 })
	t0 := time.Now()
	for i := 0; i < 100; i++ {
		if _, err := l.Append(events.Event{Camera: "door", Kind: events.CameraDown}); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("appends took %v with a silent broker", d)
	}
	t0 = time.Now()
	_ = p.Close()
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	ln.Close()
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	testutil.WaitFor(t, 20*time.Second, "goroutines back to where they were", func() bool { return runtime.NumGoroutine() <= base })
}

func TestNewRejects(t *testing.T) {
	l := events.NewMemLog(0)
	st := StatesFunc(func() []CameraState { return nil })
	for _, u := range []string{"", "tcp://h:1883", "mqtt://", "mqtt://u:pw9@h", "mqtt://h/x"} {
		_, err := New(Config{Broker: u, Log: l, States: st, Password: "pw9"})
		if err == nil || strings.Contains(err.Error(), "pw9") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v", u, err)
		}
	}
	if _, err := New(Config{Broker: "mqtt://h", Log: l, States: st, TopicPrefix: "a/#"}); err == nil {
		t.Error("a prefix with # accepted")
	}
	p, err := New(Config{Broker: "mqtts://h", Log: l, States: st, NodeID: "my box.lan"})
	if err != nil || p.broker != "mqtts://h:8883" || p.NodeID() != "my_box_lan" || p.TopicPrefix() != "camd/my_box_lan" {
		t.Errorf("defaults: %v %+v", err, p)
	}
}

// An event appended just before the camera's state changes (as up is)
// still gets the state published soon, without waiting for the interval.
func TestStateSettlesAfterEvent(t *testing.T) {
	b := mosquitto.Start(t)
	s := mosquitto.Subscribe(t, b, "camd/#")
	l := events.NewMemLog(0)
	c := &cams{}
	c.set("door", "CRASHED")
	p, err := New(Config{Broker: b.URL(), Log: l, States: c, NodeID: "box1", StateInterval: time.Hour,
		Timeout: 5 * time.Second, BackoffMin: 50 * time.Millisecond, BackoffMax: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Start()
	testutil.WaitFor(t, 30*time.Second, "door OFF", func() bool { return stateOf(t, s, "camd/box1/door/state").Connectivity == "OFF" })
	if _, err := l.Append(events.Event{Camera: "door", Kind: events.CameraUp}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the up event", func() bool { return len(s.All("camd/box1/events")) == 1 })
	c.set("door", "RUNNING")
	testutil.WaitFor(t, 10*time.Second, "door ON after the event", func() bool { return stateOf(t, s, "camd/box1/door/state").Connectivity == "ON" })
}

// mqtts:// with a private CA and a user: the publisher connects, the
// broker refuses a wrong password, and the password never reaches the
// log.
func TestTLSAndLogin(t *testing.T) {
	cert := testutil.NewCert(t, t.TempDir())
	b := mosquitto.StartTLS(t, mosquitto.TLSOptions{Cert: cert, User: "camd", Pass: "pa55word"})
	l := events.NewMemLog(0)
	st := StatesFunc(func() []CameraState { return []CameraState{{Name: "door", State: "RUNNING"}} })
	mk := func(pass string, logs *testutil.LogBuffer) *Publisher {
		p, err := New(Config{Broker: "mqtts://127.0.0.1:" + fmt.Sprint(b.Port), CAFile: cert.CertFile, User: "camd", Password: pass,
			Log: l, States: st, NodeID: "box1", Timeout: 5 * time.Second, BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
			Logger: testutil.Logger(logs)})
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		return p
	}
	var bad testutil.LogBuffer
	pb := mk("wrong", &bad)
	testutil.WaitFor(t, 30*time.Second, "the refusal logged", func() bool { return len(bad.Lines("cannot connect")) > 0 })
	_ = pb.Close()
	if pb.Connected() || len(bad.Lines("cannot connect")) != 1 {
		t.Errorf("a wrong password: connected=%v, log:\n%s", pb.Connected(), bad.String())
	}
	var good testutil.LogBuffer
	p := mk("pa55word", &good)
	defer p.Close()
	testutil.WaitFor(t, 30*time.Second, "connected over TLS", p.Connected)
	for _, s := range []string{bad.String(), good.String()} {
		if strings.Contains(s, "pa55word") || strings.Contains(s, "wrong") {
			t.Errorf("a password reached the log:\n%s", s)
		}
	}
}
