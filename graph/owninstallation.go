package graph

import (
	"context"
	"sync"
	"time"

	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/ent/installation"
)

// ownInstallationTTL is how long a user's own installation is reused for
// its listing. A dashboard or an agent polling its own installation then
// costs one query a second, not one per request. Registrations and
// deregistrations made here are seen at once; those made by other replicas
// within ownInstallationTTL, as revocations are. lastSeen is never older
// than what the database holds: pending heartbeats are laid over it.
const ownInstallationTTL = time.Second

// maxOwnInstallations bounds the cache: about 2.5 MB of rows. Beyond it,
// users are looked up without caching until expired entries are dropped.
const maxOwnInstallations = 10_000

// ownInstallations caches each user's installation by userId.
type ownInstallations struct {
	mu    sync.Mutex
	rows  map[string]ownInstallation
	swept time.Time
	// epoch changes with every write made here; a lookup that started in
	// an earlier epoch may have read a row from before the write, so its
	// result is not cached.
	epoch uint64
}

type ownInstallation struct {
	inst    *ent.Installation
	fetched time.Time
}

// ownInstallation returns userID's installation, or nil when it has none.
func (r *Resolver) ownInstallation(ctx context.Context, userID string) (*ent.Installation, error) {
	now := r.now()
	c := r.own
	c.mu.Lock()
	cached, ok := c.rows[userID]
	epoch := c.epoch
	c.mu.Unlock()
	if !ok || now.Sub(cached.fetched) >= ownInstallationTTL {
		inst, err := r.Client.Installation.Query().Where(installation.UserID(userID)).Only(ctx)
		if ent.IsNotFound(err) {
			return nil, nil // not cached: a registration elsewhere shows at once
		}
		if err != nil {
			return nil, r.storeError(ctx, err, "installation")
		}
		cached = ownInstallation{inst: inst, fetched: now}
		c.keep(userID, cached, epoch)
	}
	return r.withPendingHeartbeat(cached.inst), nil
}

// withPendingHeartbeat returns inst with the latest heartbeat this process
// acknowledged for it and has not written yet, if that is newer. The
// cached row itself is shared, so it is copied, never changed.
func (r *Resolver) withPendingHeartbeat(inst *ent.Installation) *ent.Installation {
	at, ok := r.Heartbeats.Pending(inst.UserID)
	if !ok || !at.After(inst.LastSeen) {
		return inst
	}
	fresh := *inst
	fresh.LastSeen = at
	return &fresh
}

// keep caches a row read in epoch, unless a write happened since.
func (c *ownInstallations) keep(userID string, row ownInstallation, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if _, ok := c.rows[userID]; !ok && len(c.rows) >= maxOwnInstallations {
		if row.fetched.Sub(c.swept) < ownInstallationTTL {
			return // full of live entries; sweeping again so soon would not help
		}
		c.swept = row.fetched
		for id, old := range c.rows {
			if row.fetched.Sub(old.fetched) >= ownInstallationTTL {
				delete(c.rows, id)
			}
		}
		if len(c.rows) >= maxOwnInstallations {
			return
		}
	}
	c.rows[userID] = row
}

// forgetOwnInstallations drops the cached rows of userIDs after a write
// made here, or every row when none is named.
func (r *Resolver) forgetOwnInstallations(userIDs ...string) {
	c := r.own
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if len(userIDs) == 0 {
		clear(c.rows)
	}
	for _, id := range userIDs {
		delete(c.rows, id)
	}
}
