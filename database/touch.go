package database

import (
	"context"
	"errors"
	"fmt"
	"time"

	"entgo.io/ent/dialect"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/agentbot/registry/ent/apikey"
	"github.com/agentbot/registry/ent/installation"
	"github.com/agentbot/registry/heartbeat"
)

// TouchInstallations writes a batch of coalesced heartbeats: lastSeen of
// each userId, never moved backwards.
func (d *Database) TouchInstallations(ctx context.Context, batch []heartbeat.Seen) error {
	return d.touch(ctx, installation.Table, installation.FieldUserID, installation.FieldLastSeen, batch)
}

// TouchAPIKeys writes a batch of coalesced key uses: lastUsedAt of each key ID.
func (d *Database) TouchAPIKeys(ctx context.Context, batch []heartbeat.Seen) error {
	return d.touch(ctx, apikey.Table, apikey.FieldID, apikey.FieldLastUsedAt, batch)
}

// touch sets timeCol to each batch entry's time in the row whose keyCol is
// the entry's key, when that is later than what is stored. The batch is
// sorted by key, and rows are locked in that order, so two flushers with
// overlapping batches queue behind each other instead of deadlocking.
func (d *Database) touch(ctx context.Context, table, keyCol, timeCol string, batch []heartbeat.Seen) error {
	if len(batch) == 0 {
		return nil
	}
	if d.Dialect == dialect.Postgres {
		keys := make([]string, len(batch))
		times := make([]time.Time, len(batch))
		for i, s := range batch {
			keys[i], times[i] = s.Key, s.At
		}
		// One statement per batch. The locked CTE takes the row locks in key
		// order (the join of UPDATE … FROM alone would lock in plan order).
		query := fmt.Sprintf(`WITH v(k, at) AS (SELECT * FROM unnest($1::text[], $2::timestamptz[])),
locked AS (
  SELECT t.id FROM %[1]s t JOIN v ON v.k = t.%[2]s
  WHERE t.%[3]s IS NULL OR t.%[3]s < v.at
  ORDER BY t.%[2]s
  FOR UPDATE OF t)
UPDATE %[1]s t SET %[3]s = v.at FROM v
WHERE t.%[2]s = v.k AND t.id IN (SELECT id FROM locked)`, table, keyCol, timeCol)
		_, err := d.DB.ExecContext(ctx, query, keys, times)
		return err
	}

	// SQLite: one immediate transaction with a prepared statement; there is
	// one writer at a time, so order cannot deadlock here.
	tx, err := d.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, fmt.Sprintf(
		`UPDATE %[1]s SET %[3]s = ? WHERE %[2]s = ? AND (%[3]s IS NULL OR %[3]s < ?)`, table, keyCol, timeCol))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, s := range batch {
		if _, err := stmt.ExecContext(ctx, s.At, s.Key, s.At); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Retryable reports whether a failed write can succeed when tried again: a
// PostgreSQL deadlock or serialization failure, or a busy SQLite file.
func Retryable(err error) bool {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code == "40P01" || pgErr.Code == "40001"
	}
	if coded, ok := errors.AsType[codedError](err); ok {
		code := coded.Code() & 0xff   // primary result code
		return code == 5 || code == 6 // SQLITE_BUSY, SQLITE_LOCKED
	}
	return false
}

// codedError is how modernc.org/sqlite reports its result codes.
type codedError interface {
	error
	Code() int
}
