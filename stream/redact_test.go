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

func TestRedactURLSecretParams(t *testing.T) {
	for in, want := range map[string]string{
		// Path parameters, as cheap cameras take them.
		"rtsp://cam/user=admin&password=S3cr&channel=1":         "rtsp://cam/user=admin&password=xxxxx&channel=1",
		"rtsp://cam:554/user=admin_password=tlJw_channel=1.sdp": "rtsp://cam:554/user=admin_password=xxxxx",
		"rtsp://cam/live;pwd=S3cr;chan=2":                       "rtsp://cam/live;pwd=xxxxx;chan=2",
		"rtsp://cam/PassWord=S3cr/stream":                       "rtsp://cam/PassWord=xxxxx/stream",
		// Query parameters.
		"rtsp://cam/s?token=abc==&channel=1":                    "rtsp://cam/s?token=xxxxx&channel=1",
		"rtsp://cam/s?access_token=a&apiKey=b&api_key=c&psw=d":  "rtsp://cam/s?access_token=xxxxx&apiKey=xxxxx&api_key=xxxxx&psw=xxxxx",
		"rtsp://cam/s?X-Amz-Signature=a&sig=b&auth=c&secret=d":  "rtsp://cam/s?X-Amz-Signature=xxxxx&sig=xxxxx&auth=xxxxx&secret=xxxxx",
		"rtsp://cam/s?passwd=a&pass=b&key=c&user_pw=d&pa%73s=e": "rtsp://cam/s?passwd=xxxxx&pass=xxxxx&key=xxxxx&user_pw=xxxxx&pa%73s=xxxxx",
		"rtsp://admin:pw@cam/s?password=qq":                     "rtsp://admin:xxxxx@cam/s?password=xxxxx",
		"rtsp://cam/s?token=":                                   "rtsp://cam/s?token=",
		// Benign keys stay readable.
		"rtsp://cam/s?keyframe=1&key_frame=2&keyint=3&signal=4&user=admin&channel=1&subtype=0": "rtsp://cam/s?keyframe=1&key_frame=2&keyint=3&signal=4&user=admin&channel=1&subtype=0",
		// ':…@' in the path is not a user info: the authority has ended.
		"rtsp://cam.lan/live/ch0:main@hd":          "rtsp://cam.lan/live/ch0:main@hd",
		"rtsp://cam.lan:554/live/ch0:main@hd?a=b":  "rtsp://cam.lan:554/live/ch0:main@hd?a=b",
		"rtsp://[::1]:554/live/ch0:main@hd":        "rtsp://[::1]:554/live/ch0:main@hd",
		"rtsp://cam.lan/live/ch0:main@hd?token=T1": "rtsp://cam.lan/live/ch0:main@hd?token=xxxxx",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactErrorSecretParams(t *testing.T) {
	raw := "rtsp://127.0.0.1:8554/user=admin&password=Pa%2Bss1&channel=1?token=T0k+en"
	secrets := []string{"Pa%2Bss1", "Pa+ss1", "T0k+en", "T0k en", "T0k%2Ben"}
	for _, err := range []error{
		fmt.Errorf("describe: GET %s: refused", raw),
		fmt.Errorf("bad status code: 400 (%s)", strings.Replace(raw, "127.0.0.1", "[::1]", 1)),
		fmt.Errorf("auth failed for Pa+ss1 and T0k en and T0k%%2Ben"),
	} {
		got := RedactError(err, raw).Error()
		for _, s := range secrets {
			if strings.Contains(got, s) {
				t.Errorf("RedactError(%q) = %q: holds %q", err, got, s)
			}
		}
	}
	plain := errors.New("x")
	if RedactError(plain, "rtsp://cam.lan/live/ch0:main@hd?keyframe=1") != plain {
		t.Error("error changed although the URL has no secret")
	}
}
