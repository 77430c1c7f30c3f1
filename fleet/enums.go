// Package fleet holds the small value types shared by the database, the REST
// layer and GraphQL: deployment modes, liveness status, plans and roles.
//
// Each type is stored and spoken in REST as the documented lowercase word
// ("home", "active", "solo", "admin") and travels through GraphQL as an
// UPPER_CASE enum value ("HOME", "ACTIVE", ...). This file is the one place
// where that translation happens.
package fleet

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Mode is how an installation runs the agent.
type Mode string

const (
	ModeHome  Mode = "home"  // the agent container on the user's own hardware
	ModeLink  Mode = "link"  // an existing OpenClaw instance linked to the platform
	ModeCloud Mode = "cloud" // hosted by Agentbot
)

// Status is an installation's liveness, derived from lastSeen at read time.
type Status string

const (
	StatusActive   Status = "active"
	StatusInactive Status = "inactive"
)

// Plan is the subscription plan an API key carries.
type Plan string

const (
	PlanLabel      Plan = "label"
	PlanSolo       Plan = "solo"
	PlanCollective Plan = "collective"
	PlanNetwork    Plan = "network"
)

// Role decides what an API key may do: a user acts for its own userId, an
// admin for everyone.
type Role string

const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// Values lists the stored words; ent uses it for the column's enum check.
func (Mode) Values() []string   { return []string{"home", "link", "cloud"} }
func (Status) Values() []string { return []string{"active", "inactive"} }
func (Plan) Values() []string   { return []string{"label", "solo", "collective", "network"} }
func (Role) Values() []string   { return []string{"user", "admin"} }

func (m Mode) String() string   { return string(m) }
func (s Status) String() string { return string(s) }
func (p Plan) String() string   { return string(p) }
func (r Role) String() string   { return string(r) }

// Valid reports whether the value is one of the documented words.
func (m Mode) Valid() bool   { return slices.Contains(m.Values(), string(m)) }
func (s Status) Valid() bool { return slices.Contains(s.Values(), string(s)) }
func (p Plan) Valid() bool   { return slices.Contains(p.Values(), string(p)) }
func (r Role) Valid() bool   { return slices.Contains(r.Values(), string(r)) }

// GraphQL wire format: UPPER_CASE names of the lowercase values.

func (m Mode) MarshalGQL(w io.Writer)   { marshalUpper(w, string(m)) }
func (s Status) MarshalGQL(w io.Writer) { marshalUpper(w, string(s)) }
func (p Plan) MarshalGQL(w io.Writer)   { marshalUpper(w, string(p)) }
func (r Role) MarshalGQL(w io.Writer)   { marshalUpper(w, string(r)) }

func (m *Mode) UnmarshalGQL(v any) error   { return unmarshalUpper(v, m, "InstallationMode") }
func (s *Status) UnmarshalGQL(v any) error { return unmarshalUpper(v, s, "InstallationStatus") }
func (p *Plan) UnmarshalGQL(v any) error   { return unmarshalUpper(v, p, "APIKeyPlan") }
func (r *Role) UnmarshalGQL(v any) error   { return unmarshalUpper(v, r, "APIKeyRole") }

func marshalUpper(w io.Writer, v string) {
	_, _ = io.WriteString(w, strconv.Quote(strings.ToUpper(v)))
}

type enum interface {
	~string
	Values() []string
}

func unmarshalUpper[T enum](v any, dst *T, typeName string) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%s must be a string", typeName)
	}
	word := T(strings.ToLower(s))
	if s != strings.ToUpper(s) || !slices.Contains(word.Values(), string(word)) {
		return fmt.Errorf("%q is not a valid %s", s, typeName)
	}
	*dst = word
	return nil
}
