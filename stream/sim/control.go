package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// faultRequest is the body of POST /cameras/{n}/fault.
type faultRequest struct {
	// Fault is a fault name, or "clear".
	Fault string `json:"fault"`
	// Duration is a Go duration ("5s"); "" or "0" means until cleared.
	Duration string `json:"duration"`
}

// controlHandler serves the HTTP control endpoint:
//
//	GET  /cameras                 every camera's fault and session counts
//	GET  /cameras/{n}             one camera's
//	POST /cameras/{n}/fault       {"fault":"stall","duration":"5s"}, or the
//	                              same as query parameters ?fault=stall&duration=5s
func (s *Server) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cameras", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("GET /cameras/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := s.camParam(r)
		if err != nil {
			writeError(w, http.StatusNotFound, err)
			return
		}
		writeJSON(w, http.StatusOK, s.Status()[n-1])
	})
	mux.HandleFunc("POST /cameras/{n}/fault", func(w http.ResponseWriter, r *http.Request) {
		n, err := s.camParam(r)
		if err != nil {
			writeError(w, http.StatusNotFound, err)
			return
		}
		req := faultRequest{Fault: r.URL.Query().Get("fault"), Duration: r.URL.Query().Get("duration")}
		if !r.URL.Query().Has("fault") {
			// A small body only: this is a test tool, not an upload endpoint.
			err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req)
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Errorf("want JSON {\"fault\":…,\"duration\":…} or ?fault=: %w", err))
				return
			}
		}
		f, err := ParseFault(req.Fault)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		var d time.Duration
		if req.Duration != "" && req.Duration != "0" {
			d, err = time.ParseDuration(req.Duration)
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Errorf("duration: %w", err))
				return
			}
		}
		if err := s.SetFault(n, f, d); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, s.Status()[n-1])
	})
	return mux
}

func (s *Server) camParam(r *http.Request) (int, error) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 || n > len(s.cams) {
		return 0, errors.New("no such camera")
	}
	return n, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
