// Package graph is the GraphQL API and the home of the resolvers: the one
// place where the registry's rules live. The REST layer (rest/) and the
// command line call these same resolvers.
package graph

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/ent/installation"
	"github.com/agentbot/registry/ent/predicate"
	"github.com/agentbot/registry/errs"
	"github.com/agentbot/registry/fleet"
	"github.com/agentbot/registry/heartbeat"
	"github.com/agentbot/registry/secrets"
)

// Resolver holds what the resolvers depend on. Now is injected so liveness
// can be tested without sleeping.
type Resolver struct {
	Client        *ent.Client
	Now           func() time.Time
	InactiveAfter time.Duration
	Log           *slog.Logger
	// Heartbeats holds lastSeen updates by userId, KeyUses lastUsedAt
	// updates by key ID, until they are written in batches.
	Heartbeats *heartbeat.Coalescer
	KeyUses    *heartbeat.Coalescer
	// Secrets seals gateway tokens at rest.
	Secrets *secrets.Box
	// Retryable reports whether a failed write may be tried again (a
	// deadlock, a busy SQLite file); nil: never.
	Retryable func(error) bool
	// OnKeyCheck, when set, hears the result of every key check ("valid",
	// "invalid", "revoked", "expired", "error"), for metrics.
	OnKeyCheck func(result string)

	keys          *keyCache
	fleet         *fleetCounts
	own           *ownInstallations
	registrations *registrations
}

// New returns a Resolver on the real clock.
func New(client *ent.Client, heartbeats, keyUses *heartbeat.Coalescer, inactiveAfter time.Duration, log *slog.Logger) *Resolver {
	return &Resolver{
		Client:        client,
		Now:           time.Now,
		InactiveAfter: inactiveAfter,
		Log:           log,
		Heartbeats:    heartbeats,
		KeyUses:       keyUses,
		keys:          newKeyCache(),
		fleet:         &fleetCounts{},
		own:           &ownInstallations{rows: map[string]ownInstallation{}},
		registrations: &registrations{},
	}
}

// keyChangePoll is how often the key cache looks for revocations made by
// other processes on the same database.
const keyChangePoll = time.Second

// Run does the background work until ctx is done: batched writes of
// heartbeats and key uses, and watching for revocations elsewhere. When ctx
// is done it writes what is still pending, then returns.
func (r *Resolver) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { r.Heartbeats.Run(ctx) })
	wg.Go(func() { r.KeyUses.Run(ctx) })
	wg.Go(func() {
		ticker := time.NewTicker(keyChangePoll)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				if err := r.refreshKeyCache(ctx); err != nil && ctx.Err() == nil {
					r.Log.WarnContext(ctx, "checking for revoked keys", "error", err)
				}
			}
		}
	})
	wg.Wait()
}

// Settle writes every pending update and picks up revocations and
// installation changes made elsewhere, now rather than at the next tick.
// Tests use it to read back what they have just sent.
func (r *Resolver) Settle(ctx context.Context) error {
	defer r.ForgetFleetCounts()
	defer r.forgetOwnInstallations()
	return errors.Join(r.Heartbeats.Flush(ctx), r.KeyUses.Flush(ctx), r.refreshKeyCache(ctx))
}

// now is the current time in UTC, truncated to microseconds: the precision
// both databases store, so a value read back equals the value written.
func (r *Resolver) now() time.Time {
	return r.Now().UTC().Truncate(time.Microsecond)
}

// activeSince is the oldest lastSeen that still counts as active.
func (r *Resolver) activeSince() time.Time {
	return r.now().Add(-r.InactiveAfter)
}

// statusOf derives an installation's liveness from its lastSeen.
func (r *Resolver) statusOf(lastSeen time.Time) fleet.Status {
	if lastSeen.Before(r.activeSince()) {
		return fleet.StatusInactive
	}
	return fleet.StatusActive
}

// hasStatus selects the installations that have the given status.
func (r *Resolver) hasStatus(s fleet.Status) predicate.Installation {
	if s == fleet.StatusActive {
		return installation.LastSeenGTE(r.activeSince())
	}
	return installation.LastSeenLT(r.activeSince())
}

// storeError turns a database error into the error vocabulary: a missing
// row of the kind `what` is NotFound, a violated constraint a Conflict;
// anything else is logged and becomes an Internal error that shows the
// client no detail.
func (r *Resolver) storeError(ctx context.Context, err error, what string) error {
	var e *errs.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return err
	case ent.IsNotFound(err):
		return errs.New(errs.NotFound, "%s not found", what)
	case ent.IsConstraintError(err):
		return errs.New(errs.Conflict, "%s already exists", what)
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		// The client went away (or its deadline passed): not a database fault.
		return errs.New(errs.Unavailable, "Request canceled")
	}
	r.Log.ErrorContext(ctx, "database error", "error", err)
	return errs.New(errs.Internal, "Internal server error")
}
