package heartbeat

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu      sync.Mutex
	batches [][]Seen
	fail    []error // errors to return, in order, before succeeding
}

func (r *recorder) write(_ context.Context, batch []Seen) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.fail) > 0 {
		err := r.fail[0]
		r.fail = r.fail[1:]
		return err
	}
	r.batches = append(r.batches, slices.Clone(batch))
	return nil
}

var t0 = time.Date(2026, 3, 21, 12, 0, 0, 0, time.UTC)

func TestLatestTimePerKeySortedInBatches(t *testing.T) {
	rec := &recorder{}
	c := New(rec.write, Options{BatchSize: 2})
	c.Record("b", t0.Add(2*time.Second))
	c.Record("b", t0.Add(time.Second)) // older: ignored
	c.Record("c", t0)
	c.Record("a", t0)
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := [][]Seen{{{"a", t0}, {"b", t0.Add(2 * time.Second)}}, {{"c", t0}}}
	if !slices.EqualFunc(rec.batches, want, func(x, y []Seen) bool { return slices.Equal(x, y) }) {
		t.Errorf("batches %v, want %v", rec.batches, want)
	}
	if s := c.Stats(); s.Recorded != 4 || s.Written != 3 || s.Writes != 2 || s.Pending != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestPendingSetIsCapped(t *testing.T) {
	c := New((&recorder{}).write, Options{MaxPending: 2, BatchSize: 10})
	if !c.Record("a", t0) || !c.Record("b", t0) {
		t.Fatal("refused below the cap")
	}
	if !c.Record("a", t0.Add(time.Second)) {
		t.Error("an already pending key must always be accepted")
	}
	if c.Record("c", t0) {
		t.Error("accepted a new key over the cap")
	}
	if s := c.Stats(); s.Dropped != 1 || s.Pending != 2 {
		t.Errorf("stats %+v", s)
	}
}

var errDeadlock = errors.New("deadlock detected")

func TestRetryableFailureIsRetried(t *testing.T) {
	rec := &recorder{fail: []error{errDeadlock, errDeadlock}}
	c := New(rec.write, Options{Retryable: func(err error) bool { return errors.Is(err, errDeadlock) }})
	c.Record("a", t0)
	if err := c.Flush(context.Background()); err != nil {
		t.Fatalf("flush after two deadlocks: %v", err)
	}
	if len(rec.batches) != 1 || c.Stats().Writes != 3 {
		t.Errorf("batches %v, stats %+v", rec.batches, c.Stats())
	}
}

func TestFailedBatchIsKeptForTheNextFlush(t *testing.T) {
	rec := &recorder{fail: []error{errors.New("database down")}}
	c := New(rec.write, Options{})
	c.Record("a", t0)
	if err := c.Flush(context.Background()); err == nil {
		t.Fatal("flush hid the write error")
	}
	c.Record("a", t0.Add(-time.Second)) // older than the kept one
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := [][]Seen{{{"a", t0}}}; len(rec.batches) != 1 || !slices.Equal(rec.batches[0], want[0]) {
		t.Errorf("batches %v, want %v", rec.batches, want)
	}
}

func TestRunFlushesOnTickAndOnStop(t *testing.T) {
	rec := &recorder{}
	c := New(rec.write, Options{FlushEvery: time.Hour, BatchSize: 2})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	c.Record("a", t0)
	c.Record("b", t0) // a full batch: flushed without waiting for the tick
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Written < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if c.Stats().Written != 2 {
		t.Fatalf("full batch not flushed: %+v", c.Stats())
	}
	c.Record("c", t0)
	stop()
	<-done
	if s := c.Stats(); s.Written != 3 || s.Pending != 0 {
		t.Errorf("stop did not flush what was pending: %+v", s)
	}
}

// Pending sees an update until it is written, including while its batch
// is being written, and the newer of a written and a newer pending one.
func TestPendingUntilWritten(t *testing.T) {
	writing, release := make(chan struct{}), make(chan struct{})
	c := New(func(context.Context, []Seen) error {
		close(writing)
		<-release
		return nil
	}, Options{})
	if _, ok := c.Pending("a"); ok {
		t.Fatal("pending before any update")
	}
	c.Record("a", t0)
	done := make(chan error)
	go func() { done <- c.Flush(context.Background()) }()
	<-writing
	if at, ok := c.Pending("a"); !ok || !at.Equal(t0) {
		t.Errorf("while written: %v %v", at, ok)
	}
	c.Record("a", t0.Add(time.Second))
	if at, _ := c.Pending("a"); !at.Equal(t0.Add(time.Second)) {
		t.Errorf("newer update while the older is written: %v", at)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if at, ok := c.Pending("a"); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Errorf("after the write, the newer update: %v %v", at, ok)
	}
}
