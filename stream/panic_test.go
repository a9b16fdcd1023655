package stream_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/stream"
	"github.com/camd/camd/stream/sim"
)

func TestPanicInFrameCallbackIsReturned(t *testing.T) {
	t.Parallel()
	sm, err := sim.New(sim.Config{Cameras: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = stream.Read(ctx, stream.Options{URL: sm.URL(1), OnFrame: func(stream.Frame) { panic("boom") }})
	if !errors.Is(err, stream.ErrReaderPanic) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Read = %v, want a recovered panic", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Read returned only at the timeout")
	}
}
