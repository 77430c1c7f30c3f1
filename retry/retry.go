// Package retry writes again what the database refused for a reason that
// passes: a deadlock or serialization failure on PostgreSQL, a busy file on
// SQLite. The batched heartbeat flushes and the grouped registrations both
// write this way.
package retry

import (
	"context"
	"time"
)

// Attempts is how many times Do tries: once, then again after 10, 20, 40
// and 80 ms, which outlasts the conflicts it is meant for.
const Attempts = 5

// Do calls write until it succeeds, fails with an error retryable does not
// accept (nil accepts none), ctx ends, or Attempts tries have failed. It
// returns how many tries it made and the last one's error.
func Do(ctx context.Context, retryable func(error) bool, write func() error) (int, error) {
	pause := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := write()
		if err == nil || ctx.Err() != nil || attempt >= Attempts || retryable == nil || !retryable(err) {
			return attempt, err
		}
		wait := time.NewTimer(pause)
		select {
		case <-wait.C:
		case <-ctx.Done():
			wait.Stop()
		}
		pause *= 2
	}
}
