package auth

import (
	"context"
	"net/http"
	"sync"

	"github.com/agentbot/registry/errs"
	"github.com/agentbot/registry/fleet"
)

// Principal is the caller a valid key speaks for.
type Principal struct {
	KeyID    string
	UserID   string
	Plan     fleet.Plan
	Role     fleet.Role
	Features []string
}

// IsAdmin reports whether the principal may act for every user.
func (p *Principal) IsAdmin() bool { return p.Role == fleet.RoleAdmin }

// CanActFor reports whether the principal may read or change userID's data.
func (p *Principal) CanActFor(userID string) bool {
	return p.IsAdmin() || p.UserID == userID
}

// Operator is the principal of the command line: whoever can run the binary
// against the database already has the database.
var Operator = &Principal{KeyID: "cli", UserID: "operator", Plan: fleet.PlanNetwork, Role: fleet.RoleAdmin}

// The messages of the 401 answers. They all start with "Unauthorized", the
// word the registration API documents, and then say which case it is.
var (
	ErrMissingKey = errs.New(errs.Unauthenticated, "Unauthorized: missing bearer token")
	ErrInvalidKey = errs.New(errs.Unauthenticated, "Unauthorized: invalid API key")
	ErrRevokedKey = errs.New(errs.Unauthenticated, "Unauthorized: API key revoked")
	ErrExpiredKey = errs.New(errs.Unauthenticated, "Unauthorized: API key expired")
)

// Forbidden is the error for a valid key asking for something it may not do.
func Forbidden(what string) error {
	return errs.New(errs.Forbidden, "Forbidden: %s", what)
}

// Authenticator resolves a key hash to its principal, or returns one of the
// Err*Key errors (or an internal error when the database fails).
type Authenticator func(ctx context.Context, keyHash string) (*Principal, error)

type contextKey struct{}

// identity resolves the request's key at most once, and only when something
// asks: an unauthenticated heartbeat costs no key lookup.
type identity struct {
	once      sync.Once
	resolve   func() (*Principal, error)
	principal *Principal
	err       error
}

// Middleware attaches the request's bearer key to its context, to be checked
// by Require when (and if) a resolver needs to know who is calling.
func Middleware(authenticate Authenticator) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw := BearerToken(r.Header.Get("Authorization"))
			if raw == "" {
				next.ServeHTTP(w, r) // Require answers ErrMissingKey
				return
			}
			ctx := r.Context()
			id := &identity{resolve: func() (*Principal, error) { return authenticate(ctx, Hash(raw)) }}
			next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, contextKey{}, id)))
		})
	}
}

// WithPrincipal returns a context that speaks for p, for callers that are
// not HTTP requests (the command line, tests).
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	id := &identity{principal: p}
	id.once.Do(func() {})
	return context.WithValue(ctx, contextKey{}, id)
}

// Require returns the caller's principal, or the reason there is none.
func Require(ctx context.Context) (*Principal, error) {
	id, _ := ctx.Value(contextKey{}).(*identity)
	if id == nil {
		return nil, ErrMissingKey
	}
	id.once.Do(func() { id.principal, id.err = id.resolve() })
	return id.principal, id.err
}
