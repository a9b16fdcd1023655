package sim

import (
	"bytes"
	"testing"
	"time"
)

func TestStampRoundTrip(t *testing.T) {
	for _, ns := range []int64{
		time.Now().UnixNano(),
		0x0000000300000001, // zero runs that need emulation prevention
		0x0100000000000000,
		1,
	} {
		sent := time.Unix(0, ns)
		nalu := AppendStampSEI(nil, sent)
		if bytes.Contains(nalu, []byte{0, 0, 1}) || bytes.Contains(nalu, []byte{0, 0, 0}) {
			t.Errorf("%x: the NAL unit contains a start code: % x", ns, nalu)
		}
		got, ok := ReadStamp(nalu, false)
		if !ok || !got.Equal(sent) {
			t.Errorf("%x: ReadStamp = %v, %v; want %v", ns, got, ok, sent)
		}
		// The same SEI payload in an H.265 prefix SEI NAL unit.
		h265 := append([]byte{h265NALUTypePrefixSEI << 1, 1}, nalu[1:]...)
		if got, ok := ReadStamp(h265, true); !ok || !got.Equal(sent) {
			t.Errorf("%x: H.265 ReadStamp = %v, %v; want %v", ns, got, ok, sent)
		}
		if _, ok := ReadStamp(h265, false); ok {
			t.Errorf("an H.265 NAL unit read as H.264")
		}
	}
}

func TestReadStampRejects(t *testing.T) {
	good := AppendStampSEI(nil, time.Now())
	otherUUID := bytes.Clone(good)
	otherUUID[3] ^= 0x20 // inside the UUID
	for name, nalu := range map[string][]byte{
		"empty":           nil,
		"slice":           {0x65, 0x88, 0x84},
		"other uuid":      otherUUID,
		"truncated":       good[:len(good)-5],
		"other sei":       {0x06, 0x01, 0x01, 0x00, 0x80},
		"size past end":   {0x06, 0x05, 0xff, 0x10, 'c', 'a', 'm', 'd'},
		"only 0xff bytes": {0x06, 0xff, 0xff},
	} {
		if ts, ok := ReadStamp(nalu, false); ok {
			t.Errorf("%s: read a stamp %v", name, ts)
		}
	}
}

// A reader of the simulator sees a send-time stamp right before the picture
// of every frame with Stamp, and none without.
func TestSimStampsEveryFrame(t *testing.T) {
	t.Parallel()
	for _, stamp := range []bool{true, false} {
		s := newSim(t, Config{Cameras: 1, NoUDP: true, Stamp: stamp})
		r := startReader(t, s.URL(1), readerOpts{videoOnly: true})
		r.waitFrames(t, 30)
		st := r.stats()
		if st.decodeErrs != 0 {
			t.Errorf("stamp %v: %d decode errors", stamp, st.decodeErrs)
		}
		if !stamp {
			if st.stamps != 0 {
				t.Errorf("without Stamp the reader saw %d stamps", st.stamps)
			}
			continue
		}
		// The access unit in the decoder when the count was taken may be
		// complete and stamped or not: allow one either way.
		if st.stamps < st.videoAUs-1 || st.stamps > st.videoAUs {
			t.Errorf("%d stamps in %d access units", st.stamps, st.videoAUs)
		}
		if st.misplaced != 0 {
			t.Errorf("%d stamps not right before the first slice", st.misplaced)
		}
		// Sent and read on the same machine: well under the wait bound,
		// never negative.
		if st.maxStampLatency < 0 || st.maxStampLatency > waitTimeout {
			t.Errorf("latency up to %v", st.maxStampLatency)
		}
		r.mu.Lock()
		for _, d := range r.stamps {
			if d < 0 {
				t.Errorf("negative latency %v", d)
				break
			}
		}
		r.mu.Unlock()
	}
}

// Stamping every frame of every camera must cost the pacer no allocation.
func TestAppendStampSEINoAlloc(t *testing.T) {
	buf := make([]byte, 0, 64)
	now := time.Now()
	if n := testing.AllocsPerRun(100, func() { buf = AppendStampSEI(buf[:0], now) }); n != 0 {
		t.Errorf("%v allocations per stamp", n)
	}
}
