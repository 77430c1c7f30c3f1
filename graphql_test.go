package main

// GraphQL API tests (CONTRACT section 5): real documents over HTTP, on every
// backend. Helpers shared by auth_test.go and liveness_test.go carry the
// gqx prefix so they cannot clash with helpers in other test files.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// ---------------------------------------------------------------- helpers

// gqxAt walks a decoded JSON value by object keys (string) and list
// indexes (int), failing the test when the path does not exist.
func gqxAt(t *testing.T, v any, path ...any) any {
	t.Helper()
	cur := v
	for i, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				t.Fatalf("path %v: element %d is %T, not an object", path, i, cur)
			}
			next, ok := m[k]
			if !ok {
				t.Fatalf("path %v: no key %q in %v", path, k, m)
			}
			cur = next
		case int:
			l, ok := cur.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("path %v: element %d is %T (%v), not a list with index %d", path, i, cur, cur, k)
			}
			cur = l[k]
		}
	}
	return cur
}

func gqxString(t *testing.T, v any, path ...any) string {
	t.Helper()
	s, ok := gqxAt(t, v, path...).(string)
	if !ok {
		t.Fatalf("path %v: %v is not a string", path, gqxAt(t, v, path...))
	}
	return s
}

func gqxInt(t *testing.T, v any, path ...any) int {
	t.Helper()
	f, ok := gqxAt(t, v, path...).(float64)
	if !ok {
		t.Fatalf("path %v: %v is not a number", path, gqxAt(t, v, path...))
	}
	return int(f)
}

func gqxBool(t *testing.T, v any, path ...any) bool {
	t.Helper()
	b, ok := gqxAt(t, v, path...).(bool)
	if !ok {
		t.Fatalf("path %v: %v is not a boolean", path, gqxAt(t, v, path...))
	}
	return b
}

func gqxTime(t *testing.T, v any, path ...any) time.Time {
	t.Helper()
	s := gqxString(t, v, path...)
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("path %v: %q is not an RFC 3339 time: %v", path, s, err)
	}
	return tm
}

// gqxNodes returns the nodes of a connection's edges.
func gqxNodes(t *testing.T, conn any) []map[string]any {
	t.Helper()
	edges, _ := gqxAt(t, conn, "edges").([]any)
	var out []map[string]any
	for _, e := range edges {
		n, ok := gqxAt(t, e, "node").(map[string]any)
		if !ok {
			t.Fatalf("edge without node: %v", e)
		}
		out = append(out, n)
	}
	return out
}

// gqxUserIDs returns the userId of every node of a connection, in order.
func gqxUserIDs(t *testing.T, conn any) []string {
	t.Helper()
	var ids []string
	for _, n := range gqxNodes(t, conn) {
		ids = append(ids, gqxString(t, n, "userId"))
	}
	return ids
}

func gqxSorted(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}

// gqxExpectCode fails unless the result has an error with the code, and the
// named top-level field (when given) is null or absent.
func gqxExpectCode(t *testing.T, res gqlResult, code, field string) {
	t.Helper()
	if len(res.Errors) == 0 {
		t.Fatalf("want error %s, got none; data %v", code, res.Data)
	}
	if got := res.code(); got != code {
		t.Fatalf("want extensions.code %s, got %q: %+v", code, got, res.Errors)
	}
	if field != "" && res.Data != nil && res.Data[field] != nil {
		t.Fatalf("want %s to be null with error %s, got %v", field, code, res.Data[field])
	}
}

const gqxRegisterDoc = `mutation($input: RegisterInstallationInput!) {
  registerInstallation(input: $input) { id userId mode status registeredAt lastSeen gatewayToken }
}`

// gqxRegister registers an installation through GraphQL and returns it.
func gqxRegister(t *testing.T, a *app, key, userID, mode string) map[string]any {
	t.Helper()
	input := map[string]any{"userId": userID}
	if mode != "" {
		input["mode"] = mode
	}
	data := a.mustGraphql(t, key, gqxRegisterDoc, map[string]any{"input": input})
	return gqxAt(t, data, "registerInstallation").(map[string]any)
}

// gqxHeartbeat sends a GraphQL heartbeat for userID.
func gqxHeartbeat(t *testing.T, a *app, key, userID string) time.Time {
	t.Helper()
	data := a.mustGraphql(t, key, `mutation($u: String!) { heartbeat(userId: $u) { timestamp } }`, map[string]any{"u": userID})
	return gqxTime(t, data, "heartbeat", "timestamp")
}

// gqxUserKey creates a user key with the admin key and returns the raw key.
// (GraphQL rather than the command line: every command-line run migrates
// the database, which is slow on PostgreSQL.)
func gqxUserKey(t *testing.T, a *app, userID, plan string) string {
	t.Helper()
	d := a.mustGraphql(t, a.AdminKey, `mutation($u: String!, $p: APIKeyPlan) { createAPIKey(input: {userId: $u, plan: $p}) { key } }`,
		map[string]any{"u": userID, "p": strings.ToUpper(plan)})
	return gqxString(t, d, "createAPIKey", "key")
}

const gqxConnDoc = `query($first: Int, $after: Cursor, $last: Int, $before: Cursor, $order: InstallationOrder, $where: InstallationWhereInput) {
  installations(first: $first, after: $after, last: $last, before: $before, orderBy: $order, where: $where) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id userId mode status registeredAt lastSeen } }
  }
}`

// gqxInstallations runs the installations connection with the given
// arguments (nil values are left out) and returns the connection.
func gqxInstallations(t *testing.T, a *app, key string, vars map[string]any) map[string]any {
	t.Helper()
	clean := map[string]any{}
	for k, v := range vars {
		if v != nil {
			clean[k] = v
		}
	}
	data := a.mustGraphql(t, key, gqxConnDoc, clean)
	return gqxAt(t, data, "installations").(map[string]any)
}

// gqxKeyIDByPrefix finds the ID of the key with the given display prefix.
func gqxKeyIDByPrefix(t *testing.T, a *app, prefix string) string {
	t.Helper()
	data := a.mustGraphql(t, a.AdminKey, `query($p: String!) { apiKeys(where: {prefix: $p}) { edges { node { id prefix } } } }`,
		map[string]any{"p": prefix})
	nodes := gqxNodes(t, gqxAt(t, data, "apiKeys"))
	if len(nodes) != 1 {
		t.Fatalf("want one key with prefix %q, got %v", prefix, nodes)
	}
	return gqxString(t, nodes[0], "id")
}

// gqxPrefixOf is the display prefix of a raw key as the admin sees it in
// apiKeys: the one key whose prefix starts the raw key.
func gqxPrefixOf(t *testing.T, a *app, raw string) string {
	t.Helper()
	data := a.mustGraphql(t, a.AdminKey, `{ apiKeys(first: 1000) { edges { node { prefix } } } }`, nil)
	var found []string
	for _, n := range gqxNodes(t, gqxAt(t, data, "apiKeys")) {
		p := gqxString(t, n, "prefix")
		if p != "" && strings.HasPrefix(raw, p) {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one key prefix starting the raw key, got %v", found)
	}
	return found[0]
}

// gqxKeyID returns the ID of a raw key, via its prefix.
func gqxKeyID(t *testing.T, a *app, raw string) string {
	t.Helper()
	return gqxKeyIDByPrefix(t, a, gqxPrefixOf(t, a, raw))
}

// gqxLeakWords are fragments that would show an error leaks internals:
// SQL, driver or ORM text, Go stack traces.
var gqxLeakWords = []string{
	"select ", "insert ", "update ", " from ", "where ", "sqlstate", "sql:", "pq:", "pgx", "pgconn",
	"sqlite", "postgres", "syntax error at", "relation \"", "constraint", "ent:", "goroutine",
	".go:", "panic", "invalid byte sequence", "runtime error", "api_keys", "installations.",
	"key_hash", "gateway_token",
}

// gqxNoLeak fails when any error of res reveals internal details.
func gqxNoLeak(t *testing.T, what string, res gqlResult) {
	t.Helper()
	for _, e := range res.Errors {
		raw, _ := json.Marshal(e)
		low := strings.ToLower(string(raw))
		for _, w := range gqxLeakWords {
			if strings.Contains(low, w) {
				t.Errorf("%s: error reveals internal details (%q): %s", what, w, raw)
			}
		}
		if c, _ := e.Extensions["code"].(string); c == "INTERNAL_SERVER_ERROR" && e.Message != "Internal server error" {
			t.Errorf("%s: internal error with a detailed message: %s", what, raw)
		}
	}
}

// ---------------------------------------------------------------- paging

func TestGraphQLInstallationsPaging(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		var want []string // in registration order = lastSeen ascending
		for i := range 7 {
			u := fmt.Sprintf("page-%02d", i)
			gqxRegister(t, a, a.AdminKey, u, "HOME")
			want = append(want, u)
			a.Clock.Advance(time.Second)
		}
		asc := map[string]any{"field": "LAST_SEEN", "direction": "ASC"}

		// Forward: first/after, pages of 3, 3, 1.
		var got []string
		var after any
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatal("forward paging does not end")
			}
			conn := gqxInstallations(t, a, a.AdminKey, map[string]any{"first": 3, "after": after, "order": asc})
			if n := gqxInt(t, conn, "totalCount"); n != 7 {
				t.Fatalf("page %d: totalCount %d, want 7", page, n)
			}
			ids := gqxUserIDs(t, conn)
			if wantLen := []int{3, 3, 1}[min(page, 2)]; len(ids) != wantLen {
				t.Fatalf("page %d: %d items %v, want %d", page, len(ids), ids, wantLen)
			}
			got = append(got, ids...)
			edges := gqxAt(t, conn, "edges").([]any)
			if gqxString(t, conn, "pageInfo", "startCursor") != gqxString(t, edges[0], "cursor") ||
				gqxString(t, conn, "pageInfo", "endCursor") != gqxString(t, edges[len(edges)-1], "cursor") {
				t.Fatalf("page %d: pageInfo cursors do not match the edges: %v", page, conn)
			}
			if page == 0 && gqxBool(t, conn, "pageInfo", "hasPreviousPage") {
				t.Fatalf("first page says it has a previous page")
			}
			if !gqxBool(t, conn, "pageInfo", "hasNextPage") {
				if page != 2 {
					t.Fatalf("hasNextPage false on page %d of 3", page)
				}
				break
			}
			after = gqxString(t, conn, "pageInfo", "endCursor")
		}
		if !slices.Equal(got, want) {
			t.Fatalf("forward walk got %v, want %v", got, want)
		}

		// Backward: last/before, from the end.
		got = nil
		var before any
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatal("backward paging does not end")
			}
			conn := gqxInstallations(t, a, a.AdminKey, map[string]any{"last": 3, "before": before, "order": asc})
			if n := gqxInt(t, conn, "totalCount"); n != 7 {
				t.Fatalf("backward page %d: totalCount %d, want 7", page, n)
			}
			ids := gqxUserIDs(t, conn)
			if wantLen := []int{3, 3, 1}[min(page, 2)]; len(ids) != wantLen {
				t.Fatalf("backward page %d: %d items %v, want %d", page, len(ids), ids, wantLen)
			}
			got = append(slices.Clone(ids), got...)
			if !gqxBool(t, conn, "pageInfo", "hasPreviousPage") {
				if page != 2 {
					t.Fatalf("hasPreviousPage false on backward page %d of 3", page)
				}
				break
			}
			before = gqxString(t, conn, "pageInfo", "startCursor")
		}
		if !slices.Equal(got, want) {
			t.Fatalf("backward walk got %v, want %v", got, want)
		}

		// A cursor from the middle: the two items after the third.
		third := gqxInstallations(t, a, a.AdminKey, map[string]any{"first": 3, "order": asc})
		cursor := gqxString(t, third, "pageInfo", "endCursor")
		next := gqxInstallations(t, a, a.AdminKey, map[string]any{"first": 2, "after": cursor, "order": asc})
		if ids := gqxUserIDs(t, next); !slices.Equal(ids, want[3:5]) {
			t.Fatalf("first 2 after the third: %v, want %v", ids, want[3:5])
		}
		if !gqxBool(t, next, "pageInfo", "hasNextPage") || !gqxBool(t, next, "pageInfo", "hasPreviousPage") {
			t.Fatalf("middle page pageInfo: %v", next["pageInfo"])
		}
		prev := gqxInstallations(t, a, a.AdminKey, map[string]any{"last": 2, "before": cursor, "order": asc})
		if ids := gqxUserIDs(t, prev); !slices.Equal(ids, want[0:2]) {
			t.Fatalf("last 2 before the third: %v, want %v", ids, want[0:2])
		}

		// Default order (no orderBy), and a descending order: every
		// installation exactly once.
		for _, order := range []any{nil, map[string]any{"field": "LAST_SEEN", "direction": "DESC"}} {
			seen := map[string]int{}
			var after any
			for page := 0; page < 10; page++ {
				conn := gqxInstallations(t, a, a.AdminKey, map[string]any{"first": 2, "after": after, "order": order})
				for _, id := range gqxUserIDs(t, conn) {
					seen[id]++
				}
				if !gqxBool(t, conn, "pageInfo", "hasNextPage") {
					break
				}
				after = gqxString(t, conn, "pageInfo", "endCursor")
			}
			if len(seen) != 7 {
				t.Fatalf("order %v: walk saw %d installations, want 7: %v", order, len(seen), seen)
			}
			for id, n := range seen {
				if n != 1 {
					t.Fatalf("order %v: %s seen %d times", order, id, n)
				}
			}
		}

		// Without first/last the connection still answers (bounded).
		all := gqxInstallations(t, a, a.AdminKey, nil)
		if n := len(gqxUserIDs(t, all)); n != 7 || gqxInt(t, all, "totalCount") != 7 {
			t.Fatalf("unpaged: %d items, totalCount %d", n, gqxInt(t, all, "totalCount"))
		}
	})
}

func TestGraphQLInstallationsOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		// Registered in order o0..o4; seen last in another order.
		for i := range 5 {
			gqxRegister(t, a, a.AdminKey, fmt.Sprintf("o%d", i), "")
			a.Clock.Advance(time.Second)
		}
		seenOrder := []string{"o2", "o0", "o4", "o1", "o3"}
		for _, u := range seenOrder {
			gqxHeartbeat(t, a, a.AdminKey, u)
			a.Clock.Advance(time.Second)
		}
		a.settle(t)
		registered := []string{"o0", "o1", "o2", "o3", "o4"}
		reversed := func(s []string) []string { c := slices.Clone(s); slices.Reverse(c); return c }
		cases := []struct {
			field, dir string
			want       []string
		}{
			{"LAST_SEEN", "ASC", seenOrder},
			{"LAST_SEEN", "DESC", reversed(seenOrder)},
			{"REGISTERED_AT", "ASC", registered},
			{"REGISTERED_AT", "DESC", reversed(registered)},
		}
		for _, c := range cases {
			order := map[string]any{"field": c.field, "direction": c.dir}
			conn := gqxInstallations(t, a, a.AdminKey, map[string]any{"order": order})
			if got := gqxUserIDs(t, conn); !slices.Equal(got, c.want) {
				t.Errorf("orderBy %s %s: %v, want %v", c.field, c.dir, got, c.want)
			}
			// The same order holds across pages.
			var got []string
			var after any
			for range 5 {
				conn := gqxInstallations(t, a, a.AdminKey, map[string]any{"first": 2, "after": after, "order": order})
				got = append(got, gqxUserIDs(t, conn)...)
				if !gqxBool(t, conn, "pageInfo", "hasNextPage") {
					break
				}
				after = gqxString(t, conn, "pageInfo", "endCursor")
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("orderBy %s %s paged by 2: %v, want %v", c.field, c.dir, got, c.want)
			}
		}
	})
}

// ---------------------------------------------------------------- filters

func TestGraphQLInstallationsFilters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		// h1 and l1 go stale; the rest are fresh.
		gqxRegister(t, a, a.AdminKey, "h1", "HOME")
		gqxRegister(t, a, a.AdminKey, "l1", "LINK")
		a.Clock.Advance(10 * time.Minute)
		gqxRegister(t, a, a.AdminKey, "h2", "HOME")
		gqxRegister(t, a, a.AdminKey, "c1", "CLOUD")
		gqxRegister(t, a, a.AdminKey, "team-a", "LINK")
		gqxRegister(t, a, a.AdminKey, "team-b", "CLOUD")

		cases := []struct {
			name  string
			where map[string]any
			want  []string
		}{
			{"mode", map[string]any{"mode": "HOME"}, []string{"h1", "h2"}},
			{"modeIn", map[string]any{"modeIn": []string{"LINK", "CLOUD"}}, []string{"c1", "l1", "team-a", "team-b"}},
			{"modeNEQ", map[string]any{"modeNEQ": "CLOUD"}, []string{"h1", "h2", "l1", "team-a"}},
			{"status ACTIVE", map[string]any{"status": "ACTIVE"}, []string{"c1", "h2", "team-a", "team-b"}},
			{"status INACTIVE", map[string]any{"status": "INACTIVE"}, []string{"h1", "l1"}},
			{"userId", map[string]any{"userId": "c1"}, []string{"c1"}},
			{"userId unknown", map[string]any{"userId": "nobody"}, nil},
			{"userIdIn", map[string]any{"userIdIn": []string{"h1", "team-b", "nobody"}}, []string{"h1", "team-b"}},
			{"userIdHasPrefix", map[string]any{"userIdHasPrefix": "team-"}, []string{"team-a", "team-b"}},
			{"mode and status fields", map[string]any{"mode": "LINK", "status": "INACTIVE"}, []string{"l1"}},
			{"and", map[string]any{"and": []any{map[string]any{"mode": "LINK"}, map[string]any{"status": "ACTIVE"}}}, []string{"team-a"}},
			{"or", map[string]any{"or": []any{map[string]any{"mode": "CLOUD"}, map[string]any{"status": "INACTIVE"}}}, []string{"c1", "h1", "l1", "team-b"}},
			{"not mode", map[string]any{"not": map[string]any{"mode": "HOME"}}, []string{"c1", "l1", "team-a", "team-b"}},
			{"not status", map[string]any{"not": map[string]any{"status": "ACTIVE"}}, []string{"h1", "l1"}},
			{"nested", map[string]any{"or": []any{
				map[string]any{"userIdHasPrefix": "team-", "status": "ACTIVE"},
				map[string]any{"and": []any{map[string]any{"mode": "HOME"}, map[string]any{"not": map[string]any{"status": "ACTIVE"}}}},
			}}, []string{"h1", "team-a", "team-b"}},
			{"status and userIdIn", map[string]any{"status": "ACTIVE", "userIdIn": []string{"h1", "h2"}}, []string{"h2"}},
		}
		for _, c := range cases {
			conn := gqxInstallations(t, a, a.AdminKey, map[string]any{"where": c.where})
			got := gqxSorted(gqxUserIDs(t, conn))
			if !slices.Equal(got, c.want) {
				t.Errorf("where %s %v: got %v, want %v", c.name, c.where, got, c.want)
			}
			if n := gqxInt(t, conn, "totalCount"); n != len(c.want) {
				t.Errorf("where %s: totalCount %d, want %d", c.name, n, len(c.want))
			}
			// Status in the output agrees with the filter.
			if s, ok := c.where["status"].(string); ok {
				for _, n := range gqxNodes(t, conn) {
					if n["status"] != s {
						t.Errorf("where status %s returned %v", s, n)
					}
				}
			}
		}

		// Filters page like everything else.
		conn := gqxInstallations(t, a, a.AdminKey, map[string]any{"first": 1, "where": map[string]any{"status": "ACTIVE"}})
		if gqxInt(t, conn, "totalCount") != 4 || len(gqxUserIDs(t, conn)) != 1 || !gqxBool(t, conn, "pageInfo", "hasNextPage") {
			t.Errorf("first 1 of the active: %v", conn)
		}
	})
}

// ---------------------------------------------------------------- enums

func TestGraphQLEnums(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		if got := gqxRegister(t, a, a.AdminKey, "e-home", ""); got["mode"] != "HOME" || got["status"] != "ACTIVE" {
			t.Errorf("default registration: %v, want mode HOME status ACTIVE", got)
		}
		if got := gqxRegister(t, a, a.AdminKey, "e-link", "LINK"); got["mode"] != "LINK" {
			t.Errorf("LINK registration: %v", got)
		}
		if got := gqxRegister(t, a, a.AdminKey, "e-cloud", "CLOUD"); got["mode"] != "CLOUD" {
			t.Errorf("CLOUD registration: %v", got)
		}
		a.register(t, a.AdminKey, "e-rest", "link") // REST lowercase in, GraphQL upper out
		data := a.mustGraphql(t, a.AdminKey, `{ installation(userId: "e-rest") { mode status } viewer { plan role } }`, nil)
		if gqxString(t, data, "installation", "mode") != "LINK" || gqxString(t, data, "installation", "status") != "ACTIVE" {
			t.Errorf("REST-registered installation in GraphQL: %v", data["installation"])
		}
		if gqxString(t, data, "viewer", "plan") != "NETWORK" || gqxString(t, data, "viewer", "role") != "ADMIN" {
			t.Errorf("viewer enums: %v", data["viewer"])
		}

		// Lowercase (or mixed case) input is refused, as a literal and as a
		// variable, in inputs and in filters.
		refused := []struct {
			name  string
			query string
			vars  map[string]any
		}{
			{"literal mode", `mutation { registerInstallation(input: {userId: "e-lower", mode: home}) { id } }`, nil},
			{"variable mode", gqxRegisterDoc, map[string]any{"input": map[string]any{"userId": "e-lower", "mode": "home"}}},
			{"variable mixed case", gqxRegisterDoc, map[string]any{"input": map[string]any{"userId": "e-lower", "mode": "Link"}}},
			{"string literal mode", `mutation { registerInstallation(input: {userId: "e-lower", mode: "HOME"}) { id } }`, nil},
			{"filter mode", gqxConnDoc, map[string]any{"where": map[string]any{"mode": "cloud"}}},
			{"filter status", gqxConnDoc, map[string]any{"where": map[string]any{"status": "active"}}},
			{"order field", gqxConnDoc, map[string]any{"order": map[string]any{"field": "last_seen", "direction": "ASC"}}},
			{"key plan", `mutation { createAPIKey(input: {userId: "e-lower", plan: solo}) { key } }`, nil},
			{"key role variable", `mutation($r: APIKeyRole) { createAPIKey(input: {userId: "e-lower", role: $r}) { key } }`, map[string]any{"r": "admin"}},
		}
		for _, c := range refused {
			res := a.graphql(t, a.AdminKey, c.query, c.vars)
			if len(res.Errors) == 0 {
				t.Errorf("%s: lowercase enum accepted: %v", c.name, res.Data)
			}
			if res.Data != nil && (res.Data["registerInstallation"] != nil || res.Data["installations"] != nil || res.Data["createAPIKey"] != nil) {
				t.Errorf("%s: refused input still returned data %v", c.name, res.Data)
			}
			gqxNoLeak(t, c.name, res)
		}
		data = a.mustGraphql(t, a.AdminKey, `{ installation(userId: "e-lower") { id } apiKeys(where: {userId: "e-lower"}) { totalCount } }`, nil)
		if data["installation"] != nil || gqxInt(t, data, "apiKeys", "totalCount") != 0 {
			t.Errorf("a refused document changed data: %v", data)
		}
	})
}

// ---------------------------------------------------------------- lookups

func TestGraphQLInstallationAndNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		alice := gqxUserKey(t, a, "alice", "solo")
		gqxRegister(t, a, alice, "alice", "LINK")

		data := a.mustGraphql(t, a.AdminKey, `{
			a: installation(userId: "alice") { id userId mode status registeredAt lastSeen }
			ghost: installation(userId: "ghost") { id }
		}`, nil)
		if data["ghost"] != nil {
			t.Errorf("installation of an unknown userId: %v, want null", data["ghost"])
		}
		inst := gqxAt(t, data, "a")
		if gqxString(t, inst, "userId") != "alice" || gqxString(t, inst, "mode") != "LINK" {
			t.Fatalf("installation(alice): %v", inst)
		}
		instID := gqxString(t, inst, "id")
		if own := a.mustGraphql(t, alice, `{ installation(userId: "alice") { id } }`, nil); gqxString(t, own, "installation", "id") != instID {
			t.Errorf("alice reading her own installation: %v", own)
		}
		if !gqxTime(t, inst, "registeredAt").Equal(a.Clock.Now()) {
			t.Errorf("registeredAt %v, want %v", inst.(map[string]any)["registeredAt"], a.Clock.Now())
		}

		keyID := gqxKeyID(t, a, alice)
		keyName := func(k string) string {
			if k == alice {
				return "owner's"
			}
			return "admin"
		}
		const nodeDoc = `query($id: ID!) { node(id: $id) {
			__typename id
			... on Installation { userId mode status }
			... on APIKey { userId prefix role plan }
		} }`
		for _, key := range []string{a.AdminKey, alice} {
			data := a.mustGraphql(t, key, nodeDoc, map[string]any{"id": instID})
			if gqxString(t, data, "node", "__typename") != "Installation" || gqxString(t, data, "node", "id") != instID ||
				gqxString(t, data, "node", "userId") != "alice" || gqxString(t, data, "node", "mode") != "LINK" {
				t.Errorf("node(installation): %v", data)
			}
			data = a.mustGraphql(t, key, nodeDoc, map[string]any{"id": keyID})
			if gqxString(t, data, "node", "__typename") != "APIKey" || gqxString(t, data, "node", "id") != keyID ||
				gqxString(t, data, "node", "userId") != "alice" || gqxString(t, data, "node", "role") != "USER" ||
				!strings.HasPrefix(alice, gqxString(t, data, "node", "prefix")) {
				t.Errorf("node(api key): %v", data)
			}
			// A selection without userId must work for the owner too.
			for _, sel := range []string{`__typename id`, `__typename id ... on Installation { userId } ... on APIKey { userId }`} {
				res := a.graphql(t, key, `query($ids: [ID!]!) { nodes(ids: $ids) { `+sel+` } }`,
					map[string]any{"ids": []string{keyID, instID}})
				nodes, _ := res.Data["nodes"].([]any)
				if len(res.Errors) > 0 || len(nodes) != 2 || gqxString(t, nodes, 0, "id") != keyID || gqxString(t, nodes, 1, "id") != instID ||
					gqxString(t, nodes, 0, "__typename") != "APIKey" || gqxString(t, nodes, 1, "__typename") != "Installation" {
					t.Errorf("nodes([own key, own installation]) { %s } with the %s key: errors %+v data %v", sel, keyName(key), res.Errors, res.Data)
				}
				res = a.graphql(t, key, `query($id: ID!) { node(id: $id) { `+sel+` } }`, map[string]any{"id": instID})
				if len(res.Errors) > 0 || res.Data["node"] == nil || gqxString(t, res.Data, "node", "id") != instID {
					t.Errorf("node(own installation) { %s } with the %s key: errors %+v data %v", sel, keyName(key), res.Errors, res.Data)
				}
			}
		}

		// The installation's ID is stable across re-registration.
		gqxRegister(t, a, alice, "alice", "HOME")
		if d := a.mustGraphql(t, alice, nodeDoc, map[string]any{"id": instID}); gqxString(t, d, "node", "mode") != "HOME" {
			t.Errorf("node after re-registration: %v", d)
		}

		// Unknown IDs: null, at most a NOT_FOUND error, nothing internal.
		for _, id := range []string{"ins_01jzzzzzzzzzzzzzzzzzzzzzzz", "key_01jzzzzzzzzzzzzzzzzzzzzzzz", "nonsense", "ins_"} {
			res := a.graphql(t, a.AdminKey, nodeDoc, map[string]any{"id": id})
			if res.Data == nil || res.Data["node"] != nil {
				t.Errorf("node(%q): data %v, want node null", id, res.Data)
			}
			if len(res.Errors) > 0 && res.code() != "NOT_FOUND" {
				t.Errorf("node(%q): error %+v, want none or NOT_FOUND", id, res.Errors)
			}
			gqxNoLeak(t, "node("+id+")", res)
		}
		// nodes with an unknown ID among known ones: the known ones resolve,
		// the unknown one is null — for admins and for the owner alike.
		for name, key := range map[string]string{"admin": a.AdminKey, "owner": alice} {
			res := a.graphql(t, key, `query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Installation { userId } ... on APIKey { userId } } }`,
				map[string]any{"ids": []string{instID, "ins_01jzzzzzzzzzzzzzzzzzzzzzzz", keyID}})
			gqxNoLeak(t, "nodes with unknown ID", res)
			nodes, _ := res.Data["nodes"].([]any)
			if len(nodes) != 3 || nodes[1] != nil || gqxString(t, nodes, 0, "id") != instID || gqxString(t, nodes, 2, "id") != keyID {
				t.Errorf("nodes(%s) with an unknown ID: data %v errors %+v; want [installation, null, key]", name, res.Data, res.Errors)
			}
		}
	})
}

func gqxCheckViewer(t *testing.T, a *app) {
	carol := gqxUserKey(t, a, "carol", "collective")
	const doc = `{ viewer { userId plan role features keyId } }`
	v := gqxAt(t, a.mustGraphql(t, carol, doc, nil), "viewer")
	if gqxString(t, v, "userId") != "carol" || gqxString(t, v, "plan") != "COLLECTIVE" || gqxString(t, v, "role") != "USER" {
		t.Errorf("viewer of carol's key: %v", v)
	}
	var features []string
	for _, f := range gqxAt(t, v, "features").([]any) {
		features = append(features, f.(string))
	}
	if !slices.Equal(features, []string{"dashboard", "marketplace", "analytics"}) {
		t.Errorf("default features %v", features)
	}
	if got, want := gqxString(t, v, "keyId"), gqxKeyID(t, a, carol); got != want {
		t.Errorf("viewer keyId %q, want %q", got, want)
	}

	av := gqxAt(t, a.mustGraphql(t, a.AdminKey, doc, nil), "viewer")
	if gqxString(t, av, "userId") != "admin" || gqxString(t, av, "role") != "ADMIN" || gqxString(t, av, "plan") != "NETWORK" {
		t.Errorf("admin viewer: %v", av)
	}
	if gqxString(t, av, "keyId") != gqxKeyID(t, a, a.AdminKey) {
		t.Errorf("admin viewer keyId %v", av)
	}

	// A key made with explicit features reports them.
	data := a.mustGraphql(t, a.AdminKey, `mutation { createAPIKey(input: {userId: "dan", plan: LABEL, features: ["dashboard", "beta"]}) { key } }`, nil)
	dan := gqxString(t, data, "createAPIKey", "key")
	dv := gqxAt(t, a.mustGraphql(t, dan, doc, nil), "viewer")
	if gqxString(t, dv, "userId") != "dan" || gqxString(t, dv, "plan") != "LABEL" || fmt.Sprint(gqxAt(t, dv, "features")) != "[dashboard beta]" {
		t.Errorf("viewer of dan's key: %v", dv)
	}
}

func TestGraphQLFleetSummary(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		const doc = `{ fleetSummary { total active inactive home link cloud } }`
		summary := func(key string) string {
			t.Helper()
			s := gqxAt(t, a.mustGraphql(t, key, doc, nil), "fleetSummary")
			return fmt.Sprintf("total=%d active=%d inactive=%d home=%d link=%d cloud=%d",
				gqxInt(t, s, "total"), gqxInt(t, s, "active"), gqxInt(t, s, "inactive"),
				gqxInt(t, s, "home"), gqxInt(t, s, "link"), gqxInt(t, s, "cloud"))
		}
		if got := summary(a.AdminKey); got != "total=0 active=0 inactive=0 home=0 link=0 cloud=0" {
			t.Errorf("empty fleet: %s", got)
		}
		for u, m := range map[string]string{"fs-h1": "HOME", "fs-h2": "HOME", "fs-l1": "LINK", "fs-c1": "CLOUD", "fs-c2": "CLOUD", "fs-c3": "CLOUD"} {
			gqxRegister(t, a, a.AdminKey, u, m)
		}
		if got := summary(a.AdminKey); got != "total=6 active=6 inactive=0 home=2 link=1 cloud=3" {
			t.Errorf("fresh fleet: %s", got)
		}
		a.Clock.Advance(6 * time.Minute)
		gqxHeartbeat(t, a, a.AdminKey, "fs-h1")
		gqxHeartbeat(t, a, a.AdminKey, "fs-c3")
		a.settle(t)
		if got := summary(a.AdminKey); got != "total=6 active=2 inactive=4 home=2 link=1 cloud=3" {
			t.Errorf("after 6 minutes and two heartbeats: %s", got)
		}
		// Re-registering with another mode moves the count.
		gqxRegister(t, a, a.AdminKey, "fs-c1", "LINK")
		if got := summary(a.AdminKey); got != "total=6 active=3 inactive=3 home=2 link=2 cloud=2" {
			t.Errorf("after moving fs-c1 to LINK: %s", got)
		}
		// Scoped for a user key: only its own installation.
		h2 := gqxUserKey(t, a, "fs-h2", "solo")
		if got := summary(h2); got != "total=1 active=0 inactive=1 home=1 link=0 cloud=0" {
			t.Errorf("fs-h2's own summary: %s", got)
		}
		nobody := gqxUserKey(t, a, "fs-nobody", "solo")
		if got := summary(nobody); got != "total=0 active=0 inactive=0 home=0 link=0 cloud=0" {
			t.Errorf("summary of a user without an installation: %s", got)
		}
		// Deregistering removes it from the counts.
		a.mustGraphql(t, a.AdminKey, `mutation { deregisterInstallation(userId: "fs-h1") }`, nil)
		if got := summary(a.AdminKey); got != "total=5 active=2 inactive=3 home=1 link=2 cloud=2" {
			t.Errorf("after deregistering fs-h1: %s", got)
		}
	})
}

// ---------------------------------------------------------------- API keys

func gqxCheckAPIKeys(t *testing.T, a *app) {
	alice := gqxUserKey(t, a, "alice", "solo")
	bob := gqxUserKey(t, a, "bob", "solo")
	extra := gqxString(t, a.mustGraphql(t, alice, `mutation { createAPIKey(input: {userId: "alice", label: "rotation"}) { key apiKey { userId plan role label } } }`, nil),
		"createAPIKey", "key")

	const doc = `{ apiKeys(first: 100) { totalCount edges { node { id prefix userId plan role features label createdAt lastUsedAt expiresAt revokedAt } } } }`
	check := func(name, key string, wantUsers []string) {
		t.Helper()
		data := a.mustGraphql(t, key, doc, nil)
		conn := gqxAt(t, data, "apiKeys")
		got := gqxSorted(gqxUserIDs(t, conn))
		if !slices.Equal(got, wantUsers) || gqxInt(t, conn, "totalCount") != len(wantUsers) {
			t.Errorf("apiKeys for %s: users %v totalCount %d, want %v", name, got, gqxInt(t, conn, "totalCount"), wantUsers)
		}
		raw, _ := json.Marshal(data)
		for _, k := range []string{a.AdminKey, alice, bob, extra} {
			if strings.Contains(string(raw), k) || strings.Contains(string(raw), gqxSecretPart(k)) {
				t.Errorf("apiKeys for %s returns a raw key", name)
			}
		}
	}
	check("admin", a.AdminKey, []string{"admin", "alice", "alice", "bob"})
	check("alice", alice, []string{"alice", "alice"})
	check("bob", bob, []string{"bob"})
	// A user's where filter cannot widen its scope.
	data := a.mustGraphql(t, alice, `{ apiKeys(where: {userId: "bob"}) { totalCount } }`, nil)
	if n := gqxInt(t, data, "apiKeys", "totalCount"); n != 0 {
		t.Errorf("alice filtering for bob's keys sees %d", n)
	}
	data = a.mustGraphql(t, a.AdminKey, `{ apiKeys(where: {role: ADMIN}) { totalCount } }`, nil)
	if n := gqxInt(t, data, "apiKeys", "totalCount"); n != 1 {
		t.Errorf("admin keys: %d, want 1", n)
	}

	// No field, filter or ordering exposes a hash or a gateway token.
	intro := a.mustGraphql(t, a.AdminKey, `{
			key: __type(name: "APIKey") { fields { name } }
			keyWhere: __type(name: "APIKeyWhereInput") { inputFields { name } }
			keyOrder: __type(name: "APIKeyOrderField") { enumValues { name } }
			inst: __type(name: "Installation") { fields { name } }
			instWhere: __type(name: "InstallationWhereInput") { inputFields { name } }
			instOrder: __type(name: "InstallationOrderField") { enumValues { name } }
		}`, nil)
	names := func(typ, list string) []string {
		var out []string
		for _, f := range gqxAt(t, intro, typ, list).([]any) {
			out = append(out, gqxString(t, f, "name"))
		}
		return out
	}
	keyFields := names("key", "fields")
	if !slices.Contains(keyFields, "prefix") || !slices.Contains(keyFields, "userId") {
		t.Fatalf("introspection of APIKey looks wrong: %v", keyFields)
	}
	for _, list := range [][]string{keyFields, names("keyWhere", "inputFields"), names("keyOrder", "enumValues")} {
		for _, n := range list {
			if strings.Contains(strings.ToLower(n), "hash") || strings.Contains(strings.ToLower(n), "secret") {
				t.Errorf("API key schema exposes %q", n)
			}
		}
	}
	if !slices.Contains(names("inst", "fields"), "gatewayToken") {
		t.Errorf("Installation has no gatewayToken field: %v", names("inst", "fields"))
	}
	for _, list := range [][]string{names("instWhere", "inputFields"), names("instOrder", "enumValues")} {
		for _, n := range list {
			if l := strings.ToLower(n); strings.Contains(l, "gateway") || strings.Contains(l, "token") {
				t.Errorf("installation filter/order exposes %q", n)
			}
		}
	}
	res := a.graphql(t, a.AdminKey, `{ installations(where: {gatewayToken: "x"}) { totalCount } }`, nil)
	if len(res.Errors) == 0 {
		t.Errorf("filtering by gatewayToken accepted: %v", res.Data)
	}
	res = a.graphql(t, a.AdminKey, `{ apiKeys { edges { node { keyHash } } } }`, nil)
	if len(res.Errors) == 0 {
		t.Errorf("selecting keyHash accepted: %v", res.Data)
	}
}

// gqxSecretPart is the part of a raw key after its display prefix.
func gqxSecretPart(raw string) string {
	if i := strings.LastIndex(raw, "_"); i >= 0 && len(raw)-i > 16 {
		return raw[i+1:]
	}
	return raw[len(raw)/2:]
}

// ---------------------------------------------------------------- mutations

func TestGraphQLMutations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		t0 := a.Clock.Now()
		inst := gqxRegister(t, a, a.AdminKey, "m1", "")
		if inst["mode"] != "HOME" || inst["userId"] != "m1" || inst["status"] != "ACTIVE" || inst["id"] == "" {
			t.Errorf("registerInstallation: %v", inst)
		}
		if !gqxTime(t, inst, "registeredAt").Equal(t0) || !gqxTime(t, inst, "lastSeen").Equal(t0) {
			t.Errorf("registerInstallation times: %v, want %v", inst, t0)
		}

		// heartbeat returns the time it recorded, and lastSeen follows.
		a.Clock.Advance(90 * time.Second)
		if ts := gqxHeartbeat(t, a, a.AdminKey, "m1"); !ts.Equal(a.Clock.Now()) {
			t.Errorf("heartbeat timestamp %v, want %v", ts, a.Clock.Now())
		}
		a.settle(t)
		got := gqxAt(t, a.mustGraphql(t, a.AdminKey, `{ installation(userId: "m1") { id lastSeen registeredAt } }`, nil), "installation")
		if !gqxTime(t, got, "lastSeen").Equal(a.Clock.Now()) || !gqxTime(t, got, "registeredAt").Equal(t0) {
			t.Errorf("after heartbeat: %v; want lastSeen %v registeredAt %v", got, a.Clock.Now(), t0)
		}
		if gqxString(t, got, "id") != inst["id"] {
			t.Errorf("installation ID changed: %v vs %v", got, inst)
		}
		// An unknown userId is acknowledged and creates nothing.
		if ts := gqxHeartbeat(t, a, a.AdminKey, "never-registered"); !ts.Equal(a.Clock.Now()) {
			t.Errorf("heartbeat of unknown userId: %v", ts)
		}
		a.settle(t)
		if d := a.mustGraphql(t, a.AdminKey, `{ installation(userId: "never-registered") { id } }`, nil); d["installation"] != nil {
			t.Errorf("heartbeat created an installation: %v", d)
		}

		// deregister: true, gone, then false.
		d := a.mustGraphql(t, a.AdminKey, `mutation { deregisterInstallation(userId: "m1") }`, nil)
		if d["deregisterInstallation"] != true {
			t.Errorf("first deregister: %v", d)
		}
		if d := a.mustGraphql(t, a.AdminKey, `{ installation(userId: "m1") { id } installations { totalCount } }`, nil); d["installation"] != nil || gqxInt(t, d, "installations", "totalCount") != 0 {
			t.Errorf("after deregister: %v", d)
		}
		d = a.mustGraphql(t, a.AdminKey, `mutation { deregisterInstallation(userId: "m1") }`, nil)
		if d["deregisterInstallation"] != false {
			t.Errorf("second deregister: %v", d)
		}
		// A new registration after deregistering starts afresh.
		a.Clock.Advance(time.Minute)
		again := gqxRegister(t, a, a.AdminKey, "m1", "CLOUD")
		if !gqxTime(t, again, "registeredAt").Equal(a.Clock.Now()) || again["mode"] != "CLOUD" {
			t.Errorf("registration after deregistering: %v", again)
		}

		// createAPIKey returns the raw key once; it works; apiKeys never
		// shows it again.
		created := gqxAt(t, a.mustGraphql(t, a.AdminKey, `mutation {
			createAPIKey(input: {userId: "carol", plan: COLLECTIVE, label: "ci", features: ["dashboard"]}) {
				key apiKey { id prefix userId plan role features label createdAt lastUsedAt expiresAt revokedAt }
			}
		}`, nil), "createAPIKey")
		raw := gqxString(t, created, "key")
		k := gqxAt(t, created, "apiKey")
		if !strings.HasPrefix(raw, "agb_") || !strings.HasPrefix(raw, gqxString(t, k, "prefix")) || len(gqxString(t, k, "prefix")) >= len(raw) {
			t.Errorf("raw key %q and prefix %q", raw, gqxString(t, k, "prefix"))
		}
		if gqxString(t, k, "userId") != "carol" || gqxString(t, k, "plan") != "COLLECTIVE" || gqxString(t, k, "role") != "USER" ||
			gqxString(t, k, "label") != "ci" || fmt.Sprint(gqxAt(t, k, "features")) != "[dashboard]" ||
			!gqxTime(t, k, "createdAt").Equal(a.Clock.Now()) || k.(map[string]any)["revokedAt"] != nil || k.(map[string]any)["expiresAt"] != nil {
			t.Errorf("created key: %v", k)
		}
		res := a.do(t, http.MethodPost, "/api/validate-key", raw, "")
		if res.Status != 200 || res.JSON["valid"] != true || res.JSON["userId"] != "carol" || res.JSON["plan"] != "collective" ||
			fmt.Sprint(res.JSON["features"]) != "[dashboard]" {
			t.Errorf("validate-key with the new key: %d %s", res.Status, res.Raw)
		}
		// Defaults: plan SOLO, role USER, the default features.
		def := gqxAt(t, a.mustGraphql(t, a.AdminKey, `mutation { createAPIKey(input: {userId: "dora"}) { apiKey { plan role features label } } }`, nil), "createAPIKey", "apiKey")
		if gqxString(t, def, "plan") != "SOLO" || gqxString(t, def, "role") != "USER" || fmt.Sprint(gqxAt(t, def, "features")) != "[dashboard marketplace analytics]" {
			t.Errorf("createAPIKey defaults: %v", def)
		}
		listing := a.mustGraphql(t, a.AdminKey, `{ apiKeys { edges { node { id prefix userId plan role features label createdAt lastUsedAt expiresAt revokedAt } } } }`, nil)
		if js, _ := json.Marshal(listing); strings.Contains(string(js), raw) || strings.Contains(string(js), gqxSecretPart(raw)) {
			t.Errorf("apiKeys shows the raw key again")
		}

		// revokeAPIKey: revokedAt set, the key stops working; twice is fine.
		id := gqxString(t, k, "id")
		a.Clock.Advance(time.Second)
		revokedAt := a.Clock.Now()
		rv := gqxAt(t, a.mustGraphql(t, a.AdminKey, `mutation($id: ID!) { revokeAPIKey(id: $id) { id userId revokedAt } }`, map[string]any{"id": id}), "revokeAPIKey")
		if gqxString(t, rv, "id") != id || !gqxTime(t, rv, "revokedAt").Equal(revokedAt) {
			t.Errorf("revokeAPIKey: %v", rv)
		}
		if res := a.do(t, http.MethodPost, "/api/validate-key", raw, ""); res.Status != http.StatusUnauthorized || res.JSON["valid"] != false {
			t.Errorf("validate-key with the revoked key: %d %s", res.Status, res.Raw)
		}
		a.Clock.Advance(time.Second)
		rv = gqxAt(t, a.mustGraphql(t, a.AdminKey, `mutation($id: ID!) { revokeAPIKey(id: $id) { revokedAt } }`, map[string]any{"id": id}), "revokeAPIKey")
		if !gqxTime(t, rv, "revokedAt").Equal(revokedAt) {
			t.Errorf("second revocation changed revokedAt: %v", rv)
		}
		res2 := a.graphql(t, a.AdminKey, `mutation { revokeAPIKey(id: "key_01jzzzzzzzzzzzzzzzzzzzzzzz") { id } }`, nil)
		gqxExpectCode(t, res2, "NOT_FOUND", "revokeAPIKey")
		gqxNoLeak(t, "revoke unknown key", res2)
	})
}

// ---------------------------------------------------------------- errors

func TestGraphQLUnauthenticated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		gqxRegister(t, a, a.AdminKey, "existing", "HOME")
		instID := gqxString(t, a.mustGraphql(t, a.AdminKey, `{ installation(userId: "existing") { id } }`, nil), "installation", "id")
		adminKeyID := gqxKeyID(t, a, a.AdminKey)
		docs := []struct {
			field, query string
			vars         map[string]any
		}{
			{"installations", `{ installations { totalCount } }`, nil},
			{"installation", `{ installation(userId: "existing") { id } }`, nil},
			{"node", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": instID}},
			{"nodes", `query($id: ID!) { nodes(ids: [$id]) { id } }`, map[string]any{"id": instID}},
			{"viewer", `{ viewer { userId } }`, nil},
			{"fleetSummary", `{ fleetSummary { total } }`, nil},
			{"apiKeys", `{ apiKeys { totalCount } }`, nil},
			{"__schema", `{ __schema { types { name } } }`, nil},
			{"__type", `{ __type(name: "APIKey") { name } }`, nil},
			{"__typename", `{ __typename }`, nil},
			{"registerInstallation", `mutation { registerInstallation(input: {userId: "intruder"}) { id } }`, nil},
			{"heartbeat", `mutation { heartbeat(userId: "existing") { timestamp } }`, nil},
			{"deregisterInstallation", `mutation { deregisterInstallation(userId: "existing") }`, nil},
			{"createAPIKey", `mutation { createAPIKey(input: {userId: "intruder", role: ADMIN}) { key } }`, nil},
			{"revokeAPIKey", `mutation($id: ID!) { revokeAPIKey(id: $id) { id } }`, map[string]any{"id": adminKeyID}},
		}
		a.Clock.Advance(time.Minute)
		badKeys := map[string]string{
			"no key":          "",
			"unknown key":     "agb_" + randomHex(30),
			"admin key typo":  a.AdminKey[:len(a.AdminKey)-1] + gqxOtherChar(a.AdminKey[len(a.AdminKey)-1]),
			"admin key hash":  gqxSHA256Hex(a.AdminKey),
			"admin key short": a.AdminKey[:len(a.AdminKey)-1],
		}
		for kname, key := range badKeys {
			for _, d := range docs {
				res := a.graphql(t, key, d.query, d.vars)
				if len(res.Errors) == 0 || res.code() != "UNAUTHENTICATED" {
					t.Errorf("%s, %s: want UNAUTHENTICATED, got errors %+v data %v", kname, d.field, res.Errors, res.Data)
					continue
				}
				if res.Data != nil && res.Data[d.field] != nil {
					t.Errorf("%s, %s: data returned with the error: %v", kname, d.field, res.Data)
				}
				gqxNoLeak(t, kname+" "+d.field, res)
			}
		}
		// Nothing changed.
		data := a.mustGraphql(t, a.AdminKey, `{
			i: installation(userId: "intruder") { id }
			e: installation(userId: "existing") { lastSeen }
			apiKeys { totalCount edges { node { revokedAt } } }
		}`, nil)
		if data["i"] != nil || data["e"] == nil || gqxInt(t, data, "apiKeys", "totalCount") != 1 || gqxAt(t, data, "apiKeys", "edges", 0, "node", "revokedAt") != nil {
			t.Errorf("unauthenticated operations changed something: %v", data)
		}
		a.settle(t)
		if e := gqxAt(t, a.mustGraphql(t, a.AdminKey, `{ installation(userId: "existing") { lastSeen } }`, nil), "installation"); gqxTime(t, e, "lastSeen").Equal(a.Clock.Now()) {
			t.Errorf("an unauthenticated GraphQL heartbeat updated lastSeen: %v", e)
		}
	})
}

func gqxOtherChar(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

func TestGraphQLForbidden(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		alice := gqxUserKey(t, a, "alice", "solo")
		bob := gqxUserKey(t, a, "bob", "solo")
		gqxRegister(t, a, bob, "bob", "HOME")
		gqxRegister(t, a, alice, "alice", "LINK")
		bobInst := gqxString(t, a.mustGraphql(t, a.AdminKey, `{ installation(userId: "bob") { id } }`, nil), "installation", "id")
		bobKey := gqxKeyID(t, a, bob)

		cases := []struct {
			name, field, query string
			vars               map[string]any
		}{
			{"register other user", "registerInstallation", `mutation { registerInstallation(input: {userId: "bob", mode: CLOUD}) { id } }`, nil},
			{"register new other user", "registerInstallation", `mutation { registerInstallation(input: {userId: "carol"}) { id } }`, nil},
			{"read other installation", "installation", `{ installation(userId: "bob") { id } }`, nil},
			{"read unknown other installation", "installation", `{ installation(userId: "carol") { id } }`, nil},
			{"deregister other", "deregisterInstallation", `mutation { deregisterInstallation(userId: "bob") }`, nil},
			{"node other installation", "node", `query($id: ID!) { node(id: $id) { id ... on Installation { userId } } }`, map[string]any{"id": bobInst}},
			{"node other key", "node", `query($id: ID!) { node(id: $id) { id ... on APIKey { userId } } }`, map[string]any{"id": bobKey}},
			{"nodes other installation", "nodes", `query($id: ID!) { nodes(ids: [$id]) { id } }`, map[string]any{"id": bobInst}},
			{"revoke other key", "revokeAPIKey", `mutation($id: ID!) { revokeAPIKey(id: $id) { id } }`, map[string]any{"id": bobKey}},
			{"create key for other", "createAPIKey", `mutation { createAPIKey(input: {userId: "bob"}) { key } }`, nil},
			{"create key higher plan", "createAPIKey", `mutation { createAPIKey(input: {userId: "alice", plan: NETWORK}) { key } }`, nil},
			{"create admin key", "createAPIKey", `mutation { createAPIKey(input: {userId: "alice", role: ADMIN}) { key } }`, nil},
			{"create key more features", "createAPIKey", `mutation { createAPIKey(input: {userId: "alice", features: ["dashboard", "admin-panel"]}) { key } }`, nil},
		}
		for _, c := range cases {
			res := a.graphql(t, alice, c.query, c.vars)
			if res.code() != "FORBIDDEN" {
				t.Errorf("%s: want FORBIDDEN, got errors %+v data %v", c.name, res.Errors, res.Data)
				continue
			}
			if res.Data != nil && res.Data[c.field] != nil {
				t.Errorf("%s: data returned with FORBIDDEN: %v", c.name, res.Data)
			}
		}
		// Nothing happened to bob, and alice made no key.
		data := a.mustGraphql(t, a.AdminKey, `{
			bob: installation(userId: "bob") { mode }
			carol: installation(userId: "carol") { id }
			keys: apiKeys(where: {userId: "alice"}) { totalCount }
			bobKeys: apiKeys(where: {userId: "bob"}) { edges { node { revokedAt } } }
		}`, nil)
		if gqxString(t, data, "bob", "mode") != "HOME" || data["carol"] != nil || gqxInt(t, data, "keys", "totalCount") != 1 ||
			gqxAt(t, data, "bobKeys", "edges", 0, "node", "revokedAt") != nil {
			t.Errorf("forbidden operations changed data: %v", data)
		}
		if res := a.do(t, http.MethodPost, "/api/validate-key", bob, ""); res.Status != 200 {
			t.Errorf("bob's key after alice tried to revoke it: %d %s", res.Status, res.Raw)
		}
		// Within her scope alice may act: her own installation, her own key
		// with her plan and a subset of her features.
		own := a.graphql(t, alice, `mutation { createAPIKey(input: {userId: "alice", plan: SOLO, features: ["dashboard"]}) { key apiKey { userId plan role } } }`, nil)
		if len(own.Errors) > 0 || gqxString(t, own.Data, "createAPIKey", "apiKey", "userId") != "alice" {
			t.Errorf("alice creating her own key: %+v %v", own.Errors, own.Data)
		}
		if d := a.mustGraphql(t, alice, `{ installations { totalCount edges { node { userId } } } }`, nil); gqxInt(t, d, "installations", "totalCount") != 1 ||
			!slices.Equal(gqxUserIDs(t, gqxAt(t, d, "installations")), []string{"alice"}) {
			t.Errorf("alice's installations: %v", d)
		}
		if d := a.mustGraphql(t, alice, `{ installations(where: {userId: "bob"}) { totalCount } }`, nil); gqxInt(t, d, "installations", "totalCount") != 0 {
			t.Errorf("alice filtering for bob: %v", d)
		}
	})
}

func TestGraphQLBadUserInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		long := strings.Repeat("u", 257)
		cases := []struct {
			name, field, query string
			vars               map[string]any
		}{
			{"register empty userId", "registerInstallation", gqxRegisterDoc, map[string]any{"input": map[string]any{"userId": ""}}},
			{"register long userId", "registerInstallation", gqxRegisterDoc, map[string]any{"input": map[string]any{"userId": long}}},
			{"register control char", "registerInstallation", gqxRegisterDoc, map[string]any{"input": map[string]any{"userId": "a\nb"}}},
			{"register NUL", "registerInstallation", gqxRegisterDoc, map[string]any{"input": map[string]any{"userId": "a\x00b"}}},
			{"installation empty", "installation", `{ installation(userId: "") { id } }`, nil},
			{"installation long", "installation", `query($u: String!) { installation(userId: $u) { id } }`, map[string]any{"u": long}},
			{"deregister empty", "deregisterInstallation", `mutation { deregisterInstallation(userId: "") }`, nil},
			{"heartbeat long", "heartbeat", `mutation($u: String!) { heartbeat(userId: $u) { timestamp } }`, map[string]any{"u": long}},
			{"installations first 5000", "installations", `{ installations(first: 5000) { totalCount } }`, nil},
			{"installations last 5000", "installations", `{ installations(last: 5000) { totalCount } }`, nil},
			{"installations first -1", "installations", `{ installations(first: -1) { totalCount } }`, nil},
			{"apiKeys first 5000", "apiKeys", `{ apiKeys(first: 5000) { totalCount } }`, nil},
			{"createAPIKey empty userId", "createAPIKey", `mutation { createAPIKey(input: {userId: ""}) { key } }`, nil},
			{"createAPIKey long userId", "createAPIKey", `mutation($u: String!) { createAPIKey(input: {userId: $u}) { key } }`, map[string]any{"u": long}},
			{"createAPIKey expired", "createAPIKey", `mutation($at: Time) { createAPIKey(input: {userId: "x", expiresAt: $at}) { key } }`,
				map[string]any{"at": a.Clock.Now().Add(-time.Hour).Format(time.RFC3339)}},
			{"createAPIKey empty feature", "createAPIKey", `mutation { createAPIKey(input: {userId: "x", features: [""]}) { key } }`, nil},
		}
		for _, c := range cases {
			res := a.graphql(t, a.AdminKey, c.query, c.vars)
			if res.code() != "BAD_USER_INPUT" {
				t.Errorf("%s: want BAD_USER_INPUT, got errors %+v data %v", c.name, res.Errors, res.Data)
				continue
			}
			if res.Data != nil && res.Data[c.field] != nil {
				t.Errorf("%s: data returned with the error: %v", c.name, res.Data)
			}
			if res.Errors[0].Message == "" {
				t.Errorf("%s: error without a message", c.name)
			}
			gqxNoLeak(t, c.name, res)
		}
		// 256 characters (not bytes) is still fine.
		max := strings.Repeat("é", 256)
		if got := gqxRegister(t, a, a.AdminKey, max, ""); got["userId"] != max {
			t.Errorf("256-character userId: %v", got)
		}
		// Nothing invalid was stored.
		d := a.mustGraphql(t, a.AdminKey, `{ installations { totalCount } apiKeys { totalCount } }`, nil)
		if gqxInt(t, d, "installations", "totalCount") != 1 || gqxInt(t, d, "apiKeys", "totalCount") != 1 {
			t.Errorf("invalid input stored something: %v", d)
		}
	})
}

func TestGraphQLGatewayTokenVisibility(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		alice := gqxUserKey(t, a, "alice", "solo")
		bob := gqxUserKey(t, a, "bob", "solo")
		const secret = "gw-alice-secret-7f3a"
		const regDoc = `mutation($t: String) { registerInstallation(input: {userId: "alice", gatewayToken: $t}) { gatewayToken } }`
		reg := a.mustGraphql(t, alice, regDoc, map[string]any{"t": secret})
		if reg["registerInstallation"].(map[string]any)["gatewayToken"] != secret {
			t.Errorf("owner registering sees %v", reg)
		}
		gqxRegister(t, a, bob, "bob", "")

		read := func(key string) any {
			t.Helper()
			d := a.mustGraphql(t, key, `{ installation(userId: "alice") { gatewayToken } }`, nil)
			return gqxAt(t, d, "installation", "gatewayToken")
		}
		if got := read(alice); got != secret {
			t.Errorf("owner reads gatewayToken %v", got)
		}
		if got := read(a.AdminKey); got != secret {
			t.Errorf("admin reads gatewayToken %v", got)
		}
		// Through the connection and node too.
		conn := a.mustGraphql(t, a.AdminKey, `{ installations(where: {userId: "alice"}) { edges { node { id gatewayToken } } } }`, nil)
		if gqxAt(t, conn, "installations", "edges", 0, "node", "gatewayToken") != secret {
			t.Errorf("admin's connection: %v", conn)
		}
		id := gqxString(t, conn, "installations", "edges", 0, "node", "id")
		if d := a.mustGraphql(t, alice, `query($id: ID!) { node(id: $id) { ... on Installation { gatewayToken } } }`, map[string]any{"id": id}); gqxAt(t, d, "node", "gatewayToken") != secret {
			t.Errorf("owner's node: %v", d)
		}
		// Another user never gets it: not by userId, not by node, not by
		// listing, not by filtering.
		for _, q := range []struct {
			query string
			vars  map[string]any
		}{
			{`{ installation(userId: "alice") { gatewayToken } }`, nil},
			{`query($id: ID!) { node(id: $id) { ... on Installation { gatewayToken } } }`, map[string]any{"id": id}},
			{`query($id: ID!) { nodes(ids: [$id]) { ... on Installation { gatewayToken } } }`, map[string]any{"id": id}},
			{`{ installations(first: 100) { edges { node { userId gatewayToken } } } }`, nil},
			{`{ installations(where: {userId: "alice"}) { edges { node { gatewayToken } } } }`, nil},
		} {
			res := a.graphql(t, bob, q.query, q.vars)
			if raw, _ := json.Marshal(res); strings.Contains(string(raw), secret) {
				t.Errorf("bob sees alice's gateway token with %s", q.query)
			}
		}
		// A registration without a token, or with an empty one, keeps it; a
		// new one replaces it.
		a.mustGraphql(t, alice, regDoc, map[string]any{"t": ""})
		a.mustGraphql(t, alice, regDoc, nil)
		if got := read(a.AdminKey); got != secret {
			t.Errorf("after registrations without a token: %v", got)
		}
		a.mustGraphql(t, alice, regDoc, map[string]any{"t": "gw-rotated"})
		if got := read(alice); got != "gw-rotated" {
			t.Errorf("after a new token: %v", got)
		}
		// No token at all is null.
		if d := a.mustGraphql(t, bob, `{ installation(userId: "bob") { gatewayToken } }`, nil); gqxAt(t, d, "installation", "gatewayToken") != nil {
			t.Errorf("installation without a token: %v", d)
		}
		// Never in REST, never in logs.
		if res := a.do(t, http.MethodGet, "/api/installations", a.AdminKey, ""); res.Status != 200 || strings.Contains(res.Raw, "gw-") || strings.Contains(res.Raw, "gatewayToken") {
			t.Errorf("REST listing: %d %s", res.Status, res.Raw)
		}
		if logs := a.Logs.String(); strings.Contains(logs, secret) || strings.Contains(logs, "gw-rotated") {
			t.Errorf("a gateway token was logged")
		}
	})
}

// ---------------------------------------------------------------- limits and transport

func gqxCheckComplexity(t *testing.T, a *app) {
	for i := range 3 {
		gqxRegister(t, a, a.AdminKey, fmt.Sprintf("cx%d", i), "")
	}
	const fields = `id userId mode status registeredAt lastSeen gatewayToken`
	// Per item about 3 × (2 + 7) fields: 1000 items cost ~27000 > 10000.
	heavy := `{ installations(first: 1000) { totalCount edges { cursor
			node { ` + fields + ` }
			again: node { ` + fields + ` }
			more: node { ` + fields + ` } } } }`
	res := a.graphql(t, a.AdminKey, heavy, nil)
	if len(res.Errors) == 0 {
		t.Fatalf("query over the complexity limit accepted")
	}
	if res.Data != nil && res.Data["installations"] != nil {
		t.Errorf("query over the limit returned data: %v", res.Data)
	}
	if c := res.code(); c != "COMPLEXITY_LIMIT_EXCEEDED" {
		t.Errorf("over the limit: code %q (%+v)", c, res.Errors)
	}
	// The same selection repeated through aliases at a smaller page size
	// is also priced as a whole.
	var b strings.Builder
	b.WriteString("{")
	for i := range 12 {
		fmt.Fprintf(&b, " a%d: installations(first: 100) { edges { node { %s } } }", i, fields)
	}
	b.WriteString(" }")
	if res := a.graphql(t, a.AdminKey, b.String(), nil); len(res.Errors) == 0 {
		t.Errorf("12 aliased pages of 100 (cost > 10000) accepted")
	}
	// Normal queries pass.
	normal := `{ installations(first: 50) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { ` + fields + ` } } } }`
	d := a.mustGraphql(t, a.AdminKey, normal, nil)
	if gqxInt(t, d, "installations", "totalCount") != 3 || len(gqxUserIDs(t, gqxAt(t, d, "installations"))) != 3 {
		t.Errorf("normal query: %v", d)
	}
	if d := a.mustGraphql(t, a.AdminKey, `{ installations(first: 1000) { totalCount } }`, nil); gqxInt(t, d, "installations", "totalCount") != 3 {
		t.Errorf("a cheap page of 1000: %v", d)
	}
}

func gqxCheckGet(t *testing.T, a *app) {
	gqxRegister(t, a, a.AdminKey, "getter", "CLOUD")
	get := func(key string, params url.Values) gqlResult {
		t.Helper()
		res := a.do(t, http.MethodGet, "/graphql?"+params.Encode(), key, "")
		var out gqlResult
		if err := json.Unmarshal([]byte(res.Raw), &out); err != nil {
			t.Fatalf("GET /graphql: %d %s", res.Status, res.Raw)
		}
		return out
	}
	res := get(a.AdminKey, url.Values{"query": {`{ viewer { userId } installation(userId: "getter") { mode } }`}})
	if len(res.Errors) > 0 || gqxString(t, res.Data, "viewer", "userId") != "admin" || gqxString(t, res.Data, "installation", "mode") != "CLOUD" {
		t.Errorf("GET query: %+v %v", res.Errors, res.Data)
	}
	res = get(a.AdminKey, url.Values{
		"query":     {`query($u: String!) { installation(userId: $u) { userId } }`},
		"variables": {`{"u":"getter"}`},
	})
	if len(res.Errors) > 0 || gqxString(t, res.Data, "installation", "userId") != "getter" {
		t.Errorf("GET query with variables: %+v %v", res.Errors, res.Data)
	}
	if res := get("", url.Values{"query": {`{ viewer { userId } }`}}); res.code() != "UNAUTHENTICATED" {
		t.Errorf("GET without a key: %+v %v", res.Errors, res.Data)
	}
	// Mutations are not run over GET.
	res = get(a.AdminKey, url.Values{"query": {`mutation { deregisterInstallation(userId: "getter") }`}})
	if len(res.Errors) == 0 {
		t.Errorf("mutation over GET accepted: %v", res.Data)
	}
	if d := a.mustGraphql(t, a.AdminKey, `{ installation(userId: "getter") { id } }`, nil); d["installation"] == nil {
		t.Errorf("a mutation over GET deleted the installation")
	}
}

func TestGraphQLErrorsHideInternals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		for i := range 3 {
			gqxRegister(t, a, a.AdminKey, fmt.Sprintf("leak%d", i), "")
			a.Clock.Advance(time.Second)
		}
		seenCursor := gqxString(t, gqxInstallations(t, a, a.AdminKey, map[string]any{"first": 1, "order": map[string]any{"field": "LAST_SEEN", "direction": "DESC"}}),
			"pageInfo", "endCursor")
		cases := []struct {
			name, query string
			vars        map[string]any
		}{
			{"NUL in filter", gqxConnDoc, map[string]any{"where": map[string]any{"userId": "a\x00b"}}},
			{"NUL in prefix filter", gqxConnDoc, map[string]any{"where": map[string]any{"userIdHasPrefix": "\x00"}}},
			{"SQL in filter", gqxConnDoc, map[string]any{"where": map[string]any{"userIdHasPrefix": "%' OR 1=1 --"}}},
			{"invalid UTF-8 in filter", gqxConnDoc, map[string]any{"where": map[string]any{"userIdIn": []string{"\xff\xfe"}}}},
			{"bad cursor", gqxConnDoc, map[string]any{"first": 1, "after": "not-a-cursor"}},
			{"garbage cursor", gqxConnDoc, map[string]any{"first": 1, "after": "gqRpZKV4eHh4eKV2YWx1ZcA="}},
			{"cursor of another order", gqxConnDoc, map[string]any{"first": 1, "after": seenCursor, "order": map[string]any{"field": "REGISTERED_AT", "direction": "ASC"}}},
			{"cursor from seen order without order", gqxConnDoc, map[string]any{"last": 1, "before": seenCursor}},
			{"node SQL", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": "ins_' OR 1=1 --"}},
			{"node NUL", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": "key_\x00"}},
			{"nodes mixed", `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": []string{"ins_x", "key_y", "zzz", "ins_\x00"}}},
			{"revoke NUL", `mutation($id: ID!) { revokeAPIKey(id: $id) { id } }`, map[string]any{"id": "key_\x00"}},
			{"register NUL token", gqxRegisterDoc, map[string]any{"input": map[string]any{"userId": "leak0", "gatewayToken": "a\x00"}}},
			{"huge token", gqxRegisterDoc, map[string]any{"input": map[string]any{"userId": "leak0", "gatewayToken": strings.Repeat("t", 100000)}}},
			{"unknown field", `{ installations { edges { node { password } } } }`, nil},
			{"syntax error", `{ installations { `, nil},
			{"wrong variable type", gqxConnDoc, map[string]any{"first": "ten"}},
			{"apiKeys NUL filter", `query($p: String) { apiKeys(where: {prefix: $p}) { totalCount } }`, map[string]any{"p": "\x00"}},
		}
		for _, c := range cases {
			res := a.graphql(t, a.AdminKey, c.query, c.vars)
			gqxNoLeak(t, c.name, res)
		}
		// The server still works afterwards.
		if d := a.mustGraphql(t, a.AdminKey, `{ installations { totalCount } }`, nil); gqxInt(t, d, "installations", "totalCount") != 3 {
			t.Errorf("after bad queries: %v", d)
		}
	})
}

// viewer, and the apiKeys connection with what the schema hides.
func TestGraphQLViewerAndAPIKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		t.Run("APIKeys", func(t *testing.T) { gqxCheckAPIKeys(t, a) })
		t.Run("Viewer", func(t *testing.T) { gqxCheckViewer(t, a) })
	})
}

// The complexity limit, and queries over GET.
func TestGraphQLComplexityLimitAndGet(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		t.Run("ComplexityLimit", func(t *testing.T) { gqxCheckComplexity(t, a) })
		t.Run("Get", func(t *testing.T) { gqxCheckGet(t, a) })
	})
}
