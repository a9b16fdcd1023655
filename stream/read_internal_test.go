package stream

import (
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/pion/sdp/v3"
)

// Packets the client must decrypt (SRTP) are never taken: not when SETUP
// is answered with the SAVP profile, not when the SDP gives keys.
func TestNoTakeWhenEncrypted(t *testing.T) {
	res := func(tr string) *base.Response {
		return &base.Response{StatusCode: base.StatusOK, Header: base.Header{"Transport": base.HeaderValue{tr}}}
	}
	if ch, ok := interleavedChannel(res("RTP/AVP/TCP;unicast;interleaved=2-3")); !ok || ch != 2 {
		t.Errorf("AVP: channel %d, %v; want 2, true", ch, ok)
	}
	if _, ok := interleavedChannel(res("RTP/SAVP/TCP;unicast;interleaved=2-3")); ok {
		t.Error("SAVP: a channel to take")
	}
	if _, ok := interleavedChannel(res("RTP/AVP;unicast;client_port=5000-5001")); ok {
		t.Error("UDP: a channel to take")
	}

	for name, crypto := range map[string]string{
		"plain": "",
		"SDES":  "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n",
	} {
		raw := "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\n" +
			"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n" + crypto
		var sd sdp.SessionDescription
		if err := sd.Unmarshal([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		var desc description.Session
		if err := desc.Unmarshal2(&sd); err != nil {
			t.Fatal(err)
		}
		if got, want := encrypted(&desc, desc.Medias[0]), crypto != ""; got != want {
			t.Errorf("%s: encrypted %v, want %v", name, got, want)
		}
	}
}
