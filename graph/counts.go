package graph

import (
	"context"

	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/ent/installation"
	"github.com/agentbot/registry/fleet"
)

// modeCounts counts the installations q selects by mode: all of them, and
// the active ones. Two grouped counts, each served by the (mode, last_seen)
// index.
func (r *Resolver) modeCounts(ctx context.Context, q *ent.InstallationQuery) (all, active map[fleet.Mode]int, err error) {
	count := func(q *ent.InstallationQuery) (map[fleet.Mode]int, error) {
		var groups []struct {
			Mode  fleet.Mode `json:"mode"`
			Count int        `json:"count"`
		}
		if err := q.GroupBy(installation.FieldMode).Aggregate(ent.Count()).Scan(ctx, &groups); err != nil {
			return nil, r.storeError(ctx, err, "installation")
		}
		counts := map[fleet.Mode]int{}
		for _, g := range groups {
			counts[g.Mode] = g.Count
		}
		return counts, nil
	}
	if all, err = count(q.Clone()); err != nil {
		return nil, nil, err
	}
	active, err = count(q.Where(r.hasStatus(fleet.StatusActive)))
	return all, active, err
}

// FleetCounts counts every installation by mode and status, for metrics.
func (r *Resolver) FleetCounts(ctx context.Context) (map[[2]string]int, error) {
	all, active, err := r.modeCounts(ctx, r.Client.Installation.Query())
	if err != nil {
		return nil, err
	}
	counts := map[[2]string]int{}
	for _, mode := range []fleet.Mode{fleet.ModeHome, fleet.ModeLink, fleet.ModeCloud} {
		counts[[2]string{string(mode), string(fleet.StatusActive)}] = active[mode]
		counts[[2]string{string(mode), string(fleet.StatusInactive)}] = all[mode] - active[mode]
	}
	return counts, nil
}
