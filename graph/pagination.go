package graph

import (
	"context"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/errs"
)

// Page sizes of the connections. Without first or last a connection returns
// its first defaultPageSize items rather than the whole fleet; more than
// maxPageSize at once is refused (and priced by the complexity limit).
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// pageSize applies the defaults and limits to a connection's first/last.
func pageSize(first, last *int) (*int, *int, error) {
	for _, n := range []*int{first, last} {
		if n != nil && (*n < 0 || *n > maxPageSize) {
			return nil, nil, errs.New(errs.Invalid, "first and last must be between 0 and %d", maxPageSize)
		}
	}
	if first == nil && last == nil {
		n := defaultPageSize
		first = &n
	}
	return first, last, nil
}

// pageCost is what one item of a connection page costs in the complexity
// limit: the page size the query asks for (or would get by default).
func pageCost(first, last *int) int {
	switch {
	case first != nil:
		return max(*first, 1)
	case last != nil:
		return max(*last, 1)
	}
	return defaultPageSize
}

// checkCursors refuses cursors this server cannot have made for a
// connection whose IDs start with idPrefix, ordered by orderField ("" for
// the default order by ID). A cursor is only base64 msgpack: a forged one
// could carry any type or a huge ID, which would reach the database as a
// comparison it cannot make.
func checkCursors(idPrefix, orderField string, cursors ...*ent.Cursor) error {
	for _, c := range cursors {
		if c == nil {
			continue
		}
		valid := strings.HasPrefix(c.ID, idPrefix) && checkText("cursor", c.ID, maxIDChars) == nil
		switch orderField {
		case "":
			valid = valid && c.Value == nil
		case "USER_ID":
			s, ok := c.Value.(string)
			valid = valid && ok && checkText("cursor", s, maxUserIDChars) == nil
		default: // the time fields
			_, ok := c.Value.(time.Time)
			valid = valid && ok
		}
		if !valid {
			return errs.New(errs.Invalid, "cursor is not one this server returned for this ordering")
		}
	}
	return nil
}

// withoutCount keeps the generated Paginate from counting every matching
// row. It counts whenever pageInfo or totalCount is selected, yet pageInfo
// comes from the page itself (it reads one row more than asked), so unless
// keepTotal (totalCount is selected and nobody else will supply it), the
// selection Paginate inspects leaves both out; gqlgen still resolves them
// from the connection as usual. On a million rows that count is most of
// the query's time.
func withoutCount(ctx context.Context, keepTotal bool) context.Context {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || keepTotal {
		return ctx
	}
	kept := make(ast.SelectionSet, 0, len(fc.Field.Selections))
	for _, sel := range fc.Field.Selections {
		if f, ok := sel.(*ast.Field); ok && (f.Name == "pageInfo" || f.Name == "totalCount") {
			continue
		}
		kept = append(kept, sel)
	}
	trimmed := *fc
	trimmed.Field.Selections = kept
	return graphql.WithFieldContext(ctx, &trimmed)
}

// selectsTotalCount reports whether the connection being resolved selects
// totalCount.
func selectsTotalCount(ctx context.Context) bool {
	if graphql.GetFieldContext(ctx) == nil {
		return false
	}
	for _, f := range graphql.CollectFieldsCtx(ctx, nil) {
		if f.Name == "totalCount" {
			return true
		}
	}
	return false
}
