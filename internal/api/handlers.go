package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/procfd"
	"github.com/camd/camd/stream"
)

func (s *Server) camera(v device.View) CameraJSON {
	c := cameraJSON(v)
	if s.cfg.RelayStats != nil {
		c.Relay = s.cfg.RelayStats(v.Name)
	}
	return c
}

func (s *Server) listCameras(w http.ResponseWriter, _ *http.Request) {
	vs := s.m.List()
	out := make([]CameraJSON, len(vs))
	for i, v := range vs {
		out[i] = s.camera(v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getCamera(w http.ResponseWriter, r *http.Request) {
	v, err := s.m.Get(r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.camera(v))
}

func (s *Server) addCamera(w http.ResponseWriter, r *http.Request) {
	var req AddRequest
	if !s.decode(w, r, &req) {
		return
	}
	spec := device.Spec{Name: req.Name, URL: req.URL, Transport: req.Transport,
		TLS: stream.CameraTLS{Fingerprint: req.TLSFingerprint, CAFile: req.TLSCA, Insecure: req.TLSInsecure}}
	// Validate before touching the Manager so that a rejected request is
	// refused without taking the Manager's locks; the Manager validates
	// again, and that is the check that counts.
	spec, err := spec.Validate()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	start := req.Start == nil || *req.Start
	v, err := s.m.Add(r.Context(), spec, start)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/cameras/"+url.PathEscape(v.Name))
	writeJSON(w, http.StatusCreated, s.camera(v))
}

func (s *Server) putCamera(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req UpdateRequest
	if !s.decode(w, r, &req) {
		return
	}
	spec := device.Spec{Name: name}
	if req.Name != nil {
		spec.Name = *req.Name
	}
	if req.URL != nil {
		spec.URL = *req.URL
	}
	if req.Transport != nil {
		spec.Transport = *req.Transport
	}
	spec.TLS = req.tls(spec.TLS)
	s.update(w, r, name, spec)
}

func (s *Server) patchCamera(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req UpdateRequest
	if !s.decode(w, r, &req) {
		return
	}
	cur, err := s.m.Get(name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The view's URL is redacted, so it is never sent back: an empty URL
	// tells the Manager to keep the stored one as it is.
	spec := device.Spec{Name: cur.Name, Transport: cur.Transport, TLS: req.tls(cur.TLS)}
	if req.Name != nil {
		spec.Name = *req.Name
	}
	if req.Transport != nil {
		spec.Transport = *req.Transport
	}
	if req.URL != nil {
		if *req.URL == "" {
			writeError(w, http.StatusBadRequest, "url must not be empty (leave it out to keep the camera's URL)")
			return
		}
		spec.URL = *req.URL
		s.update(w, r, name, spec)
		return
	}
	v, err := s.m.Update(r.Context(), name, spec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.camera(v))
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, name string, spec device.Spec) {
	spec, err := spec.Validate()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.m.Update(r.Context(), name, spec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.camera(v))
}

func (s *Server) deleteCamera(w http.ResponseWriter, r *http.Request) {
	if err := s.m.Remove(r.Context(), r.PathValue("name")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) cameraAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		var (
			v   device.View
			err error
		)
		switch action {
		case "start":
			v, err = s.m.StartCamera(r.Context(), name)
		case "stop":
			v, err = s.m.StopCamera(r.Context(), name)
		default:
			v, err = s.m.RestartCamera(r.Context(), name)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, s.camera(v))
	}
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Status())
}

// Status returns what GET /api/v1/status reports.
func (s *Server) Status() DaemonStatus {
	now := time.Now()
	st := DaemonStatus{
		Version:        s.cfg.Version,
		StartedAt:      s.started.UTC(),
		UptimeSeconds:  now.Sub(s.started).Round(time.Millisecond).Seconds(),
		Goroutines:     runtime.NumGoroutine(),
		APIConnections: s.OpenConns(),
		Settings:       settingsJSON(s.m.Settings()),
	}
	st.Cameras.ByState = make(map[string]int, len(device.States))
	counts := s.m.Counts()
	for _, state := range device.States {
		n := counts[state]
		st.Cameras.ByState[state.String()] = n
		st.Cameras.Total += n
	}
	if c, err := procfd.Count(); err != nil {
		st.OpenFDs.Error = err.Error()
	} else {
		st.OpenFDs = FDCounts{Total: c.Total, Sockets: c.Sockets, Files: c.Files, Pipes: c.Pipes, Events: c.Events, Other: c.Other}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st.Memory = Memory{RSSBytes: rss(), HeapAllocBytes: ms.HeapAlloc, HeapInuseBytes: ms.HeapInuse, GoSysBytes: ms.Sys}
	if s.cfg.StatusExtra != nil {
		for k, v := range s.cfg.StatusExtra() {
			b, err := json.Marshal(v)
			if err != nil {
				s.log.Warn("status field cannot be encoded", "field", k, "err", err)
				continue
			}
			if st.Extra == nil {
				st.Extra = map[string]json.RawMessage{}
			}
			st.Extra[k] = b
		}
	}
	return st
}

// rss returns the resident set size from /proc/self/statm, or 0 where there
// is no such file.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

// decode reads a JSON request body into v strictly: JSON content type,
// bounded size, no unknown fields, nothing after the value. On failure it
// has written the error response and returns false.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "request body must be JSON (Content-Type: application/json)")
		return false
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		// Refusing before reading lets net/http drain a moderately large
		// body and keep the connection, so the client reads the 413
		// instead of a reset in the middle of its upload.
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", s.cfg.MaxBodyBytes))
		return false
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		s.badBody(w, err)
		return false
	}
	// A second value, or any garbage after the first, is an error: it is
	// likely a client bug, and silently ignoring it hides the bug.
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("unexpected data after the JSON object")
		}
		s.badBody(w, err)
		return false
	}
	return true
}

func (s *Server) badBody(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit))
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		writeError(w, http.StatusBadRequest, "malformed JSON: unexpected end of body")
	case errors.As(err, &syntax):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("malformed JSON at byte %d", syntax.Offset))
	case errors.As(err, &typ):
		// Name the field and the expected type, never the value: it may be
		// a URL with a password.
		writeError(w, http.StatusBadRequest, fmt.Sprintf("field %q must be a JSON %s", typ.Field, jsonKind(typ.Type.Kind().String())))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		writeError(w, http.StatusBadRequest, "unknown field "+strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		writeError(w, http.StatusBadRequest, "malformed request body: "+err.Error())
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "ptr":
		return "value of the right type"
	case "struct", "map":
		return "object"
	}
	return goKind
}

// fail maps an error to a status code. Errors from the Manager never hold a
// password; 500s are logged and described only vaguely to the client.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, device.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, device.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, device.ErrExists):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, device.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "camd is shutting down")
	case r.Context().Err() != nil && errors.Is(err, r.Context().Err()):
		// The client hung up before the answer; nothing went wrong in
		// camd, and nobody reads what is written here.
		s.log.Info("api client gave up before the answer", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, "request canceled")
	default:
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error; see the camd log")
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		code = http.StatusInternalServerError
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(errorBody{Error: "internal error: response cannot be encoded"})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// writeError writes {"error": msg}, msg squeezed onto one line.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: oneLine(msg)})
}

// oneLine replaces control characters and bounds the length, so that an
// error built from client input stays one readable line.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	const max = 300
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}
