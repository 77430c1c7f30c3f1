package graph

import (
	"context"
	"strings"

	"github.com/agentbot/registry/auth"
	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/ent/apikey"
	"github.com/agentbot/registry/ent/installation"
	"github.com/agentbot/registry/errs"
	"github.com/agentbot/registry/fleet"
)

// nodeType tells ent's Noder which table an ID belongs to, from the prefix
// every ID carries (see fleet.NewID).
func nodeType(_ context.Context, id string) (string, error) {
	switch {
	case strings.HasPrefix(id, fleet.InstallationIDPrefix):
		return installation.Table, nil
	case strings.HasPrefix(id, fleet.APIKeyIDPrefix):
		return apikey.Table, nil
	}
	return "", errs.New(errs.NotFound, "node not found")
}

// checkOwner refuses a node that belongs to another user, unless the caller
// is an admin.
func checkOwner(p *auth.Principal, n ent.Noder) error {
	var owner string
	switch n := n.(type) {
	case *ent.Installation:
		owner = n.UserID
	case *ent.APIKey:
		owner = n.UserID
	}
	if !p.CanActFor(owner) {
		return auth.Forbidden("this node belongs to another user")
	}
	return nil
}
