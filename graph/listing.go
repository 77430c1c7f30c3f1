package graph

import (
	"context"
	"database/sql"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/agentbot/registry/auth"
	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/ent/installation"
)

// listingPageSize is how many rows ListInstallations reads per query.
const listingPageSize = 1000

// ListInstallations hands the caller's installations to each, newest
// lastSeen first, after telling start how many there are. It is the REST
// listing, which has no pages: rows are read a page at a time, all from one
// read-only snapshot, so memory does not grow with the fleet and the count
// always matches the rows, however many heartbeats land meanwhile.
//
// Errors: Unauthenticated, Internal, and whatever start or each return.
func (r *Resolver) ListInstallations(ctx context.Context, start func(count int) error, each func(*ent.Installation) error) error {
	p, err := auth.Require(ctx)
	if err != nil {
		return err
	}
	if !p.IsAdmin() {
		// One installation per userId: a user's listing is a single lookup.
		inst, err := r.ownInstallation(ctx, p.UserID)
		if err != nil {
			return err
		}
		var list []*ent.Installation
		if inst != nil {
			list = append(list, inst)
		}
		return emit(list, start, each)
	}

	tx, err := r.Client.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return r.storeError(ctx, err, "installation")
	}
	defer tx.Rollback()
	count, err := tx.Installation.Query().Count(ctx)
	if err != nil {
		return r.storeError(ctx, err, "installation")
	}
	if err := start(count); err != nil {
		return err
	}
	var last *ent.Installation
	for {
		q := tx.Installation.Query().
			Order(installation.ByLastSeen(entsql.OrderDesc()), installation.ByID(entsql.OrderDesc())).
			Limit(listingPageSize)
		if last != nil {
			// Keyset paging on (last_seen, id), which one index serves.
			q.Where(func(s *entsql.Selector) {
				s.Where(entsql.CompositeLT([]string{s.C(installation.FieldLastSeen), s.C(installation.FieldID)}, last.LastSeen, last.ID))
			})
		}
		page, err := q.All(ctx)
		if err != nil {
			return r.storeError(ctx, err, "installation")
		}
		for _, inst := range page {
			if err := each(inst); err != nil {
				return err
			}
		}
		if len(page) < listingPageSize {
			return nil
		}
		last = page[len(page)-1]
	}
}

func emit(list []*ent.Installation, start func(int) error, each func(*ent.Installation) error) error {
	if err := start(len(list)); err != nil {
		return err
	}
	for _, inst := range list {
		if err := each(inst); err != nil {
			return err
		}
	}
	return nil
}
