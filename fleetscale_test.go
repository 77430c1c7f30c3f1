package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Heartbeats are acknowledged at once and written in batches: many
// heartbeats cost a handful of statements, and after the flush every one of
// them is reflected in lastSeen.
func TestHeartbeatsAreCoalesced(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		const users = 50
		for i := range users {
			a.register(t, a.AdminKey, fmt.Sprintf("user-%03d", i), "home")
		}
		a.settle(t)
		before := a.Resolver.Heartbeats.Stats()

		a.Clock.Advance(time.Minute)
		for round := range 4 {
			for i := range users {
				res := a.do(t, http.MethodPost, "/api/heartbeat", "", fmt.Sprintf(`{"userId":"user-%03d"}`, i))
				if res.Status != http.StatusOK {
					t.Fatalf("heartbeat: %d %s", res.Status, res.Raw)
				}
			}
			if round < 3 {
				a.Clock.Advance(time.Second)
			}
		}
		a.settle(t)
		after := a.Resolver.Heartbeats.Stats()
		if got := after.Recorded - before.Recorded; got != 4*users {
			t.Errorf("recorded %d heartbeats, want %d", got, 4*users)
		}
		if got := after.Written - before.Written; got != users {
			t.Errorf("wrote %d rows for %d installations, want one row each", got, users)
		}
		if got := after.Writes - before.Writes; got != 1 {
			t.Errorf("%d write statements for one flush of %d rows, want 1", got, users)
		}
		want := a.Clock.Now().UTC().Format(time.RFC3339)
		list := a.do(t, http.MethodGet, "/api/installations", a.AdminKey, "")
		for _, item := range list.JSON["installations"].([]any) {
			inst := item.(map[string]any)
			if inst["lastSeen"] != want {
				t.Errorf("%s lastSeen %v, want the last heartbeat's time %s", inst["userId"], inst["lastSeen"], want)
			}
		}
	})
}

// A heartbeat older than the stored lastSeen (say, a registration happened
// after it) never moves lastSeen backwards.
func TestHeartbeatNeverMovesLastSeenBack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		a.do(t, http.MethodPost, "/api/heartbeat", "", `{"userId":"u1"}`) // unknown yet: ignored
		a.Clock.Advance(time.Minute)
		a.register(t, a.AdminKey, "u1", "home")
		a.settle(t)
		data := a.mustGraphql(t, a.AdminKey, `{ installation(userId: "u1") { lastSeen } }`, nil)
		got := data["installation"].(map[string]any)["lastSeen"].(string)
		at, _ := time.Parse(time.RFC3339Nano, got)
		if !at.Equal(a.Clock.Now()) {
			t.Errorf("lastSeen %s, want the registration time %s", got, a.Clock.Now())
		}
	})
}

// Two servers on one database (two replicas) flush overlapping batches at
// the same time, again and again: rows are locked in one order, so neither
// deadlocks, and both sets of heartbeats land.
func TestConcurrentFlushersDoNotDeadlock(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		b := newApp(t, a.dbURL, nil)
		const users = 300
		for i := range users {
			a.register(t, a.AdminKey, fmt.Sprintf("user-%04d", i), "home")
		}
		for round := range 10 {
			for _, replica := range []*app{a, b} {
				replica.Clock.Advance(time.Second)
				for i := range users {
					replica.Resolver.Heartbeats.Record(fmt.Sprintf("user-%04d", i), replica.Clock.Now())
				}
			}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, replica := range []*app{a, b} {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					errs[i] = replica.Resolver.Heartbeats.Flush(ctx)
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("round %d, replica %d: %v", round, i, err)
				}
			}
		}
		for _, replica := range []*app{a, b} {
			if s := replica.Resolver.Heartbeats.Stats(); s.Failed != 0 || s.Pending != 0 {
				t.Errorf("replica stats after the rounds: %+v", s)
			}
		}
		latest := b.Clock.Now()
		n, err := a.DB.Client.Installation.Query().Count(context.Background())
		if err != nil || n != users {
			t.Fatalf("count %d, %v", n, err)
		}
		data := a.mustGraphql(t, a.AdminKey, `{ installations(first: 1, orderBy: {field: LAST_SEEN, direction: ASC}) { edges { node { lastSeen } } } }`, nil)
		oldest := data["installations"].(map[string]any)["edges"].([]any)[0].(map[string]any)["node"].(map[string]any)["lastSeen"].(string)
		at, _ := time.Parse(time.RFC3339Nano, oldest)
		if !at.Equal(latest) {
			t.Errorf("oldest lastSeen %s, want every row at the last round's time %s", oldest, latest)
		}
	})
}

// A key revoked by another process (another replica, or the command line)
// is refused once the cache looks at the change marker, which it does once
// a second (settle does it now); in the process that revoked it, at once.
func TestRevocationReachesOtherReplicas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		b := newApp(t, a.dbURL, nil)
		key := a.createKey(t, "u1", "user", "solo")
		for _, replica := range []*app{a, b} {
			if res := replica.do(t, http.MethodPost, "/api/validate-key", key, ""); res.Status != http.StatusOK {
				t.Fatalf("before revocation: %d %s", res.Status, res.Raw)
			}
		}
		data := a.mustGraphql(t, a.AdminKey, `{ viewer { keyId } apiKeys(where: {userId: "u1"}) { edges { node { id } } } }`, nil)
		id := data["apiKeys"].(map[string]any)["edges"].([]any)[0].(map[string]any)["node"].(map[string]any)["id"]
		a.mustGraphql(t, a.AdminKey, `mutation($id: ID!) { revokeAPIKey(id: $id) { revokedAt } }`, map[string]any{"id": id})

		if res := a.do(t, http.MethodPost, "/api/validate-key", key, ""); res.Status != http.StatusUnauthorized {
			t.Errorf("revoking replica still accepts the key: %d %s", res.Status, res.Raw)
		}
		b.settle(t)
		if res := b.do(t, http.MethodPost, "/api/validate-key", key, ""); res.Status != http.StatusUnauthorized {
			t.Errorf("other replica still accepts the key after its marker check: %d %s", res.Status, res.Raw)
		}
	})
}

// Concurrent registrations are written in groups: every one is answered
// only once written, repeats of one userId keep their order, and a burst
// costs fewer statements than registrations.
func TestRegistrationsAreGroupCommitted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		statements := countQueries(a)
		const users, repeats = 40, 3
		var wg sync.WaitGroup
		for i := range users {
			wg.Go(func() {
				for j := range repeats {
					body := fmt.Sprintf(`{"userId":"burst-%02d","mode":"%s","gatewayToken":"tok-%d"}`, i, []string{"home", "link", "cloud"}[j], j)
					if res := a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, body); res.Status != http.StatusOK {
						t.Errorf("%s: %d %s", body, res.Status, res.Raw)
					}
				}
			})
		}
		wg.Wait()
		var writes int
		for _, s := range statements() {
			if strings.Contains(s, "INSERT") {
				writes++
			}
		}
		if writes >= users*repeats {
			t.Errorf("%d INSERT statements for %d registrations: no grouping", writes, users*repeats)
		}
		t.Logf("%d registrations written by %d statements", users*repeats, writes)
		data := a.mustGraphql(t, a.AdminKey, `{ installations(first: 100, where: {userIdHasPrefix: "burst-"}) { totalCount edges { node { userId mode gatewayToken } } } }`, nil)
		conn := data["installations"].(map[string]any)
		if conn["totalCount"] != float64(users) {
			t.Fatalf("totalCount %v, want %d", conn["totalCount"], users)
		}
		for _, e := range conn["edges"].([]any) {
			n := e.(map[string]any)["node"].(map[string]any)
			if n["mode"] != "CLOUD" || n["gatewayToken"] != "tok-2" {
				t.Errorf("%v: want each user's last registration (CLOUD, tok-2)", n)
			}
		}
	})
}

// A registration batch that PostgreSQL aborts to break a deadlock is
// written again rather than answered with a 500. Here the deadlock is made
// on purpose: another transaction holds u-b and then asks for u-a while the
// batch [u-a, u-b] holds u-a and waits for u-b, as a heartbeat flush of
// another replica locking rows in another order could. The batch waited
// first, so its deadlock check runs first and it is the one aborted.
// PostgreSQL only: SQLite has no row locks to deadlock on.
func TestRegistrationBatchRetriedAfterDeadlock(t *testing.T) {
	pgURL := os.Getenv("TEST_DATABASE_URL")
	if pgURL == "" {
		t.Skip("TEST_DATABASE_URL is not set: PostgreSQL only")
	}
	t.Parallel()
	a := newApp(t, freshSchema(t, pgURL), nil)
	for _, id := range []string{"u-0", "u-a", "u-b"} {
		a.register(t, a.AdminKey, id, "home")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	other, err := sql.Open("pgx", a.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// lockRow begins a transaction holding the row of userID and returns it
	// with its backend's process ID.
	lockRow := func(userID string) (*sql.Tx, int) {
		tx, err := other.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Rollback() })
		var pid int
		if err := tx.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE installations SET mode = mode WHERE user_id = $1", userID); err != nil {
			t.Fatal(err)
		}
		return tx, pid
	}
	// waitBlockedBy waits until some backend waits for a lock held by pid.
	waitBlockedBy := func(pid int) {
		for {
			var n int
			err := other.QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", pid).Scan(&n)
			if err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	register := func(wg *sync.WaitGroup, userID string) {
		wg.Go(func() {
			body := fmt.Sprintf(`{"userId":%q,"mode":"link"}`, userID)
			if res := a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, body); res.Status != http.StatusOK {
				t.Errorf("register %s: %d %s", userID, res.Status, res.Raw)
			}
		})
	}

	holdsFirst, firstPID := lockRow("u-0")
	holdsB, bPID := lockRow("u-b")
	var wg sync.WaitGroup
	register(&wg, "u-0") // a batch of its own, waiting for holdsFirst
	waitBlockedBy(firstPID)
	register(&wg, "u-a") // these two queue meanwhile: the next batch
	register(&wg, "u-b")
	time.Sleep(500 * time.Millisecond) // for both requests to reach the queue
	if err := holdsFirst.Commit(); err != nil {
		t.Fatal(err)
	}
	waitBlockedBy(bPID) // the batch [u-a, u-b] holds u-a and waits for u-b
	if _, err := holdsB.ExecContext(ctx, "UPDATE installations SET mode = mode WHERE user_id = 'u-a'"); err != nil {
		t.Fatalf("the other transaction was the deadlock's victim, not the batch: %v", err)
	}
	if err := holdsB.Commit(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !strings.Contains(a.Logs.String(), "registration batch retried") {
		t.Errorf("no retry logged; the deadlock did not happen as staged:\n%s", a.Logs.String())
	}
	data := a.mustGraphql(t, a.AdminKey, `{ installations(first: 10) { edges { node { userId mode } } } }`, nil)
	for _, e := range data["installations"].(map[string]any)["edges"].([]any) {
		if n := e.(map[string]any)["node"].(map[string]any); n["mode"] != "LINK" {
			t.Errorf("%v: want the re-registration's mode LINK", n)
		}
	}
}

// The whole fleet's counts are reused for up to a second, and stay exact
// meanwhile: installations crossing the inactivity threshold inside that
// second are subtracted as they cross, without a recount.
func TestFleetSummaryExactWhileReused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		for i := range 3 {
			a.register(t, a.AdminKey, fmt.Sprintf("edge-%d", i), "home")
			a.Clock.Advance(200 * time.Millisecond)
		}
		// The three registrations happened at t0, t0+200ms and t0+400ms;
		// now is t0+600ms. Move to 100 ms before the first one turns inactive.
		a.Clock.Advance(5*time.Minute - 700*time.Millisecond)
		statements := countQueries(a)
		summary := func() float64 {
			data := a.mustGraphql(t, a.AdminKey, `{ fleetSummary { active } }`, nil)
			return data["fleetSummary"].(map[string]any)["active"].(float64)
		}
		if got := summary(); got != 3 {
			t.Fatalf("active %v, want 3", got)
		}
		counted := len(statements())
		for _, step := range []struct {
			advance time.Duration
			active  float64
		}{{100 * time.Millisecond, 3}, {time.Millisecond, 2}, {200 * time.Millisecond, 1}, {200 * time.Millisecond, 0}} {
			a.Clock.Advance(step.advance)
			if got := summary(); got != step.active {
				t.Errorf("after +%v: active %v, want %v", step.advance, got, step.active)
			}
		}
		if again := len(statements()); again != 0 {
			t.Errorf("%d statements while the counts were reusable (the first count took %d)", again, counted)
		}
	})
}
