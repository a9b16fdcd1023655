package sim

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/rtspread"
)

// waitTimeout bounds every wait in these tests. It is generous because the
// tests share two cores with many other builds and tests.
const waitTimeout = 20 * time.Second

func newSim(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, waitTimeout, what, cond)
}

// reader is a real gortsplib client that records what arrives.
type reader struct {
	rd *rtspread.Reader

	mu         sync.Mutex
	packets    []time.Time // arrival of every RTP and RTCP packet
	videoAUs   int
	keyAUs     int
	audioPkts  int
	videoRTCP  int
	decodeErrs []error
	seqs       []uint16 // video RTP sequence numbers, in arrival order
	tss        []uint32 // video RTP timestamps, in arrival order
	// stamps is the latency (arrival − send time) of every access unit
	// that carried a send-time SEI; misplaced counts stamps that were not
	// immediately before the access unit's first slice.
	stamps    []time.Duration
	misplaced int
}

type readerOpts struct {
	udp       bool
	videoOnly bool
}

// dial connects, describes and returns the client, for tests that stop
// before playing. The caller closes it.
func dial(rawURL string, udp bool) (*gortsplib.Client, *description.Session, error) {
	rd, err := rtspread.Dial(rawURL, rtspread.Options{UDP: udp, ReadTimeout: waitTimeout})
	if err != nil {
		return nil, nil, err
	}
	return rd.Client, rd.Desc, nil
}

// startReader plays rawURL and records packets until the test ends.
func startReader(t testing.TB, rawURL string, o readerOpts) *reader {
	t.Helper()
	rd, err := rtspread.Dial(rawURL, rtspread.Options{UDP: o.udp, ReadTimeout: waitTimeout})
	if err != nil {
		t.Fatalf("connect %s: %v", rawURL, err)
	}
	r := &reader{rd: rd}
	desc := rd.Desc

	var h264f *format.H264
	videoMedia := desc.FindFormat(&h264f)
	if videoMedia == nil {
		rd.Client.Close()
		t.Fatal("no H.264 track in the description")
	}
	if h264f.SPS == nil || h264f.PPS == nil {
		rd.Client.Close()
		t.Fatal("SPS/PPS missing from the description")
	}
	dec, err := h264f.CreateDecoder()
	if err != nil {
		rd.Client.Close()
		t.Fatal(err)
	}
	onRTP := func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
		now := time.Now()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.packets = append(r.packets, now)
		if m != videoMedia {
			r.audioPkts++
			return
		}
		r.seqs = append(r.seqs, pkt.SequenceNumber)
		r.tss = append(r.tss, pkt.Timestamp)
		au, err := dec.Decode(pkt)
		switch {
		case errors.Is(err, rtph264.ErrMorePacketsNeeded), errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious):
		case err != nil:
			r.decodeErrs = append(r.decodeErrs, err)
		default:
			r.videoAUs++
			if h264.IsRandomAccess(au) {
				r.keyAUs++
			}
			for i, nalu := range au {
				if sent, ok := ReadStamp(nalu, false); ok {
					r.stamps = append(r.stamps, now.Sub(sent))
					if i+1 >= len(au) || !isSliceNALU(au[i+1]) {
						r.misplaced++
					}
				}
			}
		}
	}
	onRTCP := func(m *description.Media, pkt rtcp.Packet) {
		now := time.Now()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.packets = append(r.packets, now)
		if _, ok := pkt.(*rtcp.SenderReport); ok && m == videoMedia {
			r.videoRTCP++
		}
	}
	err = rd.Play(rtspread.Options{
		Setup: func(desc *description.Session) ([]*description.Media, error) {
			if o.videoOnly {
				return []*description.Media{videoMedia}, nil
			}
			return desc.Medias, nil
		},
		OnRTP: onRTP, OnRTCP: onRTCP,
	})
	if err != nil {
		rd.Client.Close()
		t.Fatal(err)
	}
	t.Cleanup(rd.Close)
	return r
}

func isSliceNALU(n []byte) bool {
	t := h264.NALUType(n[0] & 0x1f)
	return t == h264.NALUTypeIDR || t == h264.NALUTypeNonIDR
}

type readerStats struct {
	packets, videoAUs, keyAUs, audioPkts, videoRTCP, decodeErrs int
	stamps, misplaced                                           int
	maxStampLatency                                             time.Duration
}

func (r *reader) stats() readerStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return readerStats{
		packets:    len(r.packets),
		videoAUs:   r.videoAUs,
		keyAUs:     r.keyAUs,
		audioPkts:  r.audioPkts,
		videoRTCP:  r.videoRTCP,
		decodeErrs: len(r.decodeErrs),
		stamps:     len(r.stamps),
		misplaced:  r.misplaced,
		maxStampLatency: func() time.Duration {
			var m time.Duration
			for _, d := range r.stamps {
				m = max(m, d)
			}
			return m
		}(),
	}
}

// packetsBetween counts packets that arrived in (from, to).
func (r *reader) packetsBetween(from, to time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, at := range r.packets {
		if at.After(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// waitFrames waits until n more video access units than now have arrived.
func (r *reader) waitFrames(t testing.TB, n int) {
	t.Helper()
	base := r.stats().videoAUs
	eventually(t, "video frames", func() bool { return r.stats().videoAUs >= base+n })
}

// alive reports whether the client is still connected.
func (r *reader) alive() bool { return r.rd.Alive() }
