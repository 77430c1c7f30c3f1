package graph

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/agentbot/registry/auth"
	"github.com/agentbot/registry/ent/apikey"
)

// keyCacheSize bounds the cache of key checks (valid and invalid keys
// alike): about 200 bytes an entry.
const keyCacheSize = 100_000

// keyCheck is the remembered outcome of looking a key hash up.
type keyCheck struct {
	principal *auth.Principal // nil when the key is unknown or revoked
	err       error           // auth.ErrInvalidKey or auth.ErrRevokedKey
	expiresAt *time.Time
}

// keyCache remembers key checks so a request costs no query. It is emptied
// when this process revokes a key, and when the change marker (the number of
// revoked keys, which only ever grows) moves because another process
// revoked one: refresh polls it once a second.
type keyCache struct {
	mu      sync.Mutex // serialises purges and inserts
	checks  *lru.Cache[string, keyCheck]
	revoked atomic.Int64 // the marker at the last refresh
	// generation counts purges. A lookup remembers it before reading the
	// database and only stores its result if no purge happened meanwhile,
	// so a check read before a revocation cannot outlive it.
	generation atomic.Int64
}

func newKeyCache() *keyCache {
	c, _ := lru.New[string, keyCheck](keyCacheSize)
	k := &keyCache{checks: c}
	k.revoked.Store(-1)
	return k
}

// revokedCount is the change marker: a cheap count over the partial index
// of revoked keys.
func (r *Resolver) revokedCount(ctx context.Context) (int, error) {
	return r.Client.APIKey.Query().Where(apikey.RevokedAtNotNil()).Count(ctx)
}

// refreshKeyCache empties the cache when a key was revoked anywhere since
// the last call.
func (r *Resolver) refreshKeyCache(ctx context.Context) error {
	r.keys.mu.Lock()
	defer r.keys.mu.Unlock()
	n, err := r.revokedCount(ctx)
	if err != nil {
		return err
	}
	if int64(n) != r.keys.revoked.Swap(int64(n)) {
		r.keys.purgeLocked()
	}
	return nil
}

// purge forgets every check, after this process revoked a key.
func (k *keyCache) purge() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.purgeLocked()
}

func (k *keyCache) purgeLocked() {
	k.generation.Add(1)
	k.checks.Purge()
}

// store remembers a check read from the database while generation was gen.
func (k *keyCache) store(hash string, gen int64, check keyCheck) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.generation.Load() == gen {
		k.checks.Add(hash, check)
	}
}
