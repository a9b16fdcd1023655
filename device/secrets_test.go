package device

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
)

// hasControl reports whether s holds a C0 or C1 control character or DEL.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || (r >= 0x7f && r <= 0x9f) })
}

func TestLastErrorHoldsNoSecretOrControl(t *testing.T) {
	addr := testutil.EscapingCamera(t)
	h := newHarness(t, hostileSettings())
	urls := map[string]string{
		"query": "rtsp://admin:Secret0@" + addr + "/cam/realmonitor?channel=1&password=Secret1",
		"path":  "rtsp://" + addr + "/user=admin&password=Secret2&channel=1",
		"at":    "rtsp://" + addr + "/live/ch0:main@hd?token=Secret3",
	}
	for name, u := range urls {
		h.add(name, u, true)
	}
	for name, u := range urls {
		var v View
		if !testutil.Poll(20*time.Second, func() bool { v = h.get(name); return strings.Contains(v.LastError, "400") }) {
			t.Fatalf("%s: no 400 recorded; last error %q", name, v.LastError)
		}
		rec := h.record(name)
		for what, s := range map[string]string{"view url": v.URL, "last_error": v.LastError, "stored last_error": rec.LastError} {
			if strings.Contains(s, "Secret") {
				t.Errorf("%s: %s holds a secret: %q", name, what, s)
			}
			if hasControl(s) {
				t.Errorf("%s: %s holds a control character: %q", name, what, s)
			}
		}
		if !strings.Contains(v.LastError, "]0;x") || !strings.Contains(v.LastError, "xxxxx") {
			t.Errorf("%s: last_error %q does not show the reason phrase, cleaned", name, v.LastError)
		}
		if rec.URL != u {
			t.Errorf("%s: stored URL %q, want %q", name, rec.URL, u)
		}
	}
	if v := h.get("at"); !strings.Contains(v.URL, "/live/ch0:main@hd?token=xxxxx") {
		t.Errorf("':…@' in the path was mangled: %q", v.URL)
	}
	// A transport-only update keeps the stored URL byte for byte.
	for name, u := range urls {
		if _, err := h.m.Update(context.Background(), name, Spec{Name: name, Transport: "udp"}); err != nil {
			t.Fatalf("update %s: %v", name, err)
		}
		if rec := h.record(name); rec.URL != u || rec.Transport != "udp" {
			t.Errorf("%s after a transport-only update: %q %s, want %q udp", name, rec.URL, rec.Transport, u)
		}
	}
	logs := h.logs.String()
	if strings.Contains(logs, "Secret") || hasControl(strings.ReplaceAll(logs, "\n", "")) {
		t.Errorf("log holds a secret or a control character:\n%s", logs)
	}
}

// Changing a camera's URL, or removing the camera, leaves none of its old
// secrets in the data file.
func TestUpdateAndRemoveLeaveNoOldSecretInFile(t *testing.T) {
	h := newHarness(t, testutil.FastSettings[Settings]())
	h.add("cam", "rtsp://admin:OldSecret1@127.0.0.1:1/x?token=OldSecret2", false)
	h.add("other", "rtsp://admin:Kept@127.0.0.1:1/y", false)
	path := h.st.Path()
	grep := func(s string) bool {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(b, []byte(s))
	}
	if !grep("OldSecret1") {
		t.Fatal("the secret is not in the file before the update: the test checks nothing")
	}
	if _, err := h.m.Update(context.Background(), "cam", Spec{Name: "cam", URL: "rtsp://admin:NewSecret@127.0.0.1:1/x"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"OldSecret1", "OldSecret2"} {
		if grep(s) {
			t.Errorf("after the URL change, %s is still in %s", s, path)
		}
	}
	if err := h.m.Remove(context.Background(), "cam"); err != nil {
		t.Fatal(err)
	}
	if grep("NewSecret") {
		t.Errorf("after the removal, NewSecret is still in %s", path)
	}
	if !grep("Kept") {
		t.Error("the other camera's URL is gone from the file")
	}
	h.restart()
	if v := h.get("other"); v.URL != "rtsp://admin:xxxxx@127.0.0.1:1/y" {
		t.Errorf("other camera after restart: %+v", v)
	}
}
