package stream

import (
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/pion/sdp/v3"
)

// A stream the SDP gives keys for (SRTP) is read through the RTSP client,
// which decrypts it, not by camd's own session.
func TestEncryptedGoesToClient(t *testing.T) {
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
