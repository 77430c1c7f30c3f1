package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	entsql "entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/agentbot/registry/fleet"
)

// APIKey is a bearer key. Only the SHA-256 of the raw key is stored; the raw
// key is shown once, when it is created. The prefix is the visible,
// non-secret start of the raw key, so a leaked key can be recognised.
type APIKey struct {
	ent.Schema
}

// DefaultFeatures are the features of a key created without a list.
var DefaultFeatures = []string{"dashboard", "marketplace", "analytics"}

func (APIKey) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").
			DefaultFunc(func() string { return fleet.NewID(fleet.APIKeyIDPrefix) }).
			Immutable(),
		field.String("key_hash").
			Unique().
			Immutable().
			Sensitive().
			Annotations(entgql.Skip()),
		field.String("prefix").
			Immutable(),
		field.String("user_id").
			NotEmpty().
			Immutable().
			Annotations(entgql.OrderField("USER_ID")),
		field.Enum("plan").
			GoType(fleet.Plan("")).
			Default(string(fleet.PlanSolo)),
		field.Enum("role").
			GoType(fleet.Role("")).
			Default(string(fleet.RoleUser)),
		field.JSON("features", []string{}).
			Default(DefaultFeatures),
		field.String("label").
			Default(""),
		field.Time("created_at").
			Immutable().
			Annotations(entgql.OrderField("CREATED_AT")),
		field.Time("last_used_at").
			Optional().
			Nillable(),
		field.Time("expires_at").
			Optional().
			Nillable(),
		field.Time("revoked_at").
			Optional().
			Nillable(),
	}
}

func (APIKey) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id"),
		index.Fields("prefix"),
		// The key cache's change marker counts revoked keys once a second
		// in every process; this keeps that count to the revoked few.
		index.Fields("revoked_at").
			Annotations(entsql.IndexWhere("revoked_at IS NOT NULL")),
	}
}

func (APIKey) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField("apiKeys"),
		entgql.RelayConnection(),
	}
}
