package api

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/camd/camd/device"
)

func TestClient(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.RelayStats = func(name string) any { return map[string]any{"readers": len(name)} }
	})
	c := NewClient(e.srv.Addr(), "")
	defer c.CloseIdleConnections()
	ctx := context.Background()

	cam, err := c.AddCamera(ctx, device.Spec{Name: "cam1", URL: "rtsp://u:pw@127.0.0.1:1/x"}, false)
	if err != nil || cam.Name != "cam1" || cam.URL != "rtsp://u:xxxxx@127.0.0.1:1/x" || cam.State != "STOPPED" {
		t.Fatalf("AddCamera: %+v %v", cam, err)
	}
	if r, ok := cam.Relay.(map[string]any); !ok || r["readers"] != float64(4) {
		t.Errorf("relay stats: %#v", cam.Relay)
	}
	if _, err := c.AddCamera(ctx, device.Spec{Name: "cam1", URL: deadURL}, false); !errors.Is(err, device.ErrExists) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := c.AddCamera(ctx, device.Spec{Name: "", URL: deadURL}, false); !errors.Is(err, device.ErrInvalid) {
		t.Errorf("invalid: %v", err)
	}
	if _, err := c.Camera(ctx, "nope"); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("not found: %v", err)
	}
	var ae *Error
	if _, err := c.Do(ctx, "GET", "/api/v1/nope", nil); !errors.As(err, &ae) || ae.StatusCode != 404 || errors.Is(err, device.ErrNotFound) {
		t.Errorf("unknown route: %v (it is not a missing camera)", err)
	}
	cam, err = c.UpdateCamera(ctx, "cam1", device.Spec{Name: "cam9", URL: deadURL, Transport: "udp"})
	if err != nil || cam.Name != "cam9" || cam.Transport != "udp" {
		t.Errorf("UpdateCamera: %+v %v", cam, err)
	}
	if cam, err = c.StartCamera(ctx, "cam9"); err != nil || cam.PersistedStatus != "running" {
		t.Errorf("StartCamera: %+v %v", cam, err)
	}
	if cam, err = c.RestartCamera(ctx, "cam9"); err != nil || cam.PersistedStatus != "running" {
		t.Errorf("RestartCamera: %+v %v", cam, err)
	}
	if cam, err = c.StopCamera(ctx, "cam9"); err != nil || cam.PersistedStatus != "stopped" {
		t.Errorf("StopCamera: %+v %v", cam, err)
	}
	list, err := c.Cameras(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "cam9" {
		t.Errorf("Cameras: %+v %v", list, err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Cameras.Total != 1 || st.Version != "test" {
		t.Errorf("Status: %+v %v", st, err)
	}
	if err := c.RemoveCamera(ctx, "cam9"); err != nil {
		t.Errorf("RemoveCamera: %v", err)
	}
	if err := c.RemoveCamera(ctx, "cam9"); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("RemoveCamera twice: %v", err)
	}
}

func TestClientUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := NewClient(addr, "")
	defer c.CloseIdleConnections()
	_, err = c.Status(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Reason != "connection refused" || err.Error() != "cannot reach the camd daemon at http://"+addr+" (connection refused)" {
		t.Errorf("unreachable: %v", err)
	}

	// A daemon that accepts but never answers is reported once the
	// caller's deadline passes.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	c2 := NewClient("http://"+mute.Addr().String()+"/", "")
	defer c2.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = c2.Status(ctx)
	if !errors.As(err, &ue) || ue.Reason != "timed out" {
		t.Errorf("mute daemon: %v", err)
	}
}

func TestBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "http://127.0.0.1:7654",
		"127.0.0.1:7654":          "http://127.0.0.1:7654",
		":9000":                   "http://127.0.0.1:9000",
		"http://box:7654/":        "http://box:7654",
		"https://box.example:443": "https://box.example:443",
	} {
		if got := BaseURL(in); got != want {
			t.Errorf("BaseURL(%q) = %q, want %q", in, got, want)
		}
	}
}
