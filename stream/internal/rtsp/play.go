package rtsp

import (
	"fmt"
	"time"
)

// read is the playing session's loop: sleep until data is due, read all
// of it, send a keepalive when it is time, end the connection when it has
// been silent for the read timeout.
func (s *Session) read() error {
	s.bc.play(s.cfg.Batch)
	s.lastData = time.Now()
	nextKA := s.lastData.Add(s.kaEvery)
	for {
		limit := s.limit()
		now := time.Now()
		if now.Sub(s.lastData) >= limit {
			return fmt.Errorf("%w: no data for %s", ErrReadTimeout, limit)
		}
		if !now.Before(nextKA) {
			if err := s.keepalive(); err != nil {
				return err
			}
			nextKA = now.Add(s.kaEvery)
		}
		wake := s.lastData.Add(limit)
		if nextKA.Before(wake) {
			wake = nextKA
		}
		if t := s.bc.nextTick(now); !t.IsZero() && t.Before(wake) {
			wake = t
		}
		if err := s.bc.wait(s, wake); err != nil {
			return s.stoppedOr(err)
		}
		err := s.rd.drain(s)
		if s.cfg.OnRead != nil {
			s.cfg.OnRead()
		}
		if err != nil {
			return s.stoppedOr(err)
		}
	}
}

// limit is the read timeout in force now.
func (s *Session) limit() time.Duration {
	if s.cfg.LiveTimeout != nil {
		if d := s.cfg.LiveTimeout(); d > 0 {
			return d
		}
	}
	return s.cfg.Timeout
}
