package web

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandlerServesThePage(t *testing.T) {
	h := Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /: %d", rec.Code)
	}
	body := rec.Body.String()
	if !strings.Contains(body, "<title>camd</title>") {
		t.Error("not the status page")
	}
	hd := rec.Header()
	if ct := hd.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	c := hd.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'sha256-", "style-src 'sha256-", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(c, want) {
			t.Errorf("CSP %q lacks %q", c, want)
		}
	}
	if strings.Contains(c, "unsafe-inline") {
		t.Errorf("CSP allows unsafe-inline: %q", c)
	}

	// Revalidation by ETag.
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("If-None-Match", hd.Get("ETag"))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", rec.Code)
	}

	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{http.MethodHead, "/", http.StatusOK},
		{http.MethodGet, "/favicon.ico", http.StatusNotFound},
		{http.MethodGet, "/api", http.StatusNotFound},
		{http.MethodPost, "/", http.StatusMethodNotAllowed},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, rec.Code, tc.code)
		}
	}
}

// The page is self-contained: nothing is loaded from anywhere else.
func TestPageLoadsNothingFromElsewhere(t *testing.T) {
	p := string(page)
	if m := regexp.MustCompile(`(?i)(src|href|action)\s*=\s*["']?(https?:)?//`).FindString(p); m != "" {
		t.Errorf("page refers to another origin: %q", m)
	}
	if m := regexp.MustCompile(`(?i)@import|url\(`).FindString(p); m != "" {
		t.Errorf("page CSS loads something: %q", m)
	}
	if strings.Count(p, "<script") != 1 || strings.Contains(p, "<script src") {
		t.Error("want exactly one inline script")
	}
	if !strings.Contains(p, `name="viewport"`) {
		t.Error("no viewport meta: unreadable on a phone")
	}
}
