package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/camd/camd/internal/testutil/rtspread"
	"github.com/camd/camd/stream/sim"
)

// reader is one RTSP reader: an in-process gortsplib client over TCP that
// counts the RTP packets it receives and the ones missing from their
// sequence numbers, depacketizes the video and records, for every frame
// that carries the simulator's send-time stamp, the time from that stamp
// to the frame's arrival. It is the same for every system under test, and
// its CPU is the bench's, never the system's.
type reader struct {
	rd      *rtspread.Reader
	packets atomic.Int64
	// lost counts packets missing from the sequence numbers of each track.
	lost atomic.Int64
	// stamped counts frames with a send-time stamp.
	stamped atomic.Int64

	mu  sync.Mutex
	lat []time.Duration // since the last takeLatencies
}

// seqTrack follows one track's RTP sequence numbers. It is only used from
// the client's callbacks for that track, which gortsplib calls one at a
// time.
type seqTrack struct {
	last uint16
	seen bool
}

// gap returns how many packets are missing before seq; a packet older than
// the last one (reordered or repeated) counts none.
func (s *seqTrack) gap(seq uint16) int64 {
	if !s.seen {
		s.seen, s.last = true, seq
		return 0
	}
	d := seq - s.last
	if d == 0 || d >= 0x8000 {
		return 0
	}
	s.last = seq
	return int64(d - 1)
}

// auDecoder is the video depacketizer of either codec.
type auDecoder interface {
	Decode(*rtp.Packet) ([][]byte, error)
}

func startReader(url string) (*reader, error) {
	r := &reader{}
	// One callback per format, each with its own state; the map is only
	// read once playing.
	cbs := map[format.Format]func(*rtp.Packet){}
	rd, err := rtspread.Play(url, rtspread.Options{
		Setup: func(desc *description.Session) ([]*description.Media, error) {
			for _, m := range desc.Medias {
				for _, f := range m.Formats {
					cb, err := r.onPacket(f)
					if err != nil {
						return nil, err
					}
					cbs[f] = cb
				}
			}
			return desc.Medias, nil
		},
		OnRTP: func(_ *description.Media, f format.Format, pkt *rtp.Packet) {
			if cb := cbs[f]; cb != nil {
				cb(pkt)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	r.rd = rd
	return r, nil
}

// onPacket returns the callback of one format: every packet is counted and
// its sequence number checked; H.264 and H.265 are depacketized and their
// frames searched for a stamp.
func (r *reader) onPacket(f format.Format) (func(*rtp.Packet), error) {
	var dec auDecoder
	h265 := false
	switch f := f.(type) {
	case *format.H264:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		dec = d
	case *format.H265:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		dec, h265 = d, true
	}
	var seq seqTrack
	return func(pkt *rtp.Packet) {
		r.packets.Add(1)
		if g := seq.gap(pkt.SequenceNumber); g > 0 {
			r.lost.Add(g)
		}
		if dec == nil {
			return
		}
		au, err := dec.Decode(pkt)
		if err != nil {
			// More packets needed, or a broken frame: nothing to time.
			return
		}
		now := time.Now()
		for _, nalu := range au {
			if sent, ok := sim.ReadStamp(nalu, h265); ok {
				r.stamped.Add(1)
				r.mu.Lock()
				r.lat = append(r.lat, now.Sub(sent))
				r.mu.Unlock()
				break
			}
		}
	}, nil
}

// takeLatencies returns the latencies recorded since the last call.
func (r *reader) takeLatencies() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.lat
	r.lat = nil
	return l
}

func (r *reader) close() { r.rd.Close() }

func (r *reader) alive() bool { return r.rd.Alive() }

// startReaders connects one reader per URL, a few at a time, and returns
// how long each took to connect. On error the readers already started are
// closed.
func startReaders(ctx context.Context, urls []string) ([]*reader, []time.Duration, error) {
	out := make([]*reader, len(urls))
	took := make([]time.Duration, len(urls))
	errs := make([]error, len(urls))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if ctx.Err() != nil {
					errs[i] = ctx.Err()
					continue
				}
				t0 := time.Now()
				out[i], errs[i] = startReader(urls[i])
				took[i] = time.Since(t0)
			}
		}()
	}
	for i := range urls {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			closeReaders(out)
			return nil, nil, err
		}
	}
	return out, took, nil
}

func closeReaders(rs []*reader) {
	var wg sync.WaitGroup
	for _, r := range rs {
		if r == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.close()
		}()
	}
	wg.Wait()
}

// readerMark is the readers' counters at one instant.
type readerMark struct {
	at                     time.Time
	packets, lost, stamped []int64
	alive                  []bool
}

// markReaders snapshots every reader's counters; at a window's start it
// also discards the latencies recorded before it.
func markReaders(rs []*reader, start bool) readerMark {
	m := readerMark{at: time.Now(), packets: make([]int64, len(rs)), lost: make([]int64, len(rs)),
		stamped: make([]int64, len(rs)), alive: make([]bool, len(rs))}
	for i, r := range rs {
		m.packets[i], m.lost[i], m.stamped[i] = r.packets.Load(), r.lost.Load(), r.stamped.Load()
		m.alive[i] = r.alive()
		if start {
			r.takeLatencies()
		}
	}
	return m
}

// readerWindow fills w's reader figures from the marks at the start and
// end of its window, and takes the latencies recorded in between.
func readerWindow(w *window, rs []*reader, m0, m1 readerMark) {
	w.Readers = len(rs)
	if len(rs) == 0 {
		return
	}
	sec := m1.at.Sub(m0.at).Seconds()
	w.ReaderPktMin, w.StampedMin = -1, -1
	var sum float64
	var lat []time.Duration
	for i, r := range rs {
		pr := float64(m1.packets[i]-m0.packets[i]) / sec
		sr := float64(m1.stamped[i]-m0.stamped[i]) / sec
		sum += pr
		if w.ReaderPktMin < 0 || pr < w.ReaderPktMin {
			w.ReaderPktMin = pr
		}
		if w.StampedMin < 0 || sr < w.StampedMin {
			w.StampedMin = sr
		}
		w.ReaderPackets += m1.packets[i] - m0.packets[i]
		w.Lost += m1.lost[i] - m0.lost[i]
		if m0.alive[i] && !m1.alive[i] {
			w.Ended++
			if w.EndedErr == "" {
				w.EndedErr = fmt.Sprint(r.rd.Err())
			}
		}
		lat = append(lat, r.takeLatencies()...)
	}
	w.ReaderPktMean = sum / float64(len(rs))
	w.Latency = summarize(lat)
	if w.Ended > 0 {
		w.Note = fmt.Sprintf("%d readers ended during the window, the first with %q", w.Ended, w.EndedErr)
	}
}
