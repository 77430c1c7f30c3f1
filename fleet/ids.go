package fleet

import (
	"strings"

	"github.com/oklog/ulid/v2"
)

// ID prefixes name the kind of record an ID belongs to, so a GraphQL
// node(id:) lookup knows which table to read without a lookup table, and so
// a person reading a log line can tell a key from an installation.
const (
	InstallationIDPrefix = "ins_"
	APIKeyIDPrefix       = "key_"
)

// NewID returns prefix followed by a ULID: unique, URL-safe and sortable by
// creation time, so the default ordering by ID is the order of creation.
func NewID(prefix string) string {
	return prefix + strings.ToLower(ulid.Make().String())
}
