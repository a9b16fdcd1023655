package api

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camd/camd/internal/procfd"
	"github.com/camd/camd/internal/testutil"
)

// 10,000 requests, sequential and concurrent, kept alive and not, leave the
// process's FDs (by kind) and goroutines where they were once the clients
// have closed their idle connections.
func TestNoLeakAfter10000Requests(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	if _, err := procfd.Count(); err != nil {
		t.Skipf("cannot count FDs here: %v", err)
	}
	e := newEnv(t)
	e.add("cam1", deadURL, false)
	e.add("cam2", deadURL, false)

	keep := &http.Transport{MaxIdleConnsPerHost: 16}
	noKeep := &http.Transport{DisableKeepAlives: true}
	clients := []*http.Client{{Transport: keep, Timeout: 60 * time.Second}, {Transport: noKeep, Timeout: 60 * time.Second}}

	var sent, failed atomic.Int64
	var firstErr atomic.Value
	// request i picks an endpoint, so that successes and every kind of
	// error answer are all exercised.
	request := func(c *http.Client, i int) {
		var (
			req *http.Request
			err error
		)
		switch i % 10 {
		case 0:
			req, err = http.NewRequest("GET", e.base+"/api/v1/status", nil)
		case 1:
			req, err = http.NewRequest("GET", e.base+"/api/v1/cameras/cam1", nil)
		case 2:
			req, err = http.NewRequest("GET", e.base+"/api/v1/cameras/nope", nil)
		case 3:
			req, err = http.NewRequest("POST", e.base+"/api/v1/cameras", bytes.NewReader([]byte(`{"name":"bad name","url":"rtsp://h/x"}`)))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
			}
		case 4:
			req, err = http.NewRequest("POST", e.base+"/api/v1/cameras", bytes.NewReader([]byte(`{"name":"cam1","url":"rtsp://h/x"}`)))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
			}
		case 5:
			req, err = http.NewRequest("DELETE", e.base+"/api/v1/status", nil)
		case 6:
			req, err = http.NewRequest("POST", e.base+"/api/v1/cameras", bytes.NewReader(make([]byte, DefaultMaxBodyBytes+10)))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
			}
		default:
			req, err = http.NewRequest("GET", e.base+"/api/v1/cameras", nil)
		}
		if err == nil {
			var resp *http.Response
			resp, err = c.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					err = fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status)
				}
			}
		}
		sent.Add(1)
		// A client still writing an oversized body may see the server
		// close the connection after its 413 (always so without
		// keep-alive); that is how HTTP works, not a failure.
		if err != nil && i%10 != 6 {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err)
		}
	}

	// Warm up: the runtime and the HTTP stack open their lazy FDs and
	// goroutines on first use, which is not a leak.
	for i := 0; i < 20; i++ {
		request(clients[i%2], i)
	}
	idle := func() {
		keep.CloseIdleConnections()
		noKeep.CloseIdleConnections()
		e.hc.CloseIdleConnections()
	}
	idle()
	settle := func() (procfd.Counts, int) {
		testutil.Poll(10*time.Second, func() bool { return e.srv.OpenConns() == 0 })
		// Let the server's connection goroutines finish exiting.
		time.Sleep(200 * time.Millisecond)
		c, _ := procfd.Count()
		return c, runtime.NumGoroutine()
	}
	fd0, g0 := settle()

	// 4,000 sequential kept alive, 1,500 sequential not.
	for i := 0; i < 4000; i++ {
		request(clients[0], i)
	}
	for i := 0; i < 1500; i++ {
		request(clients[1], i)
	}
	// 4,500 concurrent from 9 workers: 6 kept alive, 3 not.
	var wg sync.WaitGroup
	for w := 0; w < 9; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				request(clients[w%3/2], w*500+i)
			}
		}()
	}
	wg.Wait()
	if n := sent.Load(); n < 10000 {
		t.Fatalf("only %d requests sent", n)
	}
	if f := failed.Load(); f > 0 {
		t.Errorf("%d of %d requests failed; first: %v", f, sent.Load(), firstErr.Load())
	}
	idle()

	var fd1 procfd.Counts
	var g1 int
	ok := testutil.Poll(30*time.Second, func() bool {
		fd1, _ = procfd.Count()
		g1 = runtime.NumGoroutine()
		return e.srv.OpenConns() == 0 && fd1.Sockets <= fd0.Sockets && fd1.Files <= fd0.Files &&
			fd1.Pipes <= fd0.Pipes && fd1.Events <= fd0.Events && fd1.Other <= fd0.Other && g1 <= g0
	})
	if !ok {
		t.Errorf("after %d requests: FDs %v (before %v), goroutines %d (before %d), open API connections %d",
			sent.Load(), fd1, fd0, g1, g0, e.srv.OpenConns())
		buf := make([]byte, 1<<20)
		t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
	}
	t.Logf("%d requests; FDs %v → %v; goroutines %d → %d", sent.Load(), fd0, fd1, g0, g1)
}
