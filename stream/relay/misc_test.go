package relay

import (
	"context"
	"encoding/json"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/camd/camd/internal/testutil"
)

// freeUDPPair finds a free even port and the odd one after it.
func freeUDPPair(t *testing.T) int {
	t.Helper()
	for range 100 {
		a, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		a.Close()
		if p%2 != 0 || p >= 65534 {
			continue
		}
		a, err1 := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p))
		b, err2 := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p+1))
		if a != nil {
			a.Close()
		}
		if b != nil {
			b.Close()
		}
		if err1 == nil && err2 == nil {
			return p
		}
	}
	t.Fatal("no free UDP port pair")
	return 0
}

// TestUDPReader: with a UDP port pair configured, readers can use UDP;
// TCP keeps working alongside.
func TestUDPReader(t *testing.T) {
	t.Parallel()
	c := loadClip(t, "../sim/clip.h264")
	port := freeUDPPair(t)
	s := newRelay(t, Config{UDPRTPAddress: "127.0.0.1:" + strconv.Itoa(port)})
	f := s.Feed("cam1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.play(ctx, f, 0, 0, 0) }()
	defer func() { cancel(); <-done }()
	u, err := startReaderWith(t, "rtsp://"+s.Addr()+"/cam1", gortsplib.ProtocolUDP)
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := startReader(t, "rtsp://"+s.Addr()+"/cam1")
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, "frames over UDP and TCP", func() bool {
		return u.frames.Load() >= 25 && tcp.frames.Load() >= 25
	})
}

// TestTCPOnlyRefusesUDP: without UDP addresses a UDP reader is refused at
// SETUP (and can fall back to TCP).
func TestTCPOnlyRefusesUDP(t *testing.T) {
	t.Parallel()
	c := loadClip(t, "../sim/clip.h264")
	s := newRelay(t, Config{})
	f := s.Feed("cam1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.play(ctx, f, 0, 0, 0) }()
	defer func() { cancel(); <-done }()
	if _, err := startReaderWith(t, "rtsp://"+s.Addr()+"/cam1", gortsplib.ProtocolUDP); err == nil {
		t.Fatal("UDP reader accepted by a TCP-only relay")
	}
}

// TestCloseDuringDescribeWait: Close does not wait out DescribeWait.
func TestCloseDuringDescribeWait(t *testing.T) {
	t.Parallel()
	s := newRelay(t, Config{DescribeWait: time.Minute})
	s.Feed("cam1")
	errc := make(chan error, 1)
	go func() {
		_, err := startReader(t, "rtsp://"+s.Addr()+"/cam1")
		errc <- err
	}()
	// Wait until the DESCRIBE is waiting for the camera.
	testutil.WaitFor(t, 20*time.Second, "the DESCRIBE to wait", func() bool {
		buf := make([]byte, 1<<20)
		return strings.Contains(string(buf[:runtime.Stack(buf, true)]), ").waitStream(")
	})
	start := time.Now()
	s.Close()
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Close took %s", took)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Error("reader succeeded")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("reader still waiting after Close")
	}
	// After Close, Feed still hands out a Feed that ignores everything.
	f := s.Feed("late")
	f.Info(loadClip(t, "../sim/clip.h264").info())
	f.Disconnected()
	f.Close()
}

// TestFeedReplaced: a second Feed of the same name replaces the first,
// whose readers end; the camera is served from the new one.
func TestFeedReplaced(t *testing.T) {
	t.Parallel()
	c := loadClip(t, "../sim/clip.h264")
	s := newRelay(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	play := func(f *Feed) {
		wg.Add(1)
		go func() { defer wg.Done(); c.play(ctx, f, 0, 0, 0) }()
	}
	old := s.Feed("cam1")
	play(old)
	r, err := startReader(t, "rtsp://"+s.Addr()+"/cam1")
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "frames", func() bool { return r.frames.Load() >= 5 })
	play(s.Feed("cam1"))
	testutil.WaitFor(t, 10*time.Second, "the old reader's end", r.ended)
	r2, err := startReader(t, "rtsp://"+s.Addr()+"/cam1")
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "frames from the new Feed", func() bool { return r2.frames.Load() >= 5 })
	if st := s.Stats("cam1"); st.Readers != 1 || st.ReadersTotal != 1 {
		t.Errorf("stats of the new Feed: %+v", st)
	}
}

func TestStatsJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(Stats{Readers: 1, ReadersTotal: 2, BytesSent: 3, PacketsSent: 4, ReadersDropped: 5})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"readers":1,"readers_total":2,"bytes_sent":3,"packets_sent":4,"readers_dropped":5}`
	if string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}
