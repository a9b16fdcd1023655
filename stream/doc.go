// Package stream reads video from RTSP cameras.
//
// A reader makes exactly one connection attempt: Read connects, sets up the
// camera's video track, decodes RTP into access units and reports each one as
// a Frame until the connection ends, and then returns why. Deciding whether
// and when to try again is the caller's job (see package device).
//
// Over TCP and TLS, Read speaks RTSP with camd's own session
// (stream/internal/rtsp), which reads a playing connection in batches
// (Options.ReadBatch, Linux only): the reader sleeps until a tick shared by
// every camera or until 64 KiB are queued, rather than waking for every RTP
// packet, which was most of the CPU camd spent per camera. The video's
// packets are handled straight from each batch, and H.264 and H.265 are
// depacketized by camd's own depacketizers (RFC 6184 and 7798; depack.go,
// h264depack.go, h265depack.go), which reuse their buffers: garbage per
// packet, at 25 fps per camera, was the next largest cost. Over UDP, under
// TransportAuto until UDP is found not to get through, and for SRTP, Read
// uses gortsplib's Client.
//
// Only decoded video access units count as frames: audio, RTCP and
// keep-alives never do, so a camera that sends only those looks stalled.
// A caller that relays audio (Options.OnAudio) gets the RTP packets of the
// first audio track camd can pass on, as the camera sent them; Info.Audio
// says what became of every audio track.
package stream
