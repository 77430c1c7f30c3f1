package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/agentbot/registry/fleet"
)

// Installation is one agent installation: exactly one per userId, updated in
// place when the same user registers again. Its status is not stored: it is
// derived from last_seen whenever it is read, so nothing has to expire it.
type Installation struct {
	ent.Schema
}

func (Installation) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").
			DefaultFunc(func() string { return fleet.NewID(fleet.InstallationIDPrefix) }).
			Immutable(),
		field.String("user_id").
			NotEmpty().
			Immutable().
			Unique().
			Annotations(entgql.OrderField("USER_ID")),
		field.Enum("mode").
			GoType(fleet.Mode("")).
			Default(string(fleet.ModeHome)),
		// Secret: never logged (Sensitive), never part of the generated
		// GraphQL type; graph/ exposes it to its owner and admins only.
		field.String("gateway_token").
			Optional().
			Sensitive().
			Annotations(entgql.Skip()),
		field.Time("registered_at").
			Immutable().
			Annotations(entgql.OrderField("REGISTERED_AT")),
		field.Time("last_seen").
			Annotations(entgql.OrderField("LAST_SEEN")),
	}
}

func (Installation) Indexes() []ent.Index {
	return []ent.Index{
		// Newest-first listings and their keyset pages (last_seen, id),
		// status filters and active counts.
		index.Fields("last_seen", "id"),
		// Mode filters and the per-mode counts of fleetSummary.
		index.Fields("mode", "last_seen"),
	}
}

func (Installation) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField(),
		entgql.RelayConnection(),
	}
}
