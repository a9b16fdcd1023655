package testutil

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
)

// EscapingCamera is a raw TCP "camera" on 127.0.0.1:0 that answers every RTSP
// request with a 400 whose reason phrase starts with terminal escapes (a
// window-title OSC ended by BEL, a clear-screen CSI) and then repeats the
// request line, URL and secrets included, as some cameras' error pages do.
func EscapingCamera(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var first, cseq string
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						line = strings.TrimRight(line, "\r\n")
						if line == "" {
							break
						}
						if first == "" {
							first = line
						} else if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "CSeq") {
							cseq = strings.TrimSpace(v)
						}
					}
					if _, err := fmt.Fprintf(c, "RTSP/1.0 400 \x1b]0;x\x07\x1b[2J %s\r\nCSeq: %s\r\n\r\n", first, cseq); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}
