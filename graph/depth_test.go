package graph

import (
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// The schema has no cycles yet, so no valid document is deeper than the
// limit; the depth count itself is checked on parsed documents.
func TestSelectionDepth(t *testing.T) {
	nested := func(n int) string {
		return strings.Repeat("{ a ", n) + "{ b }" + strings.Repeat(" }", n)
	}
	for _, tc := range []struct {
		doc  string
		want int
	}{
		{"{ a }", 1},
		{"{ a { b } c }", 2},
		{nested(3), 4},
		{"{ ... on Query { a { b } } }", 2},
		{"{ ...F } fragment F on Query { a { b { c } } }", 3},
		{"{ __schema { types { fields { type { ofType { ofType { name } } } } } } }", 0},
		{nested(40), 13}, // stops counting past the limit
	} {
		doc, err := parser.ParseQuery(&ast.Source{Input: tc.doc})
		if err != nil {
			t.Fatal(err)
		}
		// Fragment spreads point at their definitions after validation;
		// link them here as the validator would.
		for _, op := range doc.Operations {
			linkFragments(op.SelectionSet, doc.Fragments)
		}
		if got := selectionDepth(doc.Operations[0].SelectionSet, 0, 12); got != tc.want {
			t.Errorf("depth of %s = %d, want %d", tc.doc, got, tc.want)
		}
	}
}

func linkFragments(set ast.SelectionSet, fragments ast.FragmentDefinitionList) {
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			linkFragments(sel.SelectionSet, fragments)
		case *ast.InlineFragment:
			linkFragments(sel.SelectionSet, fragments)
		case *ast.FragmentSpread:
			sel.Definition = fragments.ForName(sel.Name)
			linkFragments(sel.Definition.SelectionSet, fragments)
		}
	}
}
