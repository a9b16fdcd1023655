//go:build !linux

package main

import (
	"errors"
	"time"
)

// drainBatched needs SO_RCVLOWAT and POLLRDHUP as Linux has them, which is
// what camd's batched ingest uses; elsewhere only -batch 0 runs.
func (s *floorSession) drainBatched(time.Duration) error {
	return errors.New("batched reads need Linux; run with -batch 0")
}
