// Package rtspread plays an RTSP URL with gortsplib's client: the
// independent reader that camd's tests and its bench put in front of a
// camera, the simulator or the relay, to see what a client other than
// camd's own gets. What is done with the packets is the caller's.
//
// It imports no testing code, so that the bench binary can use it too.
package rtspread

import (
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Options says how to read.
type Options struct {
	// UDP asks for RTP over UDP; the default is interleaved TCP.
	UDP bool
	// ReadTimeout is the client's; 0 means 20 s.
	ReadTimeout time.Duration
	// Setup, when set, is called with the description before SETUP: it
	// prepares what the callbacks need (depacketizers) and returns the
	// medias to set up. Without it every media is set up.
	Setup func(*description.Session) ([]*description.Media, error)
	// OnRTP and OnRTCP, when set, get every packet of the medias set up.
	OnRTP  func(*description.Media, format.Format, *rtp.Packet)
	OnRTCP func(*description.Media, rtcp.Packet)
}

// Reader is one client connection.
type Reader struct {
	Client *gortsplib.Client
	Desc   *description.Session

	done chan struct{}
	err  error
}

// Dial connects to url and describes it; the caller plays (Play) or
// closes (Client.Close) it.
func Dial(url string, o Options) (*Reader, error) {
	u, err := base.ParseURL(url)
	if err != nil {
		return nil, err
	}
	proto := gortsplib.ProtocolTCP
	if o.UDP {
		proto = gortsplib.ProtocolUDP
	}
	timeout := o.ReadTimeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	c := &gortsplib.Client{
		Scheme:        u.Scheme,
		Host:          u.Host,
		Protocol:      &proto,
		ReadTimeout:   timeout,
		OnDecodeError: func(error) {},
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	desc, _, err := c.Describe(u)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("describe: %w", err)
	}
	return &Reader{Client: c, Desc: desc, done: make(chan struct{})}, nil
}

// Play dials url and plays it with o; the connection is closed on error.
func Play(url string, o Options) (*Reader, error) {
	r, err := Dial(url, o)
	if err != nil {
		return nil, err
	}
	if err := r.Play(o); err != nil {
		r.Client.Close()
		return nil, err
	}
	return r, nil
}

// Play sets up the medias o.Setup picks (all without it), hooks o's
// callbacks and plays. Done is closed when the connection ends.
func (r *Reader) Play(o Options) error {
	medias := r.Desc.Medias
	if o.Setup != nil {
		var err error
		if medias, err = o.Setup(r.Desc); err != nil {
			return err
		}
	}
	if err := r.Client.SetupAll(r.Desc.BaseURL, medias); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if o.OnRTP != nil {
		r.Client.OnPacketRTPAny(o.OnRTP)
	}
	if o.OnRTCP != nil {
		r.Client.OnPacketRTCPAny(o.OnRTCP)
	}
	if _, err := r.Client.Play(nil); err != nil {
		return fmt.Errorf("play: %w", err)
	}
	go func() {
		r.err = r.Client.Wait()
		close(r.done)
	}()
	return nil
}

// Done is closed once a played connection has ended.
func (r *Reader) Done() <-chan struct{} { return r.done }

// Err is why the connection ended, once Done is closed.
func (r *Reader) Err() error {
	<-r.done
	return r.err
}

// Alive reports whether the played connection is still up.
func (r *Reader) Alive() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// Close ends a played connection and waits for it.
func (r *Reader) Close() {
	r.Client.Close()
	<-r.done
}
