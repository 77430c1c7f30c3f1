package graph

import (
	"context"
	"time"

	"github.com/agentbot/registry/auth"
	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/ent/apikey"
)

// lastUsedResolution is how stale lastUsedAt may get: a key used every
// second costs one write a minute, not one per request.
const lastUsedResolution = time.Minute

// Authenticate resolves a key hash to its principal. It is the
// auth.Authenticator of the HTTP middleware.
//
// Errors: auth.ErrInvalidKey, auth.ErrRevokedKey, auth.ErrExpiredKey,
// errs.Internal.
func (r *Resolver) Authenticate(ctx context.Context, keyHash string) (*auth.Principal, error) {
	key, err := r.Client.APIKey.Query().Where(apikey.KeyHash(keyHash)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, auth.ErrInvalidKey
	}
	if err != nil {
		return nil, r.storeError(ctx, err, "API key")
	}
	now := r.now()
	switch {
	case key.RevokedAt != nil:
		return nil, auth.ErrRevokedKey
	case key.ExpiresAt != nil && !now.Before(*key.ExpiresAt):
		return nil, auth.ErrExpiredKey
	}
	if key.LastUsedAt == nil || now.Sub(*key.LastUsedAt) >= lastUsedResolution {
		// Best effort: a failed bookkeeping write must not refuse a valid key.
		if err := r.Client.APIKey.UpdateOneID(key.ID).SetLastUsedAt(now).Exec(ctx); err != nil {
			r.Log.WarnContext(ctx, "recording key use", "keyId", key.ID, "error", err)
		}
	}
	return principalOf(key), nil
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
