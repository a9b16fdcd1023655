package stream

import (
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
)

// Audio codec names as reported in AudioTrack.Codec. Other formats are
// named by their SDP encoding name in lower case ("g726-32", "speex").
const (
	CodecAAC  = "aac"
	CodecOpus = "opus"
	CodecPCMU = "pcmu"
	CodecPCMA = "pcma"
	CodecG722 = "g722"
	CodecL16  = "l16"
	CodecMP3  = "mpeg-audio"
)

// Reasons an audio track is not read, in AudioTrack.NotRead.
const (
	// AudioNotWanted: the caller set no Options.OnAudio.
	AudioNotWanted = "audio not requested"
	// AudioUnsupported: the relay's readers cannot be given the format
	// as it is.
	AudioUnsupported = "the relay does not pass this codec on"
	// AudioExtra: only the first audio track the relay can pass on is
	// read.
	AudioExtra = "only the first audio track is relayed"
)

// AudioTrack is one audio track of the camera, as Info reports it.
type AudioTrack struct {
	// Codec is CodecAAC, CodecOpus, ... or the SDP encoding name in lower
	// case.
	Codec string
	// Media and Format are the track as the camera described it.
	Media  *description.Media
	Format format.Format
	// NotRead is "" for the track that was set up, whose packets go to
	// Options.OnAudio; else why it was not (AudioUnsupported, ...).
	NotRead string
}

// audioCodec names an audio format and tells whether camd passes it on:
// the formats a relay reader (ffmpeg, VLC, a browser gateway) takes as RTP
// without anything camd would have to rewrite in the payload.
func audioCodec(f format.Format) (string, bool) {
	switch fm := f.(type) {
	case *format.MPEG4Audio:
		return CodecAAC, fm.Config != nil
	case *format.Opus:
		return CodecOpus, true
	case *format.G711:
		if fm.MULaw {
			return CodecPCMU, true
		}
		return CodecPCMA, true
	case *format.G722:
		return CodecG722, true
	case *format.LPCM:
		return CodecL16, fm.BitDepth == 16
	case *format.MPEG1Audio:
		return CodecMP3, true
	}
	return strings.ToLower(codecName(f)), false
}

// findAudio lists the camera's audio tracks. The first one camd passes on
// is to be read (NotRead ""), unless want is false; every other track says
// why it is not.
func findAudio(desc *description.Session, want bool) []AudioTrack {
	var tracks []AudioTrack
	picked := false
	for _, m := range desc.Medias {
		if m.Type != description.MediaTypeAudio || len(m.Formats) == 0 {
			continue
		}
		// A track's first format is the one the camera sends.
		f := m.Formats[0]
		codec, ok := audioCodec(f)
		t := AudioTrack{Codec: codec, Media: m, Format: f}
		switch {
		case !ok:
			t.NotRead = AudioUnsupported
		case !want:
			t.NotRead = AudioNotWanted
		case picked:
			t.NotRead = AudioExtra
		default:
			picked = true
		}
		tracks = append(tracks, t)
	}
	return tracks
}
