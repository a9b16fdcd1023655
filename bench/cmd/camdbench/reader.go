package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// reader is one relay reader: an in-process gortsplib client over TCP that
// counts the RTP packets it receives and does nothing else with them. Its
// CPU is the bench's, never camd's.
type reader struct {
	c       *gortsplib.Client
	packets atomic.Int64
	done    chan struct{}
	err     error
}

func startReader(url string) (*reader, error) {
	u, err := base.ParseURL(url)
	if err != nil {
		return nil, err
	}
	proto := gortsplib.ProtocolTCP
	r := &reader{done: make(chan struct{})}
	r.c = &gortsplib.Client{
		Scheme:        u.Scheme,
		Host:          u.Host,
		Protocol:      &proto,
		ReadTimeout:   20 * time.Second,
		OnDecodeError: func(error) {},
	}
	if err := r.c.Start(); err != nil {
		return nil, err
	}
	fail := func(err error) (*reader, error) {
		r.c.Close()
		return nil, err
	}
	desc, _, err := r.c.Describe(u)
	if err != nil {
		return fail(fmt.Errorf("describe %s: %w", url, err))
	}
	if err := r.c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return fail(fmt.Errorf("setup %s: %w", url, err))
	}
	r.c.OnPacketRTPAny(func(*description.Media, format.Format, *rtp.Packet) { r.packets.Add(1) })
	if _, err := r.c.Play(nil); err != nil {
		return fail(fmt.Errorf("play %s: %w", url, err))
	}
	go func() {
		r.err = r.c.Wait()
		close(r.done)
	}()
	return r, nil
}

func (r *reader) close() {
	r.c.Close()
	<-r.done
}

func (r *reader) alive() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

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

// readerCounts snapshots every reader's packet count.
func readerCounts(rs []*reader) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.packets.Load()
	}
	return out
}
