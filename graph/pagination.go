package graph

import "github.com/agentbot/registry/errs"

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
