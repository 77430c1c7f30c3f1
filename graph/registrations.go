package graph

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/ent/installation"
	"github.com/agentbot/registry/fleet"
	"github.com/agentbot/registry/retry"
)

// maxRegistrationBatch is the most registrations one statement writes.
const maxRegistrationBatch = 200

// registration is one validated registration waiting for its batch.
type registration struct {
	userID string
	mode   fleet.Mode
	token  string // sealed; "" keeps the stored one

	done chan struct{}
	inst *ent.Installation
	err  error
}

// registrations writes registrations in groups (group commit): while one
// batch is being written, the registrations that arrive queue up and go
// together in the next, as one upsert and one read-back. Each is
// acknowledged only after the statement that wrote it has committed, so
// registrations stay durable, but a burst of installers costs one commit
// per batch rather than one each.
type registrations struct {
	mu      sync.Mutex
	queue   []*registration
	writing bool
}

// register queues reg and waits until it is written (or ctx ends).
func (r *Resolver) register(ctx context.Context, reg *registration) (*ent.Installation, error) {
	reg.done = make(chan struct{})
	q := r.registrations
	q.mu.Lock()
	q.queue = append(q.queue, reg)
	if !q.writing {
		q.writing = true
		go r.writeRegistrations()
	}
	q.mu.Unlock()
	select {
	case <-reg.done:
		return reg.inst, reg.err
	case <-ctx.Done():
		return nil, r.storeError(ctx, ctx.Err(), "installation")
	}
}

// writeRegistrations writes batches until the queue is empty.
func (r *Resolver) writeRegistrations() {
	q := r.registrations
	for {
		q.mu.Lock()
		batch, rest := takeBatch(q.queue)
		q.queue = rest
		if len(batch) == 0 {
			q.writing = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		r.writeBatch(batch)
	}
}

// takeBatch takes up to maxRegistrationBatch registrations from the queue,
// one per userId (an upsert cannot touch a row twice); repeats stay queued,
// in order, for the next batch.
func takeBatch(queue []*registration) (batch, rest []*registration) {
	seen := map[string]bool{}
	for _, reg := range queue {
		if seen[reg.userID] || len(batch) == maxRegistrationBatch {
			rest = append(rest, reg)
			continue
		}
		seen[reg.userID] = true
		batch = append(batch, reg)
	}
	return batch, rest
}

// writeBatch upserts a batch in one statement (again, if the database
// refused it for a reason that passes), reads the rows back in a second,
// and wakes each waiting registration.
func (r *Resolver) writeBatch(batch []*registration) {
	// The batch outlives any one caller's request, but not a stuck database.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := r.now()
	// Rows in userId order: the upsert locks them in this order, so batches
	// of two replicas that share userIds queue instead of deadlocking. A
	// heartbeat flush of another replica may still lock two of them the
	// other way round; then PostgreSQL aborts one of the two, and an
	// aborted upsert has written nothing, so it is simply written again.
	slices.SortFunc(batch, func(a, b *registration) int { return strings.Compare(a.userID, b.userID) })
	userIDs := make([]string, len(batch))
	for i, reg := range batch {
		userIDs[i] = reg.userID
	}
	attempts, err := retry.Do(ctx, r.Retryable, func() error { return r.upsert(ctx, batch, now) })
	if attempts > 1 {
		r.Log.Warn("registration batch retried after a conflict", "rows", len(batch), "attempts", attempts, "written", err == nil)
	}
	var rows []*ent.Installation
	if err == nil {
		rows, err = r.Client.Installation.Query().Where(installation.UserIDIn(userIDs...)).All(ctx)
	}
	// Before anyone is answered: a read right after its answer must not
	// find the cached state from before the write.
	r.ForgetFleetCounts()
	r.forgetOwnInstallations(userIDs...)
	byUser := make(map[string]*ent.Installation, len(rows))
	for _, inst := range rows {
		byUser[inst.UserID] = inst
	}
	for _, reg := range batch {
		reg.inst, reg.err = byUser[reg.userID], r.storeError(ctx, err, "installation")
		if reg.err == nil && reg.inst == nil { // deregistered between the two statements
			reg.err = r.storeError(ctx, &ent.NotFoundError{}, "installation")
		}
		close(reg.done)
	}
}

// upsert writes a batch of registrations in one statement. On conflict: the
// new mode and lastSeen, the new token only when one was given;
// registeredAt and the ID keep their first values.
func (r *Resolver) upsert(ctx context.Context, batch []*registration, now time.Time) error {
	creates := make([]*ent.InstallationCreate, len(batch))
	for i, reg := range batch {
		creates[i] = r.Client.Installation.Create().
			SetUserID(reg.userID).
			SetMode(reg.mode).
			SetRegisteredAt(now).
			SetLastSeen(now)
		if reg.token != "" {
			creates[i].SetGatewayToken(reg.token)
		}
	}
	return r.Client.Installation.CreateBulk(creates...).
		OnConflict(
			entsql.ConflictColumns(installation.FieldUserID),
			entsql.ResolveWith(func(u *entsql.UpdateSet) {
				u.SetExcluded(installation.FieldMode)
				u.SetExcluded(installation.FieldLastSeen)
				excluded := entsql.Dialect(u.Dialect()).Table("excluded")
				u.Set(installation.FieldGatewayToken, entsql.Expr("COALESCE(NULLIF("+
					excluded.C(installation.FieldGatewayToken)+", ''), "+
					u.Table().C(installation.FieldGatewayToken)+")"))
			}),
		).
		Exec(ctx)
}
