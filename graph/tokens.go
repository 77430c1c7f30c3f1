package graph

import (
	"context"

	"github.com/agentbot/registry/ent/installation"
	"github.com/agentbot/registry/secrets"
)

// SealPlaintextTokens seals the gateway tokens stored before they were
// sealed at rest. It runs with every migration; with nothing to seal it is
// one indexed query. It returns how many tokens it sealed.
func (r *Resolver) SealPlaintextTokens(ctx context.Context) (int, error) {
	sealed := 0
	for {
		rows, err := r.Client.Installation.Query().
			Where(installation.GatewayTokenNEQ(""), installation.Not(installation.GatewayTokenHasPrefix(secrets.SealedPrefix))).
			Limit(500).
			All(ctx)
		if err != nil || len(rows) == 0 {
			return sealed, r.storeError(ctx, err, "installation")
		}
		for _, inst := range rows {
			err := r.Client.Installation.UpdateOne(inst).
				SetGatewayToken(r.Secrets.Seal(inst.GatewayToken, inst.UserID)).
				Exec(ctx)
			if err != nil {
				return sealed, r.storeError(ctx, err, "installation")
			}
			sealed++
		}
	}
}
