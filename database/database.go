// Package database opens the registry's storage from a URL: PostgreSQL
// through pgx for postgres:// URLs, an embedded SQLite file (pure Go) for
// sqlite:PATH or file:PATH.
package database

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver

	"github.com/agentbot/registry/ent"
)

// DefaultURL is the zero-setup database: a SQLite file under ./data.
const DefaultURL = "sqlite:./data/registry.db"

// Database is an open registry database.
type Database struct {
	Client  *ent.Client
	DB      *sql.DB
	Dialect string // dialect.SQLite or dialect.Postgres
	// Path is the SQLite file; "" for PostgreSQL.
	Path string
}

// Open connects to the database at rawURL. It does not change the schema;
// call Migrate for that.
func Open(rawURL string) (*Database, error) {
	driver, dsn, path, entDialect, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("opening database: %w", err)
	}
	if entDialect == dialect.Postgres {
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(32)
	} else {
		// One SQLite file takes one writer at a time; a few connections let
		// reads run beside it (WAL) without piling up waiting writers.
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
	}
	db.SetConnMaxIdleTime(5 * time.Minute)
	client := ent.NewClient(ent.Driver(entsql.OpenDB(entDialect, db)))
	return &Database{Client: client, DB: db, Dialect: entDialect, Path: path}, nil
}

// Close closes the database.
func (d *Database) Close() error { return d.Client.Close() }

// Ping reports whether the database answers.
func (d *Database) Ping(ctx context.Context) error { return d.DB.PingContext(ctx) }

// migrating serialises migrations within one process: ent's migration
// writes to the package-level table descriptions it works from.
var migrating sync.Mutex

// Migrate brings the schema up to date. On PostgreSQL it holds an advisory
// lock meanwhile, so replicas starting together migrate one at a time.
func (d *Database) Migrate(ctx context.Context) error {
	migrating.Lock()
	defer migrating.Unlock()
	if d.Dialect == dialect.Postgres {
		conn, err := d.DB.Conn(ctx)
		if err != nil {
			return fmt.Errorf("migrating: %w", err)
		}
		defer conn.Close()
		lock := migrationLockID()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", lock); err != nil {
			return fmt.Errorf("migrating: taking the migration lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lock)
	}
	if err := d.Client.Schema.Create(ctx); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	return nil
}

func migrationLockID() int64 {
	h := fnv.New64a()
	h.Write([]byte("agentbot-registry migrate"))
	return int64(h.Sum64() >> 1)
}

// parseURL turns a database URL into a driver name, its DSN, the SQLite
// file's path and ent's dialect. The SQLite folder is created when missing.
func parseURL(rawURL string) (driver, dsn, path, entDialect string, err error) {
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		return "pgx", rawURL, "", dialect.Postgres, nil
	case strings.HasPrefix(rawURL, "sqlite:"), strings.HasPrefix(rawURL, "file:"):
		_, rest, _ := strings.Cut(rawURL, ":")
		var query string
		path, query, _ = strings.Cut(rest, "?")
		if path == "" {
			return "", "", "", "", fmt.Errorf("database URL %q names no file", rawURL)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return "", "", "", "", fmt.Errorf("creating the database folder: %w", err)
		}
		params, err := url.ParseQuery(query)
		if err != nil {
			return "", "", "", "", fmt.Errorf("database URL %q: %w", rawURL, err)
		}
		// WAL lets the command line and a running server share the file;
		// the busy timeout makes a writer wait for another instead of
		// failing; immediate transactions take the write lock up front.
		params.Add("_pragma", "foreign_keys(1)")
		params.Add("_pragma", "journal_mode(WAL)")
		params.Add("_pragma", "busy_timeout(10000)")
		params.Add("_pragma", "synchronous(NORMAL)")
		params.Set("_txlock", "immediate")
		return "sqlite", "file:" + path + "?" + params.Encode(), path, dialect.SQLite, nil
	}
	return "", "", "", "", fmt.Errorf("database URL %q: use postgres://…, sqlite:PATH or file:PATH", rawURL)
}
