package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentbot/registry/auth"
	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/fleet"
	"github.com/agentbot/registry/graph"
	"github.com/agentbot/registry/graph/model"
	"github.com/agentbot/registry/metrics"
	"github.com/agentbot/registry/requestlog"
)

// keys is `registry keys create|list|revoke`. It calls the same resolvers as
// the APIs, as the operator: whoever can reach the database is trusted.
func keys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	sub, args := args[0], args[1:]
	var cfg config
	fs, err := newFlagSet("keys "+sub, stderr, getenv, &cfg)
	if err != nil {
		return err
	}
	var user, plan, role, label string
	var expires time.Duration
	if sub == "create" {
		fs.StringVar(&user, "user", "", "userId the key acts for (required)")
		fs.StringVar(&plan, "plan", "solo", "plan: label, solo, collective or network")
		fs.StringVar(&role, "role", "user", "role: user or admin")
		fs.StringVar(&label, "label", "", "a note for people, such as where the key is used")
		fs.DurationVar(&expires, "expires", 0, "lifetime of the key, such as 720h; 0 never expires")
	}
	rest, err := parseArgs(fs, args, &cfg)
	if err != nil {
		return err
	}
	if sub != "revoke" && len(rest) > 0 {
		fmt.Fprintf(stderr, "keys %s: unexpected argument %q\n", sub, rest[0])
		return errUsage
	}
	db, err := openDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	r := newResolver(cfg, db, metrics.New(), requestlog.NewLogger(stderr, cfg.LogLevel))
	ctx = auth.WithPrincipal(ctx, auth.Operator)

	switch sub {
	case "create":
		if user == "" {
			fmt.Fprintln(stderr, "keys create: --user is required")
			return errUsage
		}
		input := model.CreateAPIKeyInput{UserID: user, Label: &label}
		p, ro := fleet.Plan(plan), fleet.Role(role)
		input.Plan, input.Role = &p, &ro
		if expires > 0 {
			at := time.Now().Add(expires)
			input.ExpiresAt = &at
		}
		return createKey(ctx, r, input, stdout, stderr)
	case "list":
		return listKeys(ctx, r, stdout)
	case "revoke":
		if len(rest) != 1 {
			fmt.Fprintln(stderr, "keys revoke: give one key ID or prefix")
			return errUsage
		}
		return revokeKey(ctx, r, rest[0], stderr)
	}
	fmt.Fprintf(stderr, "unknown command \"keys %s\"\n\n%s", sub, usage)
	return errUsage
}

// createKey prints the raw key, and only the key, on stdout so scripts can
// capture it; the rest is for people and goes to stderr.
func createKey(ctx context.Context, r *graph.Resolver, input model.CreateAPIKeyInput, stdout, stderr io.Writer) error {
	created, err := r.Mutation().CreateAPIKey(ctx, input)
	if err != nil {
		return err
	}
	k := created.APIKey
	fmt.Fprintf(stderr, "created key %s (prefix %s) for %s, role %s, plan %s; it is shown once:\n", k.ID, k.Prefix, k.UserID, k.Role, k.Plan)
	fmt.Fprintln(stdout, created.Key)
	return nil
}

func listKeys(ctx context.Context, r *graph.Resolver, stdout io.Writer) error {
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tPREFIX\tUSER\tROLE\tPLAN\tLABEL\tCREATED\tLAST USED\tEXPIRES\tREVOKED")
	first := 1000
	var after *ent.Cursor
	for {
		page, err := r.Query().APIKeys(ctx, after, &first, nil, nil, nil, nil)
		if err != nil {
			return err
		}
		for _, e := range page.Edges {
			k := e.Node
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, k.UserID, k.Role, k.Plan,
				k.Label, when(&k.CreatedAt), when(k.LastUsedAt), when(k.ExpiresAt), when(k.RevokedAt))
		}
		if !page.PageInfo.HasNextPage {
			break
		}
		after = page.PageInfo.EndCursor
	}
	return w.Flush()
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// revokeKey revokes a key named by its ID (key_…) or its visible prefix
// (agb_…); a prefix that matches several keys is refused.
func revokeKey(ctx context.Context, r *graph.Resolver, idOrPrefix string, stderr io.Writer) error {
	id := idOrPrefix
	if !strings.HasPrefix(idOrPrefix, fleet.APIKeyIDPrefix) {
		two := 2
		page, err := r.Query().APIKeys(ctx, nil, &two, nil, nil, nil, &ent.APIKeyWhereInput{Prefix: &idOrPrefix})
		if err != nil {
			return err
		}
		switch len(page.Edges) {
		case 0:
			return fmt.Errorf("no key has the ID or prefix %q", idOrPrefix)
		case 2:
			return errors.New("several keys have that prefix; revoke by ID (see keys list)")
		}
		id = page.Edges[0].Node.ID
	}
	k, err := r.Mutation().RevokeAPIKey(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "revoked key %s (prefix %s) of %s at %s\n", k.ID, k.Prefix, k.UserID, when(k.RevokedAt))
	return nil
}
