package graph

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/agentbot/registry/errs"
)

// depthLimit refuses operations nested deeper than max fields, counting
// through fragments. The schema has no cycles today, but node(id:) and
// future edges could make one, and the complexity limit alone does not bound
// the work of parsing and validating a deeply nested document.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }
func (d depthLimit) MutateOperationContext(ctx context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	if depth := selectionDepth(rc.Operation.SelectionSet, 0, d.max); depth > d.max {
		return presentError(ctx, errs.New(errs.Invalid, "operation is nested %d levels deep or more; the limit is %d", depth, d.max))
	}
	return nil
}

// selectionDepth returns the depth of set, stopping once it exceeds limit (so
// a fragment cycle, which validation rejects anyway, cannot loop).
func selectionDepth(set ast.SelectionSet, depth, limit int) int {
	if depth > limit {
		return depth
	}
	deepest := depth
	for _, sel := range set {
		var d int
		switch sel := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(sel.Name, "__") {
				continue // introspection (the playground's own query is deep); it has its own switch
			}
			d = selectionDepth(sel.SelectionSet, depth+1, limit)
		case *ast.InlineFragment:
			d = selectionDepth(sel.SelectionSet, depth, limit)
		case *ast.FragmentSpread:
			if sel.Definition != nil {
				d = selectionDepth(sel.Definition.SelectionSet, depth, limit)
			}
		}
		deepest = max(deepest, d)
	}
	return deepest
}
