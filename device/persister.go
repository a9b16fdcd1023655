package device

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/store"
)

// persister writes persisted-status changes to the store. Supervisors hand
// it updates without blocking; it writes whatever is pending in one
// transaction, so many cameras changing at once (a switch blinks) cost one
// write. A failed write (disk full) is logged and retried; the newest update
// for a camera replaces an older one still pending, so nothing is written
// twice and the last word wins.
type persister struct {
	st    *store.Store
	log   *slog.Logger
	delay time.Duration // batching window after the first pending update

	mu      sync.Mutex
	pending map[string]store.StatusUpdate
	writes  map[string]uint64 // status writes per camera ID
	queued  uint64            // updates handed in so far
	written uint64            // updates handed in and then written (or dropped as stale)
	failing bool
	emit    func(events.Kind) // set by the Manager before run starts
	flushed *sync.Cond
	kick    chan struct{}
	done    chan struct{}
}

func newPersister(st *store.Store, log *slog.Logger) *persister {
	p := &persister{
		st:      st,
		log:     log,
		delay:   20 * time.Millisecond,
		pending: map[string]store.StatusUpdate{},
		writes:  map[string]uint64{},
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	p.flushed = sync.NewCond(&p.mu)
	return p
}

// put queues an update; it never blocks on the disk.
func (p *persister) put(u store.StatusUpdate) {
	p.mu.Lock()
	p.pending[u.ID] = u
	p.queued++
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// forget drops anything pending for a camera that is being removed.
func (p *persister) forget(id string) {
	p.mu.Lock()
	delete(p.pending, id)
	delete(p.writes, id)
	p.mu.Unlock()
}

// writeCount returns how many status writes touched the camera.
func (p *persister) writeCount(id string) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writes[id]
}

// run writes pending updates until ctx is done, then makes a last attempt.
func (p *persister) run(ctx context.Context) {
	defer close(p.done)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-ctx.Done():
			p.write()
			p.mu.Lock()
			p.written = p.queued // nobody may wait past the end
			p.flushed.Broadcast()
			p.mu.Unlock()
			return
		case <-p.kick:
			// Let a burst of changes gather into one transaction.
			t := time.NewTimer(p.delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		case <-retry.C:
		}
		if !p.write() {
			retry.Reset(2 * time.Second)
		}
	}
}

// write writes everything pending in one transaction and reports success.
func (p *persister) write() bool {
	p.mu.Lock()
	if len(p.pending) == 0 {
		p.written = p.queued
		p.flushed.Broadcast()
		p.mu.Unlock()
		return true
	}
	batch := make([]store.StatusUpdate, 0, len(p.pending))
	for _, u := range p.pending {
		batch = append(batch, u)
	}
	upTo := p.queued
	p.mu.Unlock()

	err := p.st.SetStatuses(batch)

	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if !p.failing {
			p.log.Error("cannot persist camera statuses; cameras keep running, will retry", "cameras", len(batch), "err", err)
			if p.emit != nil {
				p.emit(events.StoreWriteFailing)
			}
		}
		p.failing = true
		return false
	}
	if p.failing {
		p.log.Info("persisting camera statuses again", "cameras", len(batch))
		if p.emit != nil {
			p.emit(events.StoreRecovered)
		}
		p.failing = false
	}
	for _, u := range batch {
		p.writes[u.ID]++
		// Keep a newer update that arrived while writing.
		if cur, ok := p.pending[u.ID]; ok && cur == u {
			delete(p.pending, u.ID)
		}
	}
	p.written = upTo
	if len(p.pending) > 0 {
		// Newer updates arrived while writing: another round.
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	p.flushed.Broadcast()
	return true
}

// flush waits until every update queued before the call has been written,
// or ctx is done. It returns ctx.Err() in the latter case.
func (p *persister) flush(ctx context.Context) error {
	p.mu.Lock()
	target := p.queued
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.flushed.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.written < target {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.flushed.Wait()
	}
	return nil
}
