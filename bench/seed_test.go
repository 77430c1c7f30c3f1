package main

import (
	"testing"
	"time"
)

// The heartbeat load visits userIds thread by thread in turn (thread t's
// j-th request is userId t·span + j); in the default seeding each visit
// finds the installation seen longest ago among those not visited yet.
func TestSeenFollowsTheLoadsOrder(t *testing.T) {
	for _, c := range []struct{ n, threads int }{{1000, 2}, {1001, 2}, {999, 4}, {10, 1}, {3, 8}} {
		s := newSeeder(c.n, c.threads, false, nil)
		span := c.n / c.threads
		var visited []time.Time
		for j := range span {
			for th := range c.threads {
				visited = append(visited, s.seen(th*span+j))
			}
		}
		for k := 1; k < len(visited); k++ {
			if !visited[k].After(visited[k-1]) {
				t.Fatalf("n=%d threads=%d: visit %d is seen at %v, not after visit %d at %v", c.n, c.threads, k, visited[k], k-1, visited[k-1])
			}
		}
		// Never-visited installations are older than every visited one, and
		// every time lies in the 10-minute window.
		seen := map[time.Time]bool{}
		for i := range c.n {
			at := s.seen(i)
			if at.Before(s.now.Add(-10*time.Minute)) || !at.Before(s.now) {
				t.Fatalf("n=%d: installation %d seen at %v, outside the window", c.n, i, at)
			}
			if i >= span*c.threads && len(visited) > 0 && !at.Before(visited[0]) {
				t.Fatalf("n=%d threads=%d: unvisited installation %d is not older than the first visited", c.n, c.threads, i)
			}
			seen[at] = true
		}
		if len(seen) != c.n {
			t.Fatalf("n=%d: %d distinct times, want %d", c.n, len(seen), c.n)
		}
	}
}
