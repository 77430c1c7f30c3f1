package graph

import (
	"context"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/ent/installation"
	"github.com/agentbot/registry/fleet"
)

// modeCounts counts the installations q selects by mode: all of them, and
// the active ones, in one pass over the (mode, last_seen) index.
func (r *Resolver) modeCounts(ctx context.Context, q *ent.InstallationQuery) (all, active map[fleet.Mode]int, err error) {
	var groups []struct {
		Mode   fleet.Mode `json:"mode"`
		Total  int        `json:"total"`
		Active int        `json:"active"`
	}
	err = q.Modify(func(s *entsql.Selector) {
		s.Select(s.C(installation.FieldMode)).
			AppendSelectExprAs(entsql.Raw("COUNT(*)"), "total").
			AppendSelectExprAs(entsql.ExprFunc(func(b *entsql.Builder) {
				b.WriteString("COUNT(CASE WHEN " + s.C(installation.FieldLastSeen) + " >= ").
					Arg(r.activeSince()).
					WriteString(" THEN 1 END)")
			}), "active").
			GroupBy(s.C(installation.FieldMode))
	}).Scan(ctx, &groups)
	if err != nil {
		return nil, nil, r.storeError(ctx, err, "installation")
	}
	all, active = map[fleet.Mode]int{}, map[fleet.Mode]int{}
	for _, g := range groups {
		all[g.Mode], active[g.Mode] = g.Total, g.Active
	}
	return all, active, nil
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
