package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/stream/sim"
)

func TestSeqTrackGap(t *testing.T) {
	var s seqTrack
	var lost int64
	for _, seq := range []uint16{65530, 65531, 65533, 65533, 2, 1, 3, 10} {
		lost += s.gap(seq)
	}
	// Missing: 65532, 65534, 65535, 0, 1 (1 came late and is not
	// un-counted), 4..9.
	if lost != 11 {
		t.Errorf("lost %d, want 11", lost)
	}
}

// The bench's reader, on the simulator with stamps, counts every packet,
// loses none and times every frame; without stamps it times none.
func TestReaderStampsAndCounts(t *testing.T) {
	t.Parallel()
	for _, stamp := range []bool{true, false} {
		s, err := sim.New(sim.Config{Cameras: 1, NoUDP: true, Stamp: stamp})
		if err != nil {
			t.Fatal(err)
		}
		r, err := startReader(s.URL(1))
		if err != nil {
			s.Close()
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for r.packets.Load() < 200 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		m0 := markReaders([]*reader{r}, true)
		time.Sleep(2 * time.Second)
		m1 := markReaders([]*reader{r}, false)
		var w window
		readerWindow(&w, []*reader{r}, m0, m1)
		r.close()
		s.Close()

		if w.Readers != 1 || w.ReaderPackets < 100 || w.Lost != 0 || w.Ended != 0 {
			t.Errorf("stamp %v: readers %d, packets %d, lost %d, ended %d", stamp, w.Readers, w.ReaderPackets, w.Lost, w.Ended)
		}
		if !stamp {
			if w.Latency.N != 0 || w.StampedMin != 0 {
				t.Errorf("no stamps sent, but %d latencies and %.1f stamped frames/s", w.Latency.N, w.StampedMin)
			}
			continue
		}
		// 25 fps over about 2 s; generous for a loaded machine.
		if w.Latency.N < 25 || w.StampedMin < 12 {
			t.Errorf("%d latencies, %.1f stamped frames/s", w.Latency.N, w.StampedMin)
		}
		if w.Latency.P50 < 0 || w.Latency.Max > 10*time.Second {
			t.Errorf("latency p50 %v max %v", w.Latency.P50, w.Latency.Max)
		}
	}
}

func TestRelayDroppedOver(t *testing.T) {
	cam := func(name string, dropped float64) api.CameraJSON {
		return api.CameraJSON{Name: name, Relay: map[string]any{"readers": 1.0, "readers_dropped": dropped}}
	}
	l0 := []api.CameraJSON{cam("cam1", 0), cam("cam2", 3)}
	l1 := []api.CameraJSON{cam("cam1", 2), cam("cam2", 4)}
	if got := relayDroppedOver(l0, l1); got != 3 {
		t.Errorf("dropped %d, want 3", got)
	}
	if got := relayDroppedOver(l0, []api.CameraJSON{{Name: "cam1"}}); got != -1 {
		t.Errorf("without relay stats: %d, want -1", got)
	}
}

func TestCompareCounts(t *testing.T) {
	for _, c := range []struct {
		s    string
		ns   []int
		want []int
		bad  bool
	}{
		{"", []int{16, 64, 256}, []int{64}, false},
		{"", []int{16}, []int{16}, false},
		{"256", []int{64, 256}, []int{256}, false},
		{"32", []int{64}, nil, true},
	} {
		got, err := compareCounts(c.s, c.ns)
		if (err != nil) != c.bad || !slices.Equal(got, c.want) {
			t.Errorf("compareCounts(%q, %v) = %v, %v", c.s, c.ns, got, err)
		}
	}
}

func TestProxyConfigs(t *testing.T) {
	g := go2rtcConfig("127.0.0.1:8554", "127.0.0.1:9000", 2)
	for _, want := range []string{
		"rtsp:\n  listen: \"127.0.0.1:9000\"\n",
		"  cam1: rtsp://127.0.0.1:8554/cam1\n  cam2: rtsp://127.0.0.1:8554/cam2\n",
		"preload:\n  cam1:\n  cam2:\n",
		"api:\n  listen: \"\"\n", "ice_servers: []",
	} {
		if !strings.Contains(g, want) {
			t.Errorf("go2rtc config lacks %q:\n%s", want, g)
		}
	}
	m := mediamtxConfig("127.0.0.1:8554", "127.0.0.1:9000", 2)
	for _, want := range []string{
		"rtspAddress: 127.0.0.1:9000\n", "rtspTransports: [tcp]\n",
		"  cam2:\n    source: rtsp://127.0.0.1:8554/cam2\n    sourceOnDemand: no\n",
		"hls: no\n", "webrtc: no\n",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("mediamtx config lacks %q:\n%s", want, m)
		}
	}
}

// startProxy writes the configuration and runs the binary with it; a
// shell script stands in for go2rtc and mediamtx and records its command
// line. This checks the process handling, not a measurement.
func TestStartProxyCommandLines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake")
	argsFile := filepath.Join(dir, "args")
	// It records its working directory and arguments, then waits.
	script := "#!/bin/sh\n{ pwd; printf '%s\\n' \"$@\"; } > " + argsFile + ".tmp && mv " + argsFile + ".tmp " + argsFile + "\nexec sleep 60\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	b := &bench{o: options{go2rtc: fake, mediamtx: fake}, tmp: dir, procs: newProcSet()}
	defer b.procs.stopAll(time.Second)
	pxs := b.proxies()
	if len(pxs) != 2 || pxs[0].name != "go2rtc" || pxs[1].name != "mediamtx" {
		t.Fatalf("proxies: %+v", pxs)
	}
	for _, px := range pxs {
		os.Remove(argsFile)
		p, addr, err := b.startProxy(px, "127.0.0.1:8554", 3)
		if err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, px.name+"-3.yml")
		want := dir + "\n" + map[string]string{"go2rtc": "-config\n" + cfg + "\n", "mediamtx": cfg + "\n"}[px.name]
		var got []byte
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if got, err = os.ReadFile(argsFile); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if string(got) != want {
			t.Errorf("%s: command line %q, want %q", px.name, got, want)
		}
		c, err := os.ReadFile(cfg)
		if err != nil || !strings.Contains(string(c), addr) || !strings.Contains(string(c), "rtsp://127.0.0.1:8554/cam3") {
			t.Errorf("%s: config (%v) lacks %s or cam3:\n%s", px.name, err, addr, c)
		}
		// Nothing listens: waitListening gives up, and stop ends the process.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := waitListening(ctx, p, addr, 500*time.Millisecond); err == nil {
			t.Errorf("%s: the fake was taken as listening", px.name)
		}
		cancel()
		p.stop(time.Second)
		if !p.exited() {
			t.Errorf("%s: still running after stop", px.name)
		}
	}
}

// The readers table and issue 23's Targets rows, from synthetic windows.
func TestReportReadersAndTargets(t *testing.T) {
	lat := func(p50, p99 time.Duration) durStats {
		return durStats{N: 1500, P50: p50, P99: p99, Max: p99 + time.Millisecond}
	}
	rw := func(cpu float64, readers int, l durStats) *window {
		return &window{CPU: cpu, Cores: 2, FPSMin: 25, Readers: readers, ReaderPackets: int64(readers) * 1500, ReaderPktMin: 150, ReaderPktMean: 150,
			StampedMin: 25, Latency: l}
	}
	o := options{ns: []int{64, 256}, steady: time.Minute, settle: 10 * time.Second, twoReadersAt: 64, compareNs: []int{64}, go2rtc: "/x/go2rtc"}
	r := &report{o: o, started: time.Now(), finished: time.Now(), machine: machine{Cores: 2}}
	r.results = []nResult{{
		N: 64, Ingest: rw(1.6, 0, durStats{}), R1: rw(3.2, 64, lat(50*time.Millisecond, 120*time.Millisecond)),
		R2:        rw(4.8, 128, lat(51*time.Millisecond, 140*time.Millisecond)),
		Unbatched: rw(6.4, 0, durStats{}), UnbatchedR1: rw(9.6, 64, lat(2*time.Millisecond, 9*time.Millisecond)),
		Proxies: []*proxyResult{{Name: "go2rtc", Version: "/x/go2rtc: 1.9.9", Ingest: rw(5.76, 0, durStats{}), R1: rw(6.72, 64, lat(time.Millisecond, 3*time.Millisecond))}},
	}, {
		N: 256, Ingest: rw(6, 0, durStats{}), R1: rw(30, 256, lat(50*time.Millisecond, 130*time.Millisecond)),
	}}
	r.results[1].R1.RelayDropped = 2
	r.results[0].R2.Lost = 3
	md := r.markdown()
	for _, want := range []string{
		"| camd CPU per camera with 1 relay reader per camera ≤ half of go2rtc's at N = 64 | 0.050 % vs go2rtc 0.105 % (measured in this run): ratio 0.48 (1/2.1) | **yes** |",
		"second reader 0.025 % per camera (first reader now 0.025 %) vs ≤ 0.049 %; a reader gets 150 packets/s here, 104 then (video only, no stamps) | **yes** |",
		"| every relay reader receives every packet at N = 64 | 1 reader/cam: 96000 packets, 0 lost, 0 ended; 2 readers/cam: 192000 packets, 3 lost, 0 ended | **NO** |",
		"p99 120.0 ms (p50 50.0 ms, max 121.0 ms, 1500 frames), from the simulator's send; with `read_batch: 0s` p99 9.0 ms | **yes** |",
		"| N = 256 with 1 reader/cam: no reader dropped and camd < 25 % of one core | dropped by camd 2, readers ended 0, lost 0; camd 30.0 % | **NO** |",
		"## camd vs go2rtc and mediamtx",
		"| ingest only | 0.025 % | 0.090 % | 0.100 % |",
		"| so one reader costs | 0.025 % | 0.015 % | 0.050 % |",
		"| 64 | camd + 1 relay reader/cam, `read_batch: 0s` | 64 | 96000 | 150 / 150 | 0 | 0 | 0 | **yes** | 25.0 | 2.0 ms / 9.0 ms / 10.0 ms |",
		"| 64 | go2rtc + 1 reader/cam | 64 | 96000 | 150 / 150 | 0 | 0 | – |",
		"| 64 | go2rtc ingest (proxy) |",
		"-go2rtc /x/go2rtc -compare-n 64",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Without go2rtc in the run, the target names the figure.
	r.results[0].Proxies = nil
	md = r.markdown()
	if want := "0.050 % vs ≤ 0.0525 %, half of go2rtc's 0.105 %: the reference from issue 23, **not re-measured** (no `GO2RTC`) | **yes** |"; !strings.Contains(md, want) {
		t.Errorf("report lacks %q", want)
	}
	if t.Failed() {
		t.Log(md)
	}
}

// gapHandler serves one stream to whoever asks.
type gapHandler struct{ stream *gortsplib.ServerStream }

func (h *gapHandler) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, h.stream, nil
}

func (h *gapHandler) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, h.stream, nil
}

func (h *gapHandler) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// The reader counts the packets missing from a real RTSP server's sequence
// numbers.
func TestReaderCountsLost(t *testing.T) {
	t.Parallel()
	h := &gapHandler{}
	srv := &gortsplib.Server{Handler: h, RTSPAddress: "127.0.0.1:0"}
	var addr string
	srv.Listen = func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err == nil {
			addr = ln.Addr().String()
		}
		return ln, err
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	media := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}}
	h.stream = &gortsplib.ServerStream{Server: srv, Desc: &description.Session{Medias: []*description.Media{media}}}
	if err := h.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer h.stream.Close()

	r, err := startReader("rtsp://" + addr + "/x")
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	// Packet 1 until the reader plays (repeats are not losses), then
	// 2..100 without 10, 11, 12 and 50: 4 lost.
	write := func(seq uint16) error {
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Marker: true}, Payload: []byte{0x41, 0x9a}}
		return h.stream.WritePacketRTP(media, pkt)
	}
	deadline := time.Now().Add(30 * time.Second)
	for r.packets.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the reader got nothing")
		}
		if err := write(1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	base := r.packets.Load()
	for seq := uint16(2); seq <= 100; seq++ {
		if (seq < 10 || seq > 12) && seq != 50 {
			if err := write(seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	for r.packets.Load() < base+95 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got, lost := r.packets.Load()-base, r.lost.Load(); got != 95 || lost != 4 {
		t.Errorf("received %d after the first, lost %d; want 95 and 4", got, lost)
	}
}
