package graph

import (
	"context"

	"github.com/agentbot/registry/auth"
	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/ent/apikey"
)

// Authenticate resolves a key hash to its principal. It is the
// auth.Authenticator of the HTTP middleware. Checks are cached (see
// keyCache), so a busy key costs no query; its use is recorded for
// lastUsedAt in batches.
//
// Errors: auth.ErrInvalidKey, auth.ErrRevokedKey, auth.ErrExpiredKey,
// errs.Internal.
func (r *Resolver) Authenticate(ctx context.Context, keyHash string) (*auth.Principal, error) {
	p, err := r.checkKey(ctx, keyHash)
	if r.OnKeyCheck != nil {
		r.OnKeyCheck(keyCheckResult(err))
	}
	return p, err
}

// keyCheckResult names the outcome of a key check, for metrics.
func keyCheckResult(err error) string {
	switch err {
	case nil:
		return "valid"
	case auth.ErrInvalidKey:
		return "invalid"
	case auth.ErrRevokedKey:
		return "revoked"
	case auth.ErrExpiredKey:
		return "expired"
	}
	return "error"
}

func (r *Resolver) checkKey(ctx context.Context, keyHash string) (*auth.Principal, error) {
	check, ok := r.keys.checks.Get(keyHash)
	if !ok {
		gen := r.keys.generation.Load()
		var err error
		if check, err = r.lookupKey(ctx, keyHash); err != nil {
			return nil, err
		}
		r.keys.store(keyHash, gen, check)
	}
	if check.err != nil {
		return nil, check.err
	}
	now := r.now()
	if check.expiresAt != nil && !now.Before(*check.expiresAt) {
		return nil, auth.ErrExpiredKey
	}
	r.KeyUses.Record(check.principal.KeyID, now)
	return check.principal, nil
}

// lookupKey reads a key check from the database.
func (r *Resolver) lookupKey(ctx context.Context, keyHash string) (keyCheck, error) {
	key, err := r.Client.APIKey.Query().Where(apikey.KeyHash(keyHash)).Only(ctx)
	switch {
	case ent.IsNotFound(err):
		return keyCheck{err: auth.ErrInvalidKey}, nil
	case err != nil:
		return keyCheck{}, r.storeError(ctx, err, "API key")
	case key.RevokedAt != nil:
		return keyCheck{err: auth.ErrRevokedKey}, nil
	}
	return keyCheck{principal: principalOf(key), expiresAt: key.ExpiresAt}, nil
}

func principalOf(key *ent.APIKey) *auth.Principal {
	return &auth.Principal{
		KeyID:    key.ID,
		UserID:   key.UserID,
		Plan:     key.Plan,
		Role:     key.Role,
		Features: key.Features,
	}
}
