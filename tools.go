//go:build tools

// tools.go pins the code generators in go.mod, so `go generate ./...` uses
// the versions the project was built with.
package main

import (
	_ "entgo.io/contrib/entgql"
	_ "entgo.io/ent/entc"
	_ "github.com/99designs/gqlgen"
)
