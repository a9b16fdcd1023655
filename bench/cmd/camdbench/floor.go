package main

// The floor: "camdbench floor" is a separate process that opens N RTSP
// sessions over TCP to the simulator with the fewest requests a server
// accepts (OPTIONS, DESCRIBE, SETUP of every track interleaved, PLAY) and
// then only drains the sockets, read the way camd's batched ingest reads
// them: a low-water mark of 64 KiB (SO_RCVLOWAT) and otherwise one read per
// tick of a 100 ms clock shared by every connection. It parses nothing
// after PLAY. Its CPU per camera is what taking the bytes off loopback
// costs with that batching, the floor under camd's ingest.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// floorLowat is the low-water mark and the size of one read, as camd's.
const floorLowat = 64 << 10

// floorKeepalive is how often a session sends OPTIONS: the simulator's
// server drops a connection that sends nothing for its idle timeout (60 s).
const floorKeepalive = 20 * time.Second

// errFloorSetup marks a session the floor could not start.
var errFloorSetup = errors.New("floor: session setup")

// floorTotals is what the floor prints on SIGTERM.
type floorTotals struct {
	Bytes, Reads, Wakes uint64
	Seconds             float64
	Alive, Sessions     int
}

func (t floorTotals) line() string {
	return fmt.Sprintf("floor: totals bytes=%d reads=%d wakes=%d seconds=%.3f alive=%d sessions=%d",
		t.Bytes, t.Reads, t.Wakes, t.Seconds, t.Alive, t.Sessions)
}

// parseFloorTotals parses the line written by floorTotals.line.
func parseFloorTotals(s string) (floorTotals, error) {
	var t floorTotals
	_, err := fmt.Sscanf(strings.TrimSpace(s), "floor: totals bytes=%d reads=%d wakes=%d seconds=%g alive=%d sessions=%d",
		&t.Bytes, &t.Reads, &t.Wakes, &t.Seconds, &t.Alive, &t.Sessions)
	if err != nil {
		return t, fmt.Errorf("bad floor totals line %q: %w", s, err)
	}
	return t, nil
}

// runFloor is the floor process: "camdbench floor -rtsp HOST:PORT -n N".
// It prints "floor: N sessions playing" to stdout once every session
// plays, and its totals when it gets SIGTERM or SIGINT.
func runFloor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camdbench floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("rtsp", "", "the simulator's RTSP address (host:port); cameras are /cam1../camN")
	n := fs.Int("n", 1, "sessions to open, one per camera")
	batch := fs.Duration("batch", 100*time.Millisecond, "read at ticks of this clock (with the 64 KiB low-water mark); 0: read every packet as it arrives")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *host == "" || *n < 1 || *batch < 0 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "camdbench floor: need -rtsp HOST:PORT, -n ≥ 1 and -batch ≥ 0, and no arguments")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	sessions := make([]*floorSession, *n)
	errs := make([]error, *n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				sessions[i], errs[i] = dialFloor(ctx, fmt.Sprintf("rtsp://%s/cam%d", *host, i+1))
			}
		}()
	}
	for i := range *n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			fmt.Fprintf(stderr, "camdbench floor: cam%d: %v\n", i+1, err)
			for _, s := range sessions {
				if s != nil {
					s.conn.Close()
				}
			}
			return 1
		}
	}

	begin := time.Now()
	var alive atomic.Int32
	alive.Store(int32(*n))
	var dw sync.WaitGroup
	for _, s := range sessions {
		dw.Add(1)
		go func() {
			defer dw.Done()
			defer alive.Add(-1)
			var err error
			if *batch > 0 {
				err = s.drainBatched(*batch)
			} else {
				err = s.drainPlain()
			}
			if ctx.Err() == nil {
				fmt.Fprintf(stderr, "camdbench floor: %s ended: %v\n", s.url, err)
			}
		}()
	}
	fmt.Fprintf(stdout, "floor: %d sessions playing on %s (batch %v)\n", *n, *host, *batch)

	<-ctx.Done()
	t := floorTotals{Seconds: time.Since(begin).Seconds(), Alive: int(alive.Load()), Sessions: *n}
	for _, s := range sessions {
		s.conn.Close()
	}
	dw.Wait()
	for _, s := range sessions {
		t.Bytes += s.bytes.Load()
		t.Reads += s.reads.Load()
		t.Wakes += s.wakes.Load()
	}
	fmt.Fprintln(stdout, t.line())
	return 0
}

// floorSession is one RTSP session of the floor.
type floorSession struct {
	url     string
	conn    *net.TCPConn
	br      *bufio.Reader // for the handshake only
	cseq    int
	session string

	bytes, reads, wakes atomic.Uint64
}

// dialFloor connects to url and plays every track over TCP.
func dialFloor(ctx context.Context, url string) (*floorSession, error) {
	hostport := strings.TrimPrefix(url, "rtsp://")
	hostport, _, _ = strings.Cut(hostport, "/")
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, err
	}
	s := &floorSession{url: url, conn: c.(*net.TCPConn), br: bufio.NewReader(c)}
	if err := s.handshake(); err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

func (s *floorSession) handshake() error {
	if err := s.conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, _, err := s.do("OPTIONS", s.url, ""); err != nil {
		return err
	}
	hdr, body, err := s.do("DESCRIBE", s.url, "Accept: application/sdp\r\n")
	if err != nil {
		return err
	}
	base := s.url
	for _, k := range []string{"content-base", "content-location"} {
		if v := hdr[k]; v != "" {
			base = v
			break
		}
	}
	controls := sdpControls(body)
	if len(controls) == 0 {
		return fmt.Errorf("%w: DESCRIBE of %s: no media in the SDP", errFloorSetup, s.url)
	}
	for i, ctl := range controls {
		tr := fmt.Sprintf("Transport: RTP/AVP/TCP;unicast;interleaved=%d-%d\r\n", 2*i, 2*i+1)
		h, _, err := s.do("SETUP", controlURL(base, ctl), tr+s.sessionHeader())
		if err != nil {
			return err
		}
		if s.session == "" {
			s.session, _, _ = strings.Cut(h["session"], ";")
			if s.session == "" {
				return fmt.Errorf("%w: SETUP of %s: no Session header", errFloorSetup, s.url)
			}
		}
	}
	if _, _, err := s.do("PLAY", base, s.sessionHeader()+"Range: npt=0.000-\r\n"); err != nil {
		return err
	}
	// The bytes after PLAY's answer already buffered are the first of the
	// stream: count them and drop the reader.
	if k := s.br.Buffered(); k > 0 {
		s.bytes.Add(uint64(k))
		_, _ = s.br.Discard(k)
	}
	s.br = nil
	return s.conn.SetDeadline(time.Time{})
}

func (s *floorSession) sessionHeader() string {
	if s.session == "" {
		return ""
	}
	return "Session: " + s.session + "\r\n"
}

// request writes one RTSP request.
func (s *floorSession) request(method, url, headers string) error {
	s.cseq++
	_, err := fmt.Fprintf(s.conn, "%s %s RTSP/1.0\r\nCSeq: %d\r\nUser-Agent: camdbench-floor\r\n%s\r\n", method, url, s.cseq, headers)
	return err
}

// do sends a request and reads its answer: the headers (names lower-cased)
// and the body. Any status but 200 is an error.
func (s *floorSession) do(method, url, headers string) (map[string]string, string, error) {
	if err := s.request(method, url, headers); err != nil {
		return nil, "", err
	}
	status, hdr, body, err := readRTSPResponse(s.br)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s %s: %v", errFloorSetup, method, url, err)
	}
	if status != 200 {
		return nil, "", fmt.Errorf("%w: %s %s: status %d", errFloorSetup, method, url, status)
	}
	return hdr, body, nil
}

// readRTSPResponse reads one RTSP response, skipping interleaved frames
// before it.
func readRTSPResponse(br *bufio.Reader) (int, map[string]string, string, error) {
	for {
		b, err := br.Peek(1)
		if err != nil {
			return 0, nil, "", err
		}
		if b[0] != '$' {
			break
		}
		h := make([]byte, 4)
		if _, err := io.ReadFull(br, h); err != nil {
			return 0, nil, "", err
		}
		if _, err := br.Discard(int(h[2])<<8 | int(h[3])); err != nil {
			return 0, nil, "", err
		}
	}
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, nil, "", err
	}
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "RTSP/") {
		return 0, nil, "", fmt.Errorf("not an RTSP status line: %q", strings.TrimSpace(line))
	}
	status, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, nil, "", fmt.Errorf("bad status in %q", strings.TrimSpace(line))
	}
	hdr := map[string]string{}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return 0, nil, "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return 0, nil, "", fmt.Errorf("bad header line %q", line)
		}
		hdr[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	var body string
	if cl := hdr["content-length"]; cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > 1<<20 {
			return 0, nil, "", fmt.Errorf("bad Content-Length %q", cl)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return 0, nil, "", err
		}
		body = string(b)
	}
	return status, hdr, body, nil
}

// sdpControls returns the a=control attribute of every media of an SDP,
// in order ("" for a media without one).
func sdpControls(sdp string) []string {
	var out []string
	for _, line := range strings.Split(sdp, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "m="):
			out = append(out, "")
		case strings.HasPrefix(line, "a=control:") && len(out) > 0:
			out[len(out)-1] = strings.TrimPrefix(line, "a=control:")
		}
	}
	return out
}

// controlURL resolves a media's control attribute against the base URL
// (RFC 2326 C.1.1): absolute as it is, "*" or none the base, otherwise
// relative to it.
func controlURL(base, ctl string) string {
	switch {
	case strings.HasPrefix(ctl, "rtsp://") || strings.HasPrefix(ctl, "rtsps://"):
		return ctl
	case ctl == "" || ctl == "*":
		return base
	case strings.HasSuffix(base, "/"):
		return base + ctl
	}
	return base + "/" + ctl
}

// drainPlain reads every packet as it arrives (no batching).
func (s *floorSession) drainPlain() error {
	b := make([]byte, floorLowat)
	nextKeepalive := time.Now().Add(floorKeepalive)
	for {
		n, err := s.conn.Read(b)
		if err != nil {
			return err
		}
		s.reads.Add(1)
		s.wakes.Add(1)
		s.bytes.Add(uint64(n))
		if now := time.Now(); now.After(nextKeepalive) {
			nextKeepalive = now.Add(floorKeepalive)
			if err := s.request("OPTIONS", s.url, s.sessionHeader()); err != nil {
				return err
			}
		}
	}
}
