package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/oklog/ulid/v2"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// seedRow is one installation the benchmark inserts: userId user-N.
type seedRow struct {
	id, userID, mode string
	token            *string
	registered, seen time.Time
}

// seeder makes the installations the benchmark inserts: userIds user-0 …
// user-(n-1), modes home/link/cloud 70/20/10, half with a gateway token,
// registered one after another over the last 90 days, last seen over the
// last 10 minutes (so with the default 5-minute threshold about half are
// active). IDs are ULIDs of the registration time, as the server makes them.
//
// By default lastSeen follows the order in which the heartbeat load visits
// the installations (wrk thread t walks userIds t·span …, one step each in
// turn), as in a fleet in steady state: the installation whose heartbeat
// arrives now is the one seen longest ago, one interval back. With random
// set, lastSeen is random instead, so every heartbeat of the load moves an
// index entry from a random place: the worst case for the database.
type seeder struct {
	n, i    int
	threads int  // wrk threads of the heartbeat load
	random  bool // lastSeen at random rather than in the load's order
	now     time.Time
	rng     *rand.Rand
	entropy *ulid.MonotonicEntropy
	seal    func(token, userID string) string // stores a token as the server would
}

func newSeeder(n, threads int, random bool, seal func(token, userID string) string) *seeder {
	rng := rand.New(rand.NewPCG(1, 2))
	return &seeder{n: n, threads: max(1, threads), random: random, now: time.Now(), rng: rng,
		entropy: ulid.Monotonic(rand.NewChaCha8([32]byte{1}), 0), seal: seal}
}

// seen is when installation i was last seen: 10 minutes ago for the first
// the heartbeat load visits, just now for the last.
func (s *seeder) seen(i int) time.Time {
	const window = 10 * time.Minute
	if s.random {
		return s.now.Add(-time.Duration(s.rng.Int64N(int64(window))))
	}
	// The load's visiting order: thread t sends userId t·span + j as its
	// j-th request, so that userId comes at about rank j·threads + t.
	// Installations beyond threads·span are never visited; they are the
	// oldest.
	span := s.n / s.threads
	rank := s.n - 1 - i // unvisited: ranks below every visited one
	if span > 0 && i < span*s.threads {
		rank = s.n - span*s.threads + (i%span)*s.threads + i/span
	}
	return s.now.Add(-window + time.Duration(int64(window)*int64(rank)/int64(s.n)))
}

// next returns the next installation, or false after the last.
func (s *seeder) next() (seedRow, bool, error) {
	if s.i >= s.n {
		return seedRow{}, false, nil
	}
	i, rng := s.i, s.rng
	s.i++
	// Registered over the last 90 days in userId order (as a fleet grows),
	// so IDs, ULIDs of that time, arrive in order as they would.
	span := int64(90 * 24 * time.Hour)
	registered := s.now.Add(-time.Hour - time.Duration(span-span/int64(s.n)*int64(i)))
	seen := s.seen(i)
	mode := "home"
	switch p := rng.IntN(10); {
	case p >= 9:
		mode = "cloud"
	case p >= 7:
		mode = "link"
	}
	userID := fmt.Sprintf("user-%d", i)
	var token *string
	if rng.IntN(2) == 0 {
		t := fmt.Sprintf("gw-%016x", rng.Uint64())
		if s.seal != nil {
			t = s.seal(t, userID)
		}
		token = &t
	}
	id, err := ulid.New(ulid.Timestamp(registered), s.entropy)
	if err != nil {
		return seedRow{}, false, err
	}
	return seedRow{
		id:         "ins_" + strings.ToLower(id.String()),
		userID:     userID,
		mode:       mode,
		token:      token,
		registered: registered.UTC().Truncate(time.Microsecond),
		seen:       seen.UTC().Truncate(time.Microsecond),
	}, true, nil
}

// ensurePostgres checks that PostgreSQL answers at adminURL, starting the
// local cluster once if it does not.
func ensurePostgres(ctx context.Context, adminURL string) error {
	try := func() error {
		c, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		conn, err := pgx.Connect(c, adminURL)
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	}
	err := try()
	if err == nil {
		return nil
	}
	logf("PostgreSQL does not answer (%v); trying pg_ctlcluster … main start", err)
	versions, _ := exec.Command("sh", "-c", "ls /etc/postgresql | sort -V | tail -n 1").Output()
	v := strings.TrimSpace(string(versions))
	if v == "" {
		return fmt.Errorf("PostgreSQL is not reachable at %s and no local cluster was found: %w", redact(adminURL), err)
	}
	if out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", v, "main", "start").CombinedOutput(); err != nil {
		logf("pg_ctlcluster: %v: %s", err, out)
	}
	for range 30 {
		if err = try(); err == nil {
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("PostgreSQL is not reachable at %s: %w", redact(adminURL), err)
}

// createDatabase drops and creates the database name, returning its URL.
func createDatabase(ctx context.Context, adminURL, name string) (string, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", err
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	q := u.Query()
	if !q.Has("sslmode") {
		q.Set("sslmode", "disable")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// dropDatabase removes the benchmark's database after the run.
func dropDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

// seedPostgres COPYs the seeder's installations into the migrated database
// at dbURL, then analyzes the table as autovacuum would after a bulk load.
func seedPostgres(ctx context.Context, dbURL string, s *seeder) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var row seedRow
	copied, err := conn.CopyFrom(ctx, pgx.Identifier{"installations"},
		[]string{"id", "user_id", "mode", "gateway_token", "registered_at", "last_seen"},
		pgx.CopyFromFunc(func() ([]any, error) {
			r, ok, err := s.next()
			if !ok || err != nil {
				return nil, err
			}
			row = r
			return []any{row.id, row.userID, row.mode, row.token, row.registered, row.seen}, nil
		}))
	if err != nil {
		return fmt.Errorf("COPY installations: %w", err)
	}
	if copied != int64(s.n) {
		return fmt.Errorf("COPY installations: %d rows copied, want %d", copied, s.n)
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE installations"); err != nil {
		return err
	}
	return nil
}

// sqliteDSN is how the benchmark opens the SQLite file: the pragmas the
// server uses, so a write waits for the server's instead of failing.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// seedSQLite inserts the seeder's installations into the migrated SQLite file in one
// transaction with prepared statements. It does not ANALYZE: the server
// never does, so neither does the benchmark.
func seedSQLite(ctx context.Context, path string, s *seeder) error {
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Rows go 100 to a statement: a prepared multi-row INSERT, and a
	// one-row one for the rest.
	const perStmt = 100
	insert := func(rows int) string {
		values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?),", rows), ",")
		return `INSERT INTO installations (id, user_id, mode, gateway_token, registered_at, last_seen) VALUES ` + values
	}
	many, err := tx.PrepareContext(ctx, insert(perStmt))
	if err != nil {
		return err
	}
	defer many.Close()
	one, err := tx.PrepareContext(ctx, insert(1))
	if err != nil {
		return err
	}
	defer one.Close()
	args := make([]any, 0, 6*perStmt)
	for {
		r, ok, err := s.next()
		if err != nil {
			return err
		}
		if ok {
			args = append(args, r.id, r.userID, r.mode, r.token, r.registered, r.seen)
			if len(args) < cap(args) {
				continue
			}
			if _, err := many.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("inserting installations: %w", err)
			}
			args = args[:0]
			continue
		}
		for i := 0; i < len(args); i += 6 {
			if _, err := one.ExecContext(ctx, args[i:i+6]...); err != nil {
				return fmt.Errorf("inserting installations: %w", err)
			}
		}
		break
	}
	return tx.Commit()
}

// redact hides a password in a database URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
