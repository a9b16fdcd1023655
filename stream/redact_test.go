package stream

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"rtsp://admin:secret@10.0.0.5:554/stream1":   "rtsp://admin:xxxxx@10.0.0.5:554/stream1",
		"rtsp://admin@10.0.0.5/stream1":              "rtsp://admin@10.0.0.5/stream1",
		"rtsp://10.0.0.5/stream1":                    "rtsp://10.0.0.5/stream1",
		"rtsp://admin:p@ss@10.0.0.5/s":               "rtsp://admin:xxxxx@10.0.0.5/s",
		"rtsp://admin:pa/ss@10.0.0.5/s":              "rtsp://admin:xxxxx@10.0.0.5/s",
		"rtsp://admin:p%40ss@10.0.0.5/s?x=@":         "rtsp://admin:xxxxx@",
		"rtsps://user:p@ss/w:rd@cam.example/x":       "rtsps://user:xxxxx@cam.example/x",
		"rtsp://u:p@s?s@cam/x":                       "rtsp://u:xxxxx@cam/x",
		"rtsp://u:p@s#s@cam/x":                       "rtsp://u:xxxxx@cam/x",
		"rtsp://10.0.0.5/s?x=@":                      "rtsp://10.0.0.5/s?x=@",
		"rtsp://admin:secret@[::1/broken":            "rtsp://admin:xxxxx@[::1/broken",
		"admin:secret@10.0.0.5":                      "admin:xxxxx@10.0.0.5",
		"rtsp://admin:@10.0.0.5/s":                   "rtsp://admin:xxxxx@10.0.0.5/s",
		"rtsps://u:secret@cam.example:322/a/b?c=d#e": "rtsps://u:xxxxx@cam.example:322/a/b?c=d#e",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactError(t *testing.T) {
	raw := "rtsp://admin:p%40ss!@10.0.0.5/s"
	// What url.Parse returns for a typo in the host of another URL.
	parseErr := &url.Error{Op: "parse", URL: "rtsp://admin:other@[::1", Err: errors.New("missing ']' in host")}
	for _, err := range []error{
		fmt.Errorf("describe: GET %s: refused", raw),
		fmt.Errorf("auth failed for password p@ss!"), // unescaped form
		fmt.Errorf("wrapped: %w", parseErr),          // not our URL: left alone
		fmt.Errorf("setup: %w", context.Canceled),    // sentinel survives
		fmt.Errorf("%w (found: audio)", ErrNoVideo),  // sentinel survives
	} {
		got := RedactError(err, raw)
		if strings.Contains(got.Error(), "p%40ss!") || strings.Contains(got.Error(), "p@ss!") {
			t.Errorf("RedactError(%q) = %q", err, got)
		}
		if errors.Is(err, context.Canceled) != errors.Is(got, context.Canceled) ||
			errors.Is(err, ErrNoVideo) != errors.Is(got, ErrNoVideo) {
			t.Errorf("RedactError(%q) lost errors.Is", err)
		}
		// Unwrap must not lead back to the unredacted error.
		for e := errors.Unwrap(got); e != nil; e = errors.Unwrap(e) {
			if strings.Contains(e.Error(), "p@ss!") || strings.Contains(e.Error(), "p%40ss!") {
				t.Errorf("unwrapping %q reaches %q", got, e)
			}
		}
	}
	if RedactError(nil, raw) != nil {
		t.Error("RedactError(nil) != nil")
	}
	plain := errors.New("x")
	if RedactError(plain, "rtsp://10.0.0.5/s") != plain {
		t.Error("error changed although the URL has no password")
	}
}
