package graph

import (
	"context"
	"maps"
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
}

// modeCounts counts the installations q selects by mode: all of them, and
// the active ones, in one pass over the (mode, last_seen) index.
func (r *Resolver) modeCounts(ctx context.Context, q *ent.InstallationQuery, since time.Time) (counts, error) {
	var groups []struct {
		Mode   fleet.Mode `json:"mode"`
		Total  int        `json:"total"`
		Active int        `json:"active"`
	}
	err := q.Modify(func(s *entsql.Selector) {
		s.Select(s.C(installation.FieldMode)).
			AppendSelectExprAs(entsql.Raw("COUNT(*)"), "total").
			AppendSelectExprAs(entsql.ExprFunc(func(b *entsql.Builder) {
				b.WriteString("COUNT(CASE WHEN " + s.C(installation.FieldLastSeen) + " >= ").
					Arg(since).
					WriteString(" THEN 1 END)")
			}), "active").
			GroupBy(s.C(installation.FieldMode))
	}).Scan(ctx, &groups)
	if err != nil {
		return counts{}, r.storeError(ctx, err, "installation")
	}
	c := counts{all: map[fleet.Mode]int{}, active: map[fleet.Mode]int{}}
	for _, g := range groups {
		c.all[g.Mode], c.active[g.Mode] = g.Total, g.Active
	}
	return c, nil
}

// fleetCountsTTL is how long the whole fleet's counts are reused at most.
// Counting a million rows takes a few hundred milliseconds; dashboards
// polling fleetSummary share one count instead of each scanning the table.
// Writes made here forget the counts; writes by other replicas show within
// fleetCountsTTL.
const fleetCountsTTL = time.Second

// maxEdgeRows bounds the installations a cached count follows across the
// threshold; past them the count is only reused until the last one crosses.
const maxEdgeRows = 10_000

// fleetCounts caches the whole fleet's counts (the admin's fleetSummary).
// They stay exact while reused: with the counts it keeps the few active
// installations whose lastSeen will cross the inactivity threshold within
// fleetCountsTTL (the edge), and subtracts those that have crossed by the
// time of each read.
type fleetCounts struct {
	mu     sync.Mutex // one count at a time; waiters take its result
	counts *counts
	at     time.Time           // when counted
	edge   []*ent.Installation // active then, crossing soon; by lastSeen
	until  time.Time           // reusable until then
}

// fleetModeCounts is modeCounts over the whole fleet at now, reused while
// it is known to be exact.
func (r *Resolver) fleetModeCounts(ctx context.Context) (counts, error) {
	c := r.fleet
	c.mu.Lock()
	defer c.mu.Unlock()
	now := r.now()
	if c.counts == nil || now.Before(c.at) || !now.Before(c.until) {
		if err := r.countFleet(ctx, now); err != nil {
			c.counts = nil
			return counts{}, err
		}
	}
	// Active installations that have crossed the threshold since the count.
	active := maps.Clone(c.counts.active)
	since := now.Add(-r.InactiveAfter)
	for _, inst := range c.edge {
		if !inst.LastSeen.Before(since) {
			break
		}
		active[inst.Mode]--
	}
	return counts{all: c.counts.all, active: active}, nil
}

// countFleet counts the fleet at now and reads its edge. Called with
// r.fleet.mu held.
func (r *Resolver) countFleet(ctx context.Context, now time.Time) error {
	since := now.Add(-r.InactiveAfter)
	fresh, err := r.modeCounts(ctx, r.Client.Installation.Query(), since)
	if err != nil {
		return err
	}
	edge, err := r.Client.Installation.Query().
		Where(installation.LastSeenGTE(since), installation.LastSeenLT(since.Add(fleetCountsTTL))).
		Order(installation.ByLastSeen()).
		Select(installation.FieldMode, installation.FieldLastSeen).
		Limit(maxEdgeRows + 1).
		All(ctx)
	if err != nil {
		return r.storeError(ctx, err, "installation")
	}
	c := r.fleet
	c.counts, c.at, c.edge, c.until = &fresh, now, edge, now.Add(fleetCountsTTL)
	if len(edge) > maxEdgeRows {
		// Followed up to the last edge row kept; recount once it crosses.
		c.edge = edge[:maxEdgeRows]
		c.until = edge[maxEdgeRows-1].LastSeen.Add(r.InactiveAfter)
	}
	return nil
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
