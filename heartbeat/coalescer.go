// Package heartbeat keeps "last seen" times in memory and writes them to the
// database in batches, so a heartbeat is answered without waiting for a
// write: the same approach Fleet takes with host check-ins. Repeated
// heartbeats of one installation between two flushes cost one row.
package heartbeat

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentbot/registry/retry"
)

// Seen is one pending update: key (a userId, or an API key ID) was seen at At.
type Seen struct {
	Key string
	At  time.Time
}

// WriteFunc writes one batch, sorted by Key, in one statement or one
// transaction. It is retried when it fails with a retryable error.
type WriteFunc func(ctx context.Context, batch []Seen) error

// Options configure a Coalescer.
type Options struct {
	// Name appears in logs ("heartbeats", "key uses").
	Name string
	// FlushEvery is the longest a pending update waits.
	FlushEvery time.Duration
	// BatchSize is the most rows one write carries; a full batch is flushed
	// at once rather than at the next tick.
	BatchSize int
	// MaxPending caps the memory of the pending set. Updates for keys not
	// yet pending are dropped (and counted) while it is full.
	MaxPending int
	// Retryable reports whether a failed write may be tried again
	// (deadlocks, serialization failures, a busy SQLite file); nil: never.
	Retryable func(error) bool
	Log       *slog.Logger
}

// Coalescer collects Seen updates and writes them in batches.
type Coalescer struct {
	opts  Options
	write WriteFunc

	mu      sync.Mutex
	pending map[string]time.Time
	writing map[string]time.Time // taken by the flush under way, not yet written

	flushMu sync.Mutex // one flush at a time per process
	kick    chan struct{}

	recorded atomic.Int64 // updates accepted
	dropped  atomic.Int64 // updates refused because the pending set was full
	written  atomic.Int64 // rows written
	writes   atomic.Int64 // write statements or transactions
	failed   atomic.Int64 // rows lost after retries ran out
}

// New returns a Coalescer that writes with write. Call Run to flush in the
// background.
func New(write WriteFunc, opts Options) *Coalescer {
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = time.Second
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 1_000_000
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Coalescer{opts: opts, write: write, pending: map[string]time.Time{}, kick: make(chan struct{}, 1)}
}

// Record notes that key was seen at at. It never blocks on the database. It
// returns false when the update was dropped because the pending set is full.
func (c *Coalescer) Record(key string, at time.Time) bool {
	c.mu.Lock()
	prev, ok := c.pending[key]
	if !ok && len(c.pending) >= c.opts.MaxPending {
		c.mu.Unlock()
		if c.dropped.Add(1)%10000 == 1 {
			c.opts.Log.Warn("pending set full: dropping updates", "coalescer", c.opts.Name,
				"maxPending", c.opts.MaxPending, "droppedTotal", c.dropped.Load())
		}
		return false
	}
	if !ok || at.After(prev) {
		c.pending[key] = at
	}
	full := len(c.pending) >= c.opts.BatchSize
	c.mu.Unlock()
	c.recorded.Add(1)
	if full {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return true
}

// Pending returns the latest update of key that is not written yet.
func (c *Coalescer) Pending(key string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.pending[key]
	if was, writing := c.writing[key]; writing && (!ok || was.After(at)) {
		return was, true
	}
	return at, ok
}

// Run flushes every FlushEvery, or as soon as a batch is full, until ctx is
// done; then it flushes what is still pending and returns.
func (c *Coalescer) Run(ctx context.Context) {
	ticker := time.NewTicker(c.opts.FlushEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			c.Flush(final)
			return
		case <-ticker.C:
		case <-c.kick:
		}
		c.Flush(ctx)
	}
}

// Flush writes everything pending now, in batches sorted by key: every
// writer locks rows in the same order, so concurrent flushers (several
// replicas) cannot deadlock one another. It returns the first error of a
// batch that could not be written; such rows go back to the pending set
// unless a newer update arrived meanwhile.
func (c *Coalescer) Flush(ctx context.Context) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()

	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return nil
	}
	taken := c.pending
	c.pending = make(map[string]time.Time, len(taken))
	c.writing = taken
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.writing = nil
		c.mu.Unlock()
	}()

	all := make([]Seen, 0, len(taken))
	for k, at := range taken {
		all = append(all, Seen{Key: k, At: at})
	}
	slices.SortFunc(all, func(a, b Seen) int { return cmp.Compare(a.Key, b.Key) })

	var firstErr error
	for batch := range slices.Chunk(all, c.opts.BatchSize) {
		if err := c.writeWithRetry(ctx, batch); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			c.putBack(batch)
		}
	}
	return firstErr
}

// writeWithRetry tries a batch a few times with a growing pause when the
// database reports a retryable conflict.
func (c *Coalescer) writeWithRetry(ctx context.Context, batch []Seen) error {
	attempts, err := retry.Do(ctx, c.opts.Retryable, func() error {
		c.writes.Add(1)
		return c.write(ctx, batch)
	})
	switch {
	case err == nil:
		c.written.Add(int64(len(batch)))
	case ctx.Err() == nil: // when stopping, the rows go back and the final flush writes them
		c.opts.Log.Error("writing batch", "coalescer", c.opts.Name, "rows", len(batch), "attempts", attempts, "error", err)
	}
	return err
}

// putBack returns a failed batch to the pending set, for the next flush. It
// respects the cap; what does not fit is counted as failed.
func (c *Coalescer) putBack(batch []Seen) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range batch {
		if prev, ok := c.pending[s.Key]; ok {
			if s.At.After(prev) {
				c.pending[s.Key] = s.At
			}
			continue
		}
		if len(c.pending) >= c.opts.MaxPending {
			c.failed.Add(1)
			continue
		}
		c.pending[s.Key] = s.At
	}
}

// Stats are the counters of a Coalescer, for metrics and benchmarks.
type Stats struct {
	Pending  int
	Recorded int64
	Dropped  int64
	Written  int64
	Writes   int64
	Failed   int64
}

// Stats returns the current counters.
func (c *Coalescer) Stats() Stats {
	c.mu.Lock()
	pending := len(c.pending)
	c.mu.Unlock()
	return Stats{Pending: pending, Recorded: c.recorded.Load(), Dropped: c.dropped.Load(),
		Written: c.written.Load(), Writes: c.writes.Load(), Failed: c.failed.Load()}
}
