package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentbot/registry/secrets"
)

// setupPostgres creates a fresh database, lets the server create its schema,
// seeds it and makes the keys.
func (b *bench) setupPostgres(ctx context.Context) (*store, error) {
	if err := ensurePostgres(ctx, b.cfg.pgURL); err != nil {
		return nil, err
	}
	dbURL, err := createDatabase(ctx, b.cfg.pgURL, b.cfg.pgDB)
	if err != nil {
		return nil, fmt.Errorf("creating database %s: %w", b.cfg.pgDB, err)
	}
	b.pgCreated = true
	st := &store{Name: "PostgreSQL", Short: "pg", URL: dbURL, dollar: true}
	if err := b.migrate(ctx, st); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := seedPostgres(ctx, dbURL, b.newSeeder()); err != nil {
		return nil, fmt.Errorf("seeding: %w", err)
	}
	logf("PostgreSQL: seeded %d installations in %.1f s (COPY, then VACUUM ANALYZE)", b.cfg.installations, time.Since(start).Seconds())
	if err := b.makeKeys(ctx, st); err != nil {
		return nil, err
	}
	if st.db, err = sql.Open("pgx", dbURL); err != nil {
		return nil, err
	}
	st.db.SetMaxOpenConns(1)
	adminURL, name := b.cfg.pgURL, b.cfg.pgDB
	st.xacts = func(ctx context.Context) (int64, int64, error) {
		// Read from the admin database, so reading costs the measured
		// database no transaction.
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return 0, 0, err
		}
		defer conn.Close(ctx)
		var x, u int64
		err = conn.QueryRow(ctx, `SELECT xact_commit + xact_rollback, tup_updated FROM pg_stat_database WHERE datname = $1`, name).Scan(&x, &u)
		return x, u, err
	}
	return st, nil
}

// setupSQLite makes the SQLite file, its schema, rows and keys.
func (b *bench) setupSQLite(ctx context.Context) (*store, error) {
	path := b.path("registry.db")
	st := &store{Name: "SQLite", Short: "sqlite", URL: "sqlite:" + path}
	if err := b.migrate(ctx, st); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := seedSQLite(ctx, path, b.newSeeder()); err != nil {
		return nil, fmt.Errorf("seeding: %w", err)
	}
	logf("SQLite: seeded %d installations in %.1f s (one transaction, prepared INSERT)", b.cfg.installations, time.Since(start).Seconds())
	if err := b.makeKeys(ctx, st); err != nil {
		return nil, err
	}
	var err error
	if st.db, err = sql.Open("sqlite", sqliteDSN(path)); err != nil {
		return nil, err
	}
	st.db.SetMaxOpenConns(1)
	return st, nil
}

// newSeeder makes the run's installations, in the same order for every
// database.
func (b *bench) newSeeder() *seeder {
	return newSeeder(b.cfg.installations, b.cfg.threads, b.cfg.seenRandom, b.seal)
}

// migrate creates the schema with the server's own command.
func (b *bench) migrate(ctx context.Context, st *store) error {
	cmd := exec.CommandContext(ctx, b.bin, append([]string{"migrate"}, b.dbFlags(st)...)...)
	cmd.Env = childEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("registry migrate: %w\n%s", err, out)
	}
	return nil
}

// makeKeys creates the admin key and a key of the user user-1 (whose
// installation is seeded) with the server's command line.
func (b *bench) makeKeys(ctx context.Context, st *store) error {
	var err error
	if st.adminKey, err = b.createKey(ctx, st, "admin", "admin"); err != nil {
		return err
	}
	st.userKey, err = b.createKey(ctx, st, "user-1", "user")
	return err
}

func (b *bench) createKey(ctx context.Context, st *store, user, role string) (string, error) {
	cmd := exec.CommandContext(ctx, b.bin, append([]string{"keys", "create", "--user", user, "--role", role, "--label", "bench"},
		b.dbFlags(st)...)...)
	cmd.Env = childEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("registry keys create --user %s: %w\n%s", user, err, stderr.String())
	}
	key := strings.TrimSpace(stdout.String())
	if !strings.HasPrefix(key, "agb_") || strings.ContainsAny(key, " \n") {
		return "", fmt.Errorf("registry keys create --user %s printed %q, not a key", user, key)
	}
	return key, nil
}

// dbFlags are the flags every registry command gets: the database, and the
// run's secret key where the server seals gateway tokens with one.
func (b *bench) dbFlags(st *store) []string {
	flags := []string{"--database-url", st.URL}
	if b.secretKey != "" {
		flags = append(flags, "--secret-key", b.secretKey)
	}
	return flags
}

// setupSecrets makes a key for the run when the server takes --secret-key,
// so the seeded gateway tokens are sealed as the server stores them (and
// its migration has none left to seal).
func (b *bench) setupSecrets(ctx context.Context) error {
	help, _ := exec.CommandContext(ctx, b.bin, "serve", "-h").CombinedOutput()
	if !bytes.Contains(help, []byte("-secret-key")) {
		return nil
	}
	key := make([]byte, secrets.KeySize)
	rand.Read(key)
	box, err := secrets.NewBox(key)
	if err != nil {
		return err
	}
	b.secretKey = hex.EncodeToString(key)
	b.seal = box.Seal
	return nil
}

// placeholders returns n placeholders of the store's dialect.
func (st *store) placeholders(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if st.dollar {
			fmt.Fprintf(&b, "$%d", i+1)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}

// seenSince counts the userIds whose lastSeen is at or after t.
func (st *store) seenSince(ctx context.Context, userIDs []string, t time.Time) (int, error) {
	if len(userIDs) == 0 {
		return 0, nil
	}
	args := make([]any, len(userIDs))
	for i, u := range userIDs {
		args[i] = u
	}
	st.ownQueries++
	rows, err := st.db.QueryContext(ctx,
		`SELECT user_id, last_seen FROM installations WHERE user_id IN (`+st.placeholders(len(args))+`)`, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var u string
		var seen time.Time
		if err := rows.Scan(&u, &seen); err != nil {
			return 0, err
		}
		if !seen.Before(t) {
			n++
		}
	}
	return n, rows.Err()
}

// countSince counts the installations whose lastSeen is at or after t.
func (st *store) countSince(ctx context.Context, t time.Time) (int64, error) {
	st.ownQueries++
	var n int64
	err := st.db.QueryRowContext(ctx, `SELECT count(*) FROM installations WHERE last_seen >= `+st.placeholders(1), t.UTC()).Scan(&n)
	return n, err
}

// count counts the installations.
func (st *store) count(ctx context.Context) (int64, error) {
	st.ownQueries++
	var n int64
	err := st.db.QueryRowContext(ctx, `SELECT count(*) FROM installations`).Scan(&n)
	return n, err
}
