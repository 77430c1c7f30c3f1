//go:build ignore

// entc.go generates the ent client and, through entgql, the GraphQL schema
// graph/ent.graphqls. It runs from the repository root (see generate.go).
package main

import (
	"log"
	"strings"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/entc"
	"entgo.io/ent/entc/gen"
	"github.com/vektah/gqlparser/v2/ast"
)

func main() {
	ex, err := entgql.NewExtension(
		entgql.WithConfigPath("./gqlgen.yml"),
		entgql.WithSchemaGenerator(),
		entgql.WithSchemaPath("./graph/ent.graphqls"),
		entgql.WithWhereInputs(true),
		entgql.WithSchemaHook(restNames),
	)
	if err != nil {
		log.Fatalf("creating entgql extension: %v", err)
	}
	err = entc.Generate("./ent/schema", &gen.Config{
		Features: []gen.Feature{
			gen.FeatureUpsert,
			gen.FeatureModifier,
			gen.FeatureExecQuery,
		},
	}, entc.Extensions(ex))
	if err != nil {
		log.Fatalf("running ent codegen: %v", err)
	}
}

// restNames makes the generated GraphQL speak the REST document's words:
// ent camel-cases user_id as "userID" (in types and where-inputs alike),
// while the documented field is "userId"; and entgql copies stored enum
// values ("home") verbatim, while GraphQL enum values are UPPER_CASE. The Go
// types behind the enums (package fleet) marshal to match.
func restNames(_ *gen.Graph, s *ast.Schema) error {
	for _, def := range s.Types {
		for _, f := range def.Fields {
			if rest, ok := strings.CutPrefix(f.Name, "userID"); ok {
				f.Name = "userId" + rest
			}
		}
		if def.Kind == ast.Enum {
			for _, v := range def.EnumValues {
				v.Name = strings.ToUpper(v.Name)
			}
		}
	}
	return nil
}
