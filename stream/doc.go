// Package stream reads video from RTSP cameras.
//
// A reader makes exactly one connection attempt: Read connects, sets up the
// camera's video track, decodes RTP into access units and reports each one as
// a Frame until the connection ends, and then returns why. Deciding whether
// and when to try again is the caller's job (see package device).
//
// A playing TCP connection is read in batches (Options.ReadBatch, Linux
// only): the reader sleeps until a tick shared by every camera or until
// 64 KiB are queued, rather than waking for every RTP packet, which was
// most of the CPU camd spent per camera.
//
// Only decoded video access units count as frames: audio, RTCP and
// keep-alives never do, so a camera that sends only those looks stalled.
package stream
