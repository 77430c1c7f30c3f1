package graph

import (
	"context"
	"strings"

	"github.com/agentbot/registry/auth"
	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/fleet"
)

// maxIDChars is longer than any ID this service makes (prefix and ULID).
const maxIDChars = 64

// loadNode reads the node an ID names, or nil when it names nothing: an
// unknown prefix, a malformed ID or a missing row. Whole rows are read (not
// ent's Noder, which reads only the selected fields): the owner check needs
// userId whatever the query selects.
func (r *Resolver) loadNode(ctx context.Context, p *auth.Principal, id string) (ent.Noder, error) {
	if checkText("id", id, maxIDChars) != nil {
		return nil, nil
	}
	var n ent.Noder
	var err error
	switch {
	case strings.HasPrefix(id, fleet.InstallationIDPrefix):
		n, err = r.Client.Installation.Get(ctx, id)
	case strings.HasPrefix(id, fleet.APIKeyIDPrefix):
		n, err = r.Client.APIKey.Get(ctx, id)
	default:
		return nil, nil
	}
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, r.storeError(ctx, err, "node")
	}
	if err := checkOwner(p, n); err != nil {
		return nil, err
	}
	return n, nil
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
