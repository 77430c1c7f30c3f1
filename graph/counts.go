package graph

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/ent/installation"
	"github.com/agentbot/registry/fleet"
)

// counts are installation counts by mode.
type counts struct {
	all, active map[fleet.Mode]int
	// stableUntil is when the first active installation would turn inactive
	// by time alone: until then only writes can change these counts.
	stableUntil time.Time
}

// modeCounts counts the installations q selects by mode: all of them, and
// the active ones, in one pass over the (mode, last_seen) index.
func (r *Resolver) modeCounts(ctx context.Context, q *ent.InstallationQuery) (counts, error) {
	var groups []struct {
		Mode         fleet.Mode     `json:"mode"`
		Total        int            `json:"total"`
		Active       int            `json:"active"`
		OldestActive sql.NullString `json:"oldest_active"`
	}
	since := r.activeSince()
	whenActive := func(s *entsql.Selector, aggregate, value string) entsql.Querier {
		return entsql.ExprFunc(func(b *entsql.Builder) {
			b.WriteString(aggregate + "(CASE WHEN " + s.C(installation.FieldLastSeen) + " >= ").
				Arg(since).
				WriteString(" THEN " + value + " END)")
		})
	}
	err := q.Modify(func(s *entsql.Selector) {
		s.Select(s.C(installation.FieldMode)).
			AppendSelectExprAs(entsql.Raw("COUNT(*)"), "total").
			AppendSelectExprAs(whenActive(s, "COUNT", "1"), "active").
			AppendSelectExprAs(whenActive(s, "MIN", s.C(installation.FieldLastSeen)), "oldest_active").
			GroupBy(s.C(installation.FieldMode))
	}).Scan(ctx, &groups)
	if err != nil {
		return counts{}, r.storeError(ctx, err, "installation")
	}
	c := counts{all: map[fleet.Mode]int{}, active: map[fleet.Mode]int{}, stableUntil: farFuture}
	for _, g := range groups {
		c.all[g.Mode], c.active[g.Mode] = g.Total, g.Active
		if g.OldestActive.Valid {
			oldest, err := parseStoredTime(g.OldestActive.String)
			if err != nil {
				oldest = since // cannot tell: stable no longer than now
			}
			c.stableUntil = minTime(c.stableUntil, oldest.Add(r.InactiveAfter))
		}
	}
	return c, nil
}

var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// parseStoredTime reads a timestamp an aggregate returned: PostgreSQL
// gives RFC 3339, SQLite the text its driver stored (Go's time.String
// layout, as modernc.org/sqlite writes it).
func parseStoredTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999 -0700 MST", "2006-01-02 15:04:05.999999999-07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unrecognised time %q", s)
}

// fleetCountsTTL is how long the whole fleet's counts are reused at most.
// Counting a million rows takes a few hundred milliseconds; dashboards
// polling fleetSummary share one count instead of each scanning the table.
// The counts are exact for this process: writes made here forget them, and
// they expire when an installation would turn inactive; writes by other
// replicas show within fleetCountsTTL.
const fleetCountsTTL = time.Second

// fleetCounts caches the whole fleet's counts (the admin's fleetSummary).
type fleetCounts struct {
	mu     sync.Mutex // one count at a time; waiters take its result
	at     time.Time
	counts *counts
}

// fleetModeCounts is modeCounts over the whole fleet, reused while it is
// known to be current.
func (r *Resolver) fleetModeCounts(ctx context.Context) (counts, error) {
	c := r.fleet
	c.mu.Lock()
	defer c.mu.Unlock()
	now := r.now()
	if c.counts == nil || now.Sub(c.at) >= fleetCountsTTL || now.Before(c.at) || now.After(c.counts.stableUntil) {
		fresh, err := r.modeCounts(ctx, r.Client.Installation.Query())
		if err != nil {
			c.counts = nil
			return counts{}, err
		}
		c.counts, c.at = &fresh, now
	}
	return *c.counts, nil
}

// ForgetFleetCounts drops the cached counts after a write made here
// (registrations, deregistrations, written heartbeats).
func (r *Resolver) ForgetFleetCounts() {
	r.fleet.mu.Lock()
	r.fleet.counts = nil
	r.fleet.mu.Unlock()
}

// FleetCounts counts every installation by mode and status, for metrics.
func (r *Resolver) FleetCounts(ctx context.Context) (map[[2]string]int, error) {
	c, err := r.fleetModeCounts(ctx)
	if err != nil {
		return nil, err
	}
	out := map[[2]string]int{}
	for _, mode := range []fleet.Mode{fleet.ModeHome, fleet.ModeLink, fleet.ModeCloud} {
		out[[2]string{string(mode), string(fleet.StatusActive)}] = c.active[mode]
		out[[2]string{string(mode), string(fleet.StatusInactive)}] = c.all[mode] - c.active[mode]
	}
	return out, nil
}
