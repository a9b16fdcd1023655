package relay

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/camd/camd/stream"
)

// maxQueuedAudio bounds the audio packets waiting for a Feed's goroutine
// (about 5 s of 20 ms packets); beyond it packets are dropped, which
// readers see as a gap in sequence numbers.
const maxQueuedAudio = 256

// audioPayloadType is the payload type of a relayed audio format whose
// payload type the camera chose (dynamic); static ones (PCMU 0, PCMA 8,
// G.722 9, MPEG audio 14) are kept.
const audioPayloadType = 97

// maxAudioJump is how far, in seconds of the track's clock, a camera's
// audio timestamps may move between two packets before the relay takes
// them as a new timeline. A reader that leaves and a later one that comes
// back see such a step too, as packets are not queued without readers.
const maxAudioJump = 10

// audioPacket is a copy of a camera's audio RTP packet, which is valid
// only during the Tap callback. They are recycled.
type audioPacket struct {
	track   int
	at      time.Time
	seq     uint16
	ts      uint32
	marker  bool
	payload []byte
}

var audioPool = sync.Pool{New: func() any { return new(audioPacket) }}

func releaseAudio(p *audioPacket) {
	if p == nil || cap(p.payload) > maxPooledBuf {
		return
	}
	audioPool.Put(p)
}

// Audio implements device.Tap: one RTP packet of the camera's relayed
// audio track. It copies the packet and returns at once. Without readers
// nothing is queued: the relay's audio timeline is made from each
// packet's wall-clock time, so it needs no packet it did not send.
func (f *Feed) Audio(track int, pkt *rtp.Packet, at time.Time) {
	if f.readers.Load() == 0 {
		return
	}
	p := audioPool.Get().(*audioPacket)
	p.track, p.at = track, at
	p.seq, p.ts, p.marker = pkt.SequenceNumber, pkt.Timestamp, pkt.Marker
	p.payload = append(p.payload[:0], pkt.Payload...)
	f.qmu.Lock()
	if f.stopped || f.aqueued >= maxQueuedAudio {
		f.qmu.Unlock()
		releaseAudio(p)
		return
	}
	f.queue = append(f.queue, event{kind: evAudio, audio: p})
	f.aqueued++
	f.qmu.Unlock()
	if !f.batched.Load() {
		f.signal()
	}
}

// audioOut is the audio relaying state, owned by the Feed's goroutine.
//
// The relay's audio timestamps are the camera's plus an offset, set from
// the wall clock whenever the camera's timeline starts or breaks (a new
// connection, a jump): the packet then gets the relay timestamp its
// arrival time maps to on the video's timeline (or on the audio's own, if
// no video was sent yet). Between those points the camera's clock is
// kept, so the audio plays as recorded; each packet goes out with its
// arrival time for the sender reports, as video frames do, so readers
// keep audio and video in step.
type audioOut struct {
	// The camera side, from the last Info.
	track    int           // index in Info.Audio of the read track; -1 if none
	codec    string        // its codec name
	camForma format.Format // its format
	key      string        // what identifies camForma, to notice a change
	warned   string        // the not-relayed tracks last logged

	// The relay side: the audio media of the stream, nil if none.
	media  *description.Media
	pt     uint8
	clock  int64
	stKey  string
	pkt    rtp.Packet // reused for each packet written
	synced bool       // offset and seqOff hold for the camera's timeline
	offset uint32     // relay timestamp = camera timestamp + offset
	seqOff uint16     // relay sequence number = camera's + seqOff
	camTS  uint32     // the camera timestamp of the last packet
	sent   bool       // a packet was sent on the stream
	lastTS uint32     // relay timestamp of the last packet sent
	last64 int64      // lastTS, unwrapped
	// anchorAt is the wall-clock time of relay timestamp 0 of the audio:
	// the video's origin when the audio joined its timeline, else the
	// first packet's arrival. Sender reports map through it.
	anchorAt time.Time
	lastSeq  uint16    // relay sequence number of the last packet sent
	lastAt   time.Time // its arrival time

	// The video's last frame sent on the stream: its relay timestamp (90
	// kHz, not wrapped) and arrival time; videoConn if it came on the
	// camera's current connection.
	videoSent bool
	videoConn bool
	videoTS   int64
	videoAt   time.Time
}

// audioInfo takes the camera's audio tracks from Info: the one read is
// relayed; the others are logged once. A change of the relayed format
// ends the stream, so that readers get a new description.
func (f *Feed) audioInfo(i stream.Info) {
	a := &f.aud
	a.track, a.codec, a.camForma = -1, "", nil
	var skipped []string
	for k, t := range i.Audio {
		switch {
		case t.NotRead != "":
			skipped = append(skipped, t.Codec+" ("+t.NotRead+")")
		case relayAudioFormat(t.Format) == nil:
			skipped = append(skipped, t.Codec+" ("+stream.AudioUnsupported+")")
		default:
			a.track, a.codec, a.camForma = k, t.Codec, t.Format
		}
	}
	if s := strings.Join(skipped, ", "); s != a.warned {
		a.warned = s
		if s != "" {
			f.log.Warn("relay: audio not relayed", "tracks", s)
		}
	}
	a.key = audioKey(a.camForma)
	if f.out.st != nil && a.key != a.stKey {
		f.closeStream("audio changed")
	}
}

// audioKey identifies a format for audioInfo; "" for none.
func audioKey(fm format.Format) string {
	if fm == nil {
		return ""
	}
	return fmt.Sprintf("%T %d %s %v", fm, fm.PayloadType(), fm.RTPMap(), fm.FMTP())
}

// relayAudioFormat is the format the relay describes for the camera's
// audio format, or nil if it does not pass that format on. The payload is
// passed on as it is, so the description is the camera's, with its own
// payload type when that is dynamic.
func relayAudioFormat(fm format.Format) format.Format {
	switch c := fm.(type) {
	case *format.MPEG4Audio:
		if c.Config == nil {
			return nil
		}
		n := *c
		n.PayloadTyp = audioPayloadType
		return &n
	case *format.Opus:
		n := *c
		n.PayloadTyp = audioPayloadType
		return &n
	case *format.G711:
		n := *c
		if n.PayloadTyp >= 96 {
			n.PayloadTyp = audioPayloadType
		}
		return &n
	case *format.LPCM:
		n := *c
		if n.PayloadTyp >= 96 {
			n.PayloadTyp = audioPayloadType
		}
		return &n
	case *format.G722:
		return &format.G722{}
	case *format.MPEG1Audio:
		return &format.MPEG1Audio{}
	}
	return nil
}

// audioMedias is what openStream adds to the stream's description.
func (f *Feed) audioMedias() []*description.Media {
	a := &f.aud
	a.media = nil
	if a.camForma == nil {
		return nil
	}
	fm := relayAudioFormat(a.camForma)
	if fm == nil || fm.ClockRate() <= 0 {
		return nil
	}
	a.media = &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{fm}}
	a.pt, a.clock, a.stKey = fm.PayloadType(), int64(fm.ClockRate()), a.key
	a.synced, a.sent, a.videoSent = false, false, false
	return []*description.Media{a.media}
}

// audioStreamClosed forgets the stream's audio media.
func (f *Feed) audioStreamClosed() {
	f.aud.media = nil
	f.aud.stKey = ""
}

// audioNewConn notes that the camera's connection ended: the next
// connection's audio has a timeline of its own.
func (f *Feed) audioNewConn() {
	f.aud.synced = false
	f.aud.videoConn = false
}

// noteVideoSent records the last video frame sent, which the audio's
// timeline is joined to.
func (f *Feed) noteVideoSent(ts int64, at time.Time) {
	a := &f.aud
	a.videoSent, a.videoConn, a.videoTS, a.videoAt = true, true, ts, at
}

func (f *Feed) handleAudio(p *audioPacket) {
	a := &f.aud
	st := f.out.st
	if st == nil || a.media == nil || p.track != a.track {
		return
	}
	if a.synced {
		if d := int64(int32(p.ts - a.camTS)); d > maxAudioJump*a.clock || d < -a.clock {
			a.synced = false
		}
	}
	if !a.synced {
		want64, onVideo := a.wallTS(p.at)
		if a.sent && want64 <= a.last64 {
			want64 = a.last64 + 1 // never step back on a reader
		}
		if !a.sent {
			a.anchorAt = p.at
			if onVideo {
				a.anchorAt = f.out.anchorAt
			}
			a.last64 = want64
		}
		want := uint32(want64)
		a.offset = want - p.ts
		a.seqOff = 0
		if a.sent {
			a.seqOff = a.lastSeq + 1 - p.seq
		}
		a.synced = true
	}
	a.camTS = p.ts
	a.pkt = rtp.Packet{
		Header: rtp.Header{
			Version:        2,
			Marker:         p.marker,
			PayloadType:    a.pt,
			SequenceNumber: p.seq + a.seqOff,
			Timestamp:      p.ts + a.offset,
			SSRC:           st.ssrcAudio,
		},
		Payload: p.payload,
	}
	if a.sent {
		a.last64 += int64(int32(a.pkt.Timestamp - a.lastTS))
	}
	a.sent, a.lastTS, a.lastSeq, a.lastAt = true, a.pkt.Timestamp, a.pkt.SequenceNumber, p.at
	w := f.batchWire()
	buf, err := appendPacket(w.buf, audioChannel, &a.pkt)
	a.pkt.Payload = nil
	if err != nil {
		f.log.Debug("relay: audio packet dropped", "err", err)
		return
	}
	w.buf = buf
	w.pkts++
	w.aTS, w.aAt, w.aSet = a.lastTS, a.anchorAt.Add(ticks(a.last64, a.clock)), true
}

// wallTS is the relay timestamp, in the audio's clock, that wall-clock
// time at maps to: on the video's timeline if a frame of the camera's
// current connection was sent (the video decides how the timeline joins
// across a reconnect), else on the audio's own, else on the video's from
// before, else 0.
func (a *audioOut) wallTS(at time.Time) (ts int64, onVideo bool) {
	switch {
	case a.videoConn || (a.videoSent && !a.sent):
		v := a.videoTS + int64(at.Sub(a.videoAt))*videoClockRate/int64(time.Second)
		return v * a.clock / videoClockRate, true
	case a.sent:
		return a.last64 + int64(at.Sub(a.lastAt))*a.clock/int64(time.Second), false
	}
	return 0, false
}
