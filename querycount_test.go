package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/agentbot/registry/ent"
)

// countQueries routes the app's resolver through a driver that records
// every statement, and returns a function reading what ran since.
func countQueries(a *app) func() []string {
	var mu sync.Mutex
	var statements []string
	drv := dialect.DebugWithContext(entsql.OpenDB(a.DB.Dialect, a.DB.DB), func(_ context.Context, v ...any) {
		mu.Lock()
		defer mu.Unlock()
		statements = append(statements, fmt.Sprint(v...))
	})
	a.Resolver.Client = ent.NewClient(ent.Driver(drv))
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := statements
		statements = nil
		return out
	}
}

// A page of installations is one query; pageInfo adds none (the page
// itself says whether more follow). A filtered totalCount adds one COUNT;
// the whole fleet's total comes from the fleet counts, counted once (with
// the read of the installations near the threshold) and then reused.
func TestConnectionQueryCounts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		for i := range 3 {
			a.register(t, a.AdminKey, fmt.Sprintf("u%d", i), "home")
		}
		statements := countQueries(a)
		for _, tc := range []struct {
			doc           string
			queries, cnts int
			hasNext       bool
		}{
			{`{ installations(first: 2) { edges { node { userId status } } } }`, 1, 0, false},
			{`{ installations(first: 2) { edges { node { userId } } pageInfo { hasNextPage endCursor } } }`, 1, 0, true},
			{`{ installations(first: 2, where: {modeIn: [HOME]}) { totalCount edges { node { userId } } pageInfo { hasNextPage } } }`, 2, 1, true},
			{`{ installations(first: 2) { totalCount edges { node { userId } } pageInfo { hasNextPage } } }`, 3, 1, true},
			{`{ installations(first: 2) { totalCount edges { node { userId } } } }`, 1, 0, false},
			{`{ installations(first: 5) { pageInfo { hasNextPage } edges { cursor } } }`, 1, 0, false},
		} {
			statements()
			data := a.mustGraphql(t, a.AdminKey, tc.doc, nil)
			var selects, counts int
			for _, s := range statements() {
				if strings.Contains(s, "SELECT") {
					selects++
				}
				if strings.Contains(s, "COUNT(") {
					counts++
				}
			}
			if selects != tc.queries || counts != tc.cnts {
				t.Errorf("%s: %d queries (%d counts), want %d (%d)", tc.doc, selects, counts, tc.queries, tc.cnts)
			}
			conn := data["installations"].(map[string]any)
			if info, ok := conn["pageInfo"].(map[string]any); ok && info["hasNextPage"] != tc.hasNext {
				t.Errorf("%s: hasNextPage %v, want %v", tc.doc, info["hasNextPage"], tc.hasNext)
			}
			if total, ok := conn["totalCount"]; ok && total != float64(3) {
				t.Errorf("%s: totalCount %v, want 3", tc.doc, total)
			}
		}
	})
}
