package events

import (
	"log/slog"
	"sync"
	"time"
)

// Queue appends events to a Log from a goroutine of its own, so that
// whoever emits one (a camera's supervisor) never waits on the disk. Events
// keep their order. An Append that fails (a full disk) is retried; events
// wait in memory meanwhile, up to a bound past which the oldest are dropped
// (and that is logged once).
type Queue struct {
	log    Log
	logger *slog.Logger
	max    int
	retry  time.Duration

	mu      sync.Mutex
	pending []Event
	popped  uint64 // events taken off the front so far (written or dropped)
	dropped int
	closed  bool
	failing bool

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// QueueMax is how many events a Queue holds while its Log cannot take them.
const QueueMax = 1000

// NewQueue starts a Queue in front of l. Close stops it.
func NewQueue(l Log, logger *slog.Logger) *Queue {
	if logger == nil {
		logger = slog.Default()
	}
	q := &Queue{
		log: l, logger: logger, max: QueueMax, retry: 2 * time.Second,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go q.run()
	return q
}

// Emit queues e (its Time set now if zero) and returns at once. Events
// emitted after Close are dropped.
func (q *Queue) Emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	if len(q.pending) >= q.max {
		q.pending = q.pending[1:]
		q.popped++
		q.dropped++
	}
	q.pending = append(q.pending, e)
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// Pending returns how many events wait to be appended.
func (q *Queue) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// Close appends what is pending (one try each, for at most timeout) and
// stops the goroutine; events emitted later are dropped.
func (q *Queue) Close(timeout time.Duration) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		<-q.done
		return
	}
	q.closed = true
	q.mu.Unlock()
	close(q.stop)
	<-q.done
	end := time.Now().Add(timeout)
	for time.Now().Before(end) && q.writeOne() {
	}
	if n := q.Pending(); n > 0 {
		q.logger.Warn("events not written to the history at shutdown", "events", n)
	}
}

func (q *Queue) run() {
	defer close(q.done)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-q.stop:
			return
		case <-q.kick:
		case <-retry.C:
		}
		for q.writeOne() {
			select {
			case <-q.stop:
				return
			default:
			}
		}
		if q.Pending() > 0 {
			retry.Reset(q.retry)
		}
	}
}

// writeOne appends the oldest pending event and reports whether it did.
func (q *Queue) writeOne() bool {
	q.mu.Lock()
	if len(q.pending) == 0 {
		q.mu.Unlock()
		return false
	}
	e, at := q.pending[0], q.popped
	q.mu.Unlock()
	_, err := q.log.Append(e)
	q.mu.Lock()
	defer q.mu.Unlock()
	if err != nil {
		if !q.failing {
			q.failing = true
			q.logger.Error("cannot write events to the history; keeping them in memory and retrying", "pending", len(q.pending), "err", err)
		}
		return false
	}
	if q.failing {
		q.failing = false
		q.logger.Info("writing events to the history again", "pending", len(q.pending)-1)
	}
	if q.dropped > 0 {
		q.logger.Warn("events dropped: the history could not take them in time", "dropped", q.dropped)
		q.dropped = 0
	}
	// Emit may have dropped e meanwhile (the queue was full).
	if q.popped == at {
		q.pending = q.pending[1:]
		q.popped++
	}
	return true
}
