// Package web serves camd's status page: one self-contained HTML page (CSS
// and JavaScript inline, nothing loaded from elsewhere, no build step)
// embedded in the binary. The page itself holds no data; its script reads
// the control API (/api/v1/cameras and /api/v1/status every 2 seconds) and
// drives it (start, stop, restart, remove, add), sending the API token when
// the API asks for one. So the page may be served without authentication.
package web

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"
)

//go:embed index.html
var page []byte

// etag and csp are derived from the page once.
var (
	etag = fmt.Sprintf(`"%x"`, sha256.Sum256(page))
	csp  = contentSecurityPolicy(page)
)

// contentSecurityPolicy allows exactly the page's inline <style> and
// <script> blocks (by hash), requests to its own origin, and nothing else.
func contentSecurityPolicy(p []byte) string {
	return "default-src 'none'; " +
		"script-src " + blockHashes(p, "script") + "; " +
		"style-src " + blockHashes(p, "style") + "; " +
		"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// blockHashes returns the CSP hash sources of every <tag>…</tag> block.
func blockHashes(p []byte, tag string) string {
	var out []string
	open, end := []byte("<"+tag+">"), []byte("</"+tag+">")
	for {
		i := bytes.Index(p, open)
		if i < 0 {
			break
		}
		p = p[i+len(open):]
		j := bytes.Index(p, end)
		if j < 0 {
			break
		}
		sum := sha256.Sum256(p[:j])
		out = append(out, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		p = p[j+len(end):]
	}
	if len(out) == 0 {
		return "'none'"
	}
	return strings.Join(out, " ")
}

// Handler serves the status page at "/" (GET and HEAD) and 404 for every
// other path, so that it can be mounted as the API listener's catch-all.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" && r.URL.Path != "/index.html" {
			http.Error(w, "404 page not found", http.StatusNotFound)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
		http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(page))
	})
}
