package main

// Authorization tests (CONTRACT section 3): keys, schemes, revocation,
// expiry, roles, and secrecy of raw keys.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentbot/registry/ent/apikey"
)

func gqxSHA256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// authDo sends a request with a raw Authorization header value.
func authDo(t *testing.T, a *app, method, path, authorization, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, a.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return a.send(t, req)
}

// authGraphql posts a GraphQL document with a raw Authorization header.
func authGraphql(t *testing.T, a *app, authorization, query string) gqlResult {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	res := authDo(t, a, http.MethodPost, "/graphql", authorization, string(body))
	var out gqlResult
	if err := json.Unmarshal([]byte(res.Raw), &out); err != nil {
		t.Fatalf("graphql: %d %s", res.Status, res.Raw)
	}
	return out
}

// authWorks fails unless key is accepted on REST and GraphQL as userID.
func authWorks(t *testing.T, a *app, key, userID string) {
	t.Helper()
	if res := a.do(t, http.MethodPost, "/api/validate-key", key, ""); res.Status != 200 || res.JSON["valid"] != true || res.JSON["userId"] != userID {
		t.Fatalf("validate-key for %s: %d %s", userID, res.Status, res.Raw)
	}
	if res := a.do(t, http.MethodGet, "/api/installations", key, ""); res.Status != 200 {
		t.Fatalf("installations for %s: %d %s", userID, res.Status, res.Raw)
	}
	res := a.graphql(t, key, `{ viewer { userId } }`, nil)
	if len(res.Errors) > 0 || gqxString(t, res.Data, "viewer", "userId") != userID {
		t.Fatalf("viewer for %s: %+v %v", userID, res.Errors, res.Data)
	}
}

// authRefused fails unless key is refused by every surface: REST
// validate-key, listing and registration, and GraphQL queries and
// mutations. A revocation may take up to about a second to reach every
// replica, so the first check is retried for a little longer than that.
func authRefused(t *testing.T, a *app, key, userID string) {
	t.Helper()
	deadline := time.Now().Add(1500 * time.Millisecond)
	for {
		res := a.do(t, http.MethodPost, "/api/validate-key", key, "")
		if res.Status == http.StatusUnauthorized {
			if res.JSON["valid"] != false || res.JSON["error"] == nil || res.JSON["userId"] != nil {
				t.Fatalf("validate-key refusal body: %s", res.Raw)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("validate-key still accepts the key after 1.5s: %d %s", res.Status, res.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res := a.do(t, http.MethodGet, "/api/installations", key, ""); res.Status != http.StatusUnauthorized || res.JSON["success"] != false {
		t.Errorf("installations with a refused key: %d %s", res.Status, res.Raw)
	}
	body := fmt.Sprintf(`{"userId":%q}`, userID)
	if res := a.do(t, http.MethodPost, "/api/register-home", key, body); res.Status != http.StatusUnauthorized {
		t.Errorf("register-home with a refused key: %d %s", res.Status, res.Raw)
	}
	if res := a.do(t, http.MethodPost, "/api/register-link", key, body); res.Status != http.StatusUnauthorized {
		t.Errorf("register-link with a refused key: %d %s", res.Status, res.Raw)
	}
	for _, q := range []string{
		`{ viewer { userId } }`,
		`{ installations { totalCount } }`,
		`{ apiKeys { totalCount } }`,
		`{ fleetSummary { total } }`,
		fmt.Sprintf(`mutation { registerInstallation(input: {userId: %q}) { id } }`, userID),
		fmt.Sprintf(`mutation { createAPIKey(input: {userId: %q}) { key } }`, userID),
	} {
		if res := a.graphql(t, key, q, nil); res.code() != "UNAUTHENTICATED" {
			t.Errorf("%s with a refused key: %+v %v", q, res.Errors, res.Data)
		}
	}
}

// authCLI runs the command line against the app's database.
func authCLI(t *testing.T, a *app, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, noEnv, &out, &errOut)
	return out.String(), errOut.String(), err
}

func authCheckSHA256(t *testing.T, a *app) {
	raw := gqxUserKey(t, a, "alice", "solo")
	authWorks(t, a, raw, "alice")
	prefix := gqxPrefixOf(t, a, raw)

	// The database holds the SHA-256 hex of the raw key, and nothing
	// that contains the raw key or its secret part.
	row, err := a.DB.Client.APIKey.Query().Where(apikey.Prefix(prefix)).Only(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if row.KeyHash != gqxSHA256Hex(raw) {
		t.Errorf("stored hash %q, want SHA-256 hex %q", row.KeyHash, gqxSHA256Hex(raw))
	}
	authNoRawInTable(t, a.DB.DB, raw)

	// Anything but the exact key is refused.
	secretStart := len(prefix) + 1
	variants := map[string]string{
		"last char changed":   raw[:len(raw)-1] + gqxOtherChar(raw[len(raw)-1]),
		"middle char changed": raw[:secretStart+10] + gqxOtherChar(raw[secretStart+10]) + raw[secretStart+11:],
		"prefix char changed": raw[:5] + gqxOtherChar(raw[5]) + raw[6:],
		"one char short":      raw[:len(raw)-1],
		"one char more":       raw + "a",
		"upper case":          strings.ToUpper(raw),
		"prefix only":         prefix,
		"hash as key":         gqxSHA256Hex(raw),
		"hash of hash":        gqxSHA256Hex(gqxSHA256Hex(raw)),
	}
	for name, k := range variants {
		if k == raw {
			t.Fatalf("%s: variant equals the key", name)
		}
		res := a.do(t, http.MethodPost, "/api/validate-key", k, "")
		if res.Status != http.StatusUnauthorized || res.JSON["valid"] != false {
			t.Errorf("%s: validate-key %d %s", name, res.Status, res.Raw)
		}
		if g := a.graphql(t, k, `{ viewer { userId } }`, nil); g.code() != "UNAUTHENTICATED" {
			t.Errorf("%s: GraphQL %+v %v", name, g.Errors, g.Data)
		}
	}
	// And the key still works afterwards.
	authWorks(t, a, raw, "alice")
}

// authNoRawInTable fails when any column of api_keys contains raw or its
// secret part.
func authNoRawInTable(t *testing.T, db *sql.DB, raw string) {
	t.Helper()
	rows, err := db.Query("SELECT * FROM api_keys")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	n := 0
	for rows.Next() {
		n++
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			s := fmt.Sprintf("%s", v)
			if b, ok := v.([]byte); ok {
				s = string(b)
			}
			if strings.Contains(s, raw) || strings.Contains(s, gqxSecretPart(raw)) {
				t.Errorf("column %s stores the raw key", cols[i])
			}
		}
	}
	if n == 0 {
		t.Fatal("api_keys is empty")
	}
}

func authCheckScheme(t *testing.T, a *app) {
	raw := gqxUserKey(t, a, "alice", "solo")
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		h := scheme + " " + raw
		if res := authDo(t, a, http.MethodPost, "/api/validate-key", h, ""); res.Status != 200 || res.JSON["userId"] != "alice" {
			t.Errorf("REST with %q: %d %s", scheme, res.Status, res.Raw)
		}
		if res := authDo(t, a, http.MethodGet, "/api/installations", h, ""); res.Status != 200 {
			t.Errorf("REST listing with %q: %d %s", scheme, res.Status, res.Raw)
		}
		if res := authGraphql(t, a, h, `{ viewer { userId } }`); len(res.Errors) > 0 || gqxString(t, res.Data, "viewer", "userId") != "alice" {
			t.Errorf("GraphQL with %q: %+v", scheme, res.Errors)
		}
	}
	for _, h := range []string{"Basic " + raw, "Token " + raw, raw, "Bearer", "Bearer ", "Bearer" + raw, "Bearer x" + raw} {
		if res := authDo(t, a, http.MethodPost, "/api/validate-key", h, ""); res.Status != http.StatusUnauthorized || res.JSON["valid"] != false {
			t.Errorf("REST with header %q: %d %s", strings.ReplaceAll(h, raw, "<key>"), res.Status, res.Raw)
		}
		if res := authGraphql(t, a, h, `{ viewer { userId } }`); res.code() != "UNAUTHENTICATED" {
			t.Errorf("GraphQL with header %q: %+v", strings.ReplaceAll(h, raw, "<key>"), res.Errors)
		}
	}
}

func TestAuthRevokedKeyRefusedEverywhere(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		keep := gqxUserKey(t, a, "alice", "solo")
		revokeWays := []struct {
			name   string
			revoke func(t *testing.T, raw string)
		}{
			{"GraphQL by admin", func(t *testing.T, raw string) {
				a.mustGraphql(t, a.AdminKey, `mutation($id: ID!) { revokeAPIKey(id: $id) { id } }`, map[string]any{"id": gqxKeyID(t, a, raw)})
			}},
			{"GraphQL by its own user", func(t *testing.T, raw string) {
				id := gqxString(t, a.mustGraphql(t, raw, `{ viewer { keyId } }`, nil), "viewer", "keyId")
				d := a.mustGraphql(t, raw, `mutation($id: ID!) { revokeAPIKey(id: $id) { id revokedAt } }`, map[string]any{"id": id})
				if gqxAt(t, d, "revokeAPIKey", "revokedAt") == nil {
					t.Errorf("revokeAPIKey returned no revokedAt: %v", d)
				}
			}},
			{"CLI by ID", func(t *testing.T, raw string) {
				id := gqxKeyID(t, a, raw)
				if _, errOut, err := authCLI(t, a, "keys", "revoke", id, "--database-url", a.dbURL); err != nil {
					t.Fatalf("keys revoke %s: %v\n%s", id, err, errOut)
				}
			}},
			{"CLI by prefix", func(t *testing.T, raw string) {
				p := gqxPrefixOf(t, a, raw)
				if _, errOut, err := authCLI(t, a, "keys", "revoke", p, "--database-url", a.dbURL); err != nil {
					t.Fatalf("keys revoke %s: %v\n%s", p, err, errOut)
				}
			}},
			{"CLI with flags first", func(t *testing.T, raw string) {
				p := gqxPrefixOf(t, a, raw)
				if _, errOut, err := authCLI(t, a, "keys", "revoke", "--database-url", a.dbURL, p); err != nil {
					t.Fatalf("keys revoke %s: %v\n%s", p, err, errOut)
				}
			}},
		}
		for _, w := range revokeWays {
			t.Run(strings.ReplaceAll(w.name, " ", "_"), func(t *testing.T) {
				// In parallel: revocations through another process take up
				// to about a second to be seen, so the waits overlap.
				t.Parallel()
				raw := gqxUserKey(t, a, "alice", "solo")
				authWorks(t, a, raw, "alice")
				w.revoke(t, raw)
				authRefused(t, a, raw, "alice")
				// Only that key: the user's other key and the admin's work.
				authWorks(t, a, keep, "alice")
				authWorks(t, a, a.AdminKey, "admin")
				// The listing shows it revoked.
				id := gqxKeyID(t, a, raw)
				d := a.mustGraphql(t, a.AdminKey, `query($id: ID!) { node(id: $id) { ... on APIKey { revokedAt } } }`, map[string]any{"id": id})
				if gqxAt(t, d, "node", "revokedAt") == nil {
					t.Errorf("revoked key without revokedAt: %v", d)
				}
			})
		}

		// Revoked on another replica over the same database.
		raw := gqxUserKey(t, a, "alice", "solo")
		authWorks(t, a, raw, "alice")
		replica := newApp(t, a.dbURL, nil)
		authWorks(t, replica, raw, "alice")
		replica.mustGraphql(t, replica.AdminKey, `mutation($id: ID!) { revokeAPIKey(id: $id) { id } }`, map[string]any{"id": gqxKeyID(t, replica, raw)})
		authRefused(t, a, raw, "alice")
		authRefused(t, replica, raw, "alice")

		// A prefix nobody has is an error, and changes nothing.
		if _, _, err := authCLI(t, a, "keys", "revoke", "agb_zzzzzzzz", "--database-url", a.dbURL); err == nil {
			t.Errorf("revoking an unknown prefix succeeded")
		}
		authWorks(t, a, keep, "alice")
	})
}

func authCheckExpiry(t *testing.T, a *app) {
	expires := a.Clock.Now().Add(time.Hour)
	d := a.mustGraphql(t, a.AdminKey, `mutation($at: Time) { createAPIKey(input: {userId: "eve", expiresAt: $at}) { key apiKey { expiresAt } } }`,
		map[string]any{"at": expires.Format(time.RFC3339)})
	raw := gqxString(t, d, "createAPIKey", "key")
	if !gqxTime(t, d, "createAPIKey", "apiKey", "expiresAt").Equal(expires) {
		t.Errorf("expiresAt %v, want %v", d, expires)
	}
	authWorks(t, a, raw, "eve")
	a.Clock.Advance(59 * time.Minute)
	authWorks(t, a, raw, "eve")
	a.Clock.Advance(time.Minute + time.Second)
	authRefused(t, a, raw, "eve")
	authWorks(t, a, a.AdminKey, "admin")

	// A user key may make itself a short-lived key, which expires too.
	user := gqxUserKey(t, a, "fay", "solo")
	d = a.mustGraphql(t, user, `mutation($at: Time) { createAPIKey(input: {userId: "fay", expiresAt: $at}) { key } }`,
		map[string]any{"at": a.Clock.Now().Add(10 * time.Minute).Format(time.RFC3339)})
	short := gqxString(t, d, "createAPIKey", "key")
	authWorks(t, a, short, "fay")
	a.Clock.Advance(11 * time.Minute)
	authRefused(t, a, short, "fay")
	authWorks(t, a, user, "fay")
}

func authCheckUserScope(t *testing.T, a *app) {
	alice := gqxUserKey(t, a, "alice", "solo")
	bob := gqxUserKey(t, a, "bob", "solo")
	a.register(t, alice, "alice", "home")
	a.register(t, bob, "bob", "link")

	// REST: own registration fine, another user's refused with 403.
	for _, path := range []string{"/api/register-home", "/api/register-link"} {
		res := a.do(t, http.MethodPost, path, alice, `{"userId":"bob","mode":"cloud"}`)
		if res.Status != http.StatusForbidden || res.JSON["success"] != false {
			t.Errorf("alice %s for bob: %d %s", path, res.Status, res.Raw)
		}
	}
	res := a.do(t, http.MethodGet, "/api/installations", alice, "")
	if res.Status != 200 || res.JSON["count"] != float64(1) || strings.Contains(res.Raw, `"bob"`) || !strings.Contains(res.Raw, `"userId":"alice"`) {
		t.Errorf("alice's REST listing: %d %s", res.Status, res.Raw)
	}
	// GraphQL: only her own, everywhere.
	d := a.mustGraphql(t, alice, `{
			installations { totalCount edges { node { userId } } }
			fleetSummary { total }
			apiKeys { totalCount edges { node { userId } } }
			viewer { userId role }
		}`, nil)
	if ids := gqxUserIDs(t, gqxAt(t, d, "installations")); !slices.Equal(ids, []string{"alice"}) || gqxInt(t, d, "installations", "totalCount") != 1 {
		t.Errorf("alice's installations: %v", d["installations"])
	}
	if gqxInt(t, d, "fleetSummary", "total") != 1 {
		t.Errorf("alice's fleetSummary: %v", d["fleetSummary"])
	}
	if ids := gqxUserIDs(t, gqxAt(t, d, "apiKeys")); !slices.Equal(ids, []string{"alice"}) {
		t.Errorf("alice's apiKeys: %v", d["apiKeys"])
	}
	if gqxString(t, d, "viewer", "role") != "USER" {
		t.Errorf("alice's viewer: %v", d["viewer"])
	}
	if g := a.graphql(t, alice, `{ installation(userId: "bob") { id } }`, nil); g.code() != "FORBIDDEN" {
		t.Errorf("alice reading bob: %+v", g.Errors)
	}
	if g := a.graphql(t, alice, `mutation { deregisterInstallation(userId: "bob") }`, nil); g.code() != "FORBIDDEN" {
		t.Errorf("alice deregistering bob: %+v", g.Errors)
	}
	// Bob's installation is untouched.
	d = a.mustGraphql(t, a.AdminKey, `{ installation(userId: "bob") { mode } }`, nil)
	if gqxString(t, d, "installation", "mode") != "LINK" {
		t.Errorf("bob's installation after alice's attempts: %v", d)
	}
	// Alice acting for herself works.
	if g := a.graphql(t, alice, `mutation { deregisterInstallation(userId: "alice") }`, nil); len(g.Errors) > 0 || g.Data["deregisterInstallation"] != true {
		t.Errorf("alice deregistering herself: %+v %v", g.Errors, g.Data)
	}
}

func authCheckAdmin(t *testing.T, a *app) {
	alice := gqxUserKey(t, a, "alice", "solo")
	a.register(t, alice, "alice", "home")
	// An admin registers, reads, lists and removes any userId.
	a.register(t, a.AdminKey, "bob", "cloud")
	if res := a.do(t, http.MethodPost, "/api/register-link", a.AdminKey, `{"userId":"carol"}`); res.Status != 200 {
		t.Errorf("admin register-link for carol: %d %s", res.Status, res.Raw)
	}
	res := a.do(t, http.MethodGet, "/api/installations", a.AdminKey, "")
	if res.Status != 200 || res.JSON["count"] != float64(3) {
		t.Errorf("admin REST listing: %d %s", res.Status, res.Raw)
	}
	d := a.mustGraphql(t, a.AdminKey, `{ installations { totalCount } fleetSummary { total home link cloud } a: installation(userId: "alice") { mode } }`, nil)
	if gqxInt(t, d, "installations", "totalCount") != 3 || gqxInt(t, d, "fleetSummary", "total") != 3 || gqxString(t, d, "a", "mode") != "HOME" {
		t.Errorf("admin GraphQL view: %v", d)
	}
	// Manages everybody's keys: creates an admin key, revokes alice's.
	d = a.mustGraphql(t, a.AdminKey, `mutation { createAPIKey(input: {userId: "ops", role: ADMIN, plan: NETWORK}) { key apiKey { role } } }`, nil)
	ops := gqxString(t, d, "createAPIKey", "key")
	if v := a.mustGraphql(t, ops, `{ viewer { role } installations { totalCount } }`, nil); gqxString(t, v, "viewer", "role") != "ADMIN" || gqxInt(t, v, "installations", "totalCount") != 3 {
		t.Errorf("new admin key: %v", v)
	}
	a.mustGraphql(t, ops, `mutation($id: ID!) { revokeAPIKey(id: $id) { id } }`, map[string]any{"id": gqxKeyID(t, a, alice)})
	authRefused(t, a, alice, "alice")
	if g := a.mustGraphql(t, a.AdminKey, `mutation { deregisterInstallation(userId: "alice") }`, nil); g["deregisterInstallation"] != true {
		t.Errorf("admin deregistering alice: %v", g)
	}
}

func authCheckLastUsed(t *testing.T, a *app) {
	d := a.mustGraphql(t, a.AdminKey, `mutation { u: createAPIKey(input: {userId: "gus"}) { key apiKey { id lastUsedAt } } n: createAPIKey(input: {userId: "hal"}) { apiKey { id } } }`, nil)
	raw := gqxString(t, d, "u", "key")
	id := gqxString(t, d, "u", "apiKey", "id")
	unused := gqxString(t, d, "n", "apiKey", "id")
	if gqxAt(t, d, "u", "apiKey", "lastUsedAt") != nil {
		t.Errorf("new key already used: %v", d)
	}
	lastUsed := func(id string) any {
		t.Helper()
		a.settle(t)
		d := a.mustGraphql(t, a.AdminKey, `query($id: ID!) { node(id: $id) { ... on APIKey { lastUsedAt } } }`, map[string]any{"id": id})
		return gqxAt(t, d, "node", "lastUsedAt")
	}
	if v := lastUsed(id); v != nil {
		t.Errorf("lastUsedAt before use: %v", v)
	}
	a.Clock.Advance(time.Minute)
	first := a.Clock.Now()
	if res := a.do(t, http.MethodPost, "/api/validate-key", raw, ""); res.Status != 200 {
		t.Fatalf("validate-key: %d %s", res.Status, res.Raw)
	}
	v := lastUsed(id)
	if v == nil {
		t.Fatalf("lastUsedAt not set after use")
	}
	if got, _ := time.Parse(time.RFC3339Nano, v.(string)); !got.Equal(first) {
		t.Errorf("lastUsedAt %v, want %v", v, first)
	}
	// Used again much later, through GraphQL: it moves on.
	a.Clock.Advance(2 * time.Hour)
	a.mustGraphql(t, raw, `{ viewer { userId } }`, nil)
	if got, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(lastUsed(id))); !got.Equal(a.Clock.Now()) {
		t.Errorf("lastUsedAt after second use %v, want %v", lastUsed(id), a.Clock.Now())
	}
	// Owner sees it too; an unused key stays null; a refused attempt
	// with a wrong key sets nothing.
	if own := a.mustGraphql(t, raw, `{ apiKeys { edges { node { lastUsedAt } } } }`, nil); gqxAt(t, own, "apiKeys", "edges", 0, "node", "lastUsedAt") == nil {
		t.Errorf("owner's view of lastUsedAt: %v", own)
	}
	a.do(t, http.MethodPost, "/api/validate-key", "agb_wrong_key", "")
	if v := lastUsed(unused); v != nil {
		t.Errorf("unused key has lastUsedAt %v", v)
	}
}

func authCheckFormat(t *testing.T, a *app) {
	var keys []string
	keys = append(keys, a.AdminKey, a.createKey(t, "ivy", "user", "solo"), gqxUserKey(t, a, "ivy", "solo"))
	for range 2 {
		d := a.mustGraphql(t, a.AdminKey, `mutation { createAPIKey(input: {userId: "ivy"}) { key apiKey { prefix } } }`, nil)
		raw, prefix := gqxString(t, d, "createAPIKey", "key"), gqxString(t, d, "createAPIKey", "apiKey", "prefix")
		if !strings.HasPrefix(raw, prefix) || len(prefix) < len("agb_")+4 || len(raw)-len(prefix) < 32 {
			t.Errorf("prefix %q of key %d chars", prefix, len(raw))
		}
		keys = append(keys, raw)
	}
	seen := map[string]bool{}
	secrets := map[string]bool{}
	prefixes := map[string]bool{}
	for _, k := range keys {
		if !strings.HasPrefix(k, "agb_") {
			t.Errorf("key does not start with agb_: %.6s…", k)
		}
		if len(k) < 40 {
			t.Errorf("key too short: %d characters", len(k))
		}
		if strings.ContainsAny(k, " \t\n\"'\\") {
			t.Errorf("key has characters unfit for a header or shell")
		}
		if seen[k] || secrets[gqxSecretPart(k)] {
			t.Errorf("two keys share their secret")
		}
		seen[k], secrets[gqxSecretPart(k)] = true, true
		p := gqxPrefixOf(t, a, k)
		if prefixes[p] {
			t.Errorf("two keys share the prefix %q", p)
		}
		prefixes[p] = true
	}
	// Randomness: the secret parts of five keys have many distinct
	// characters and no long run of one.
	all := strings.Join(slices.Collect(func(yield func(string) bool) {
		for s := range secrets {
			if !yield(s) {
				return
			}
		}
	}), "")
	distinct := map[rune]bool{}
	for _, c := range all {
		distinct[c] = true
	}
	if len(distinct) < 16 {
		t.Errorf("secrets use only %d distinct characters", len(distinct))
	}
}

func authCheckSecrecy(t *testing.T, a *app) {
	out, errOut, err := authCLI(t, a, "keys", "create", "--database-url", a.dbURL, "--user", "jan", "--role", "user", "--plan", "solo", "--label", "laptop")
	if err != nil {
		t.Fatalf("keys create: %v %s", err, errOut)
	}
	cliKey := strings.TrimSpace(out)
	if out != cliKey+"\n" || strings.Count(out, "\n") != 1 {
		t.Errorf("keys create stdout is not exactly the key and a newline: %q", out)
	}
	if strings.Contains(errOut, gqxSecretPart(cliKey)) {
		t.Errorf("keys create repeats the key on stderr")
	}
	d := a.mustGraphql(t, a.AdminKey, `mutation { createAPIKey(input: {userId: "jan", label: "ci"}) { key } }`, nil)
	gqlKey := gqxString(t, d, "createAPIKey", "key")
	d = a.mustGraphql(t, cliKey, `mutation { createAPIKey(input: {userId: "jan"}) { key } }`, nil)
	userMade := gqxString(t, d, "createAPIKey", "key")
	keys := []string{a.AdminKey, cliKey, gqlKey, userMade}

	// Use them everywhere, fail with near misses, revoke one.
	for _, k := range keys[1:] {
		authWorks(t, a, k, "jan")
		a.register(t, k, "jan", "home")
		a.do(t, http.MethodPost, "/api/validate-key", k+"x", "")
		a.graphql(t, k[:len(k)-1], `{ viewer { userId } }`, nil)
	}
	a.mustGraphql(t, a.AdminKey, `mutation($id: ID!) { revokeAPIKey(id: $id) { id } }`, map[string]any{"id": gqxKeyID(t, a, userMade)})
	a.do(t, http.MethodPost, "/api/validate-key", userMade, "")
	if out, _, err := authCLI(t, a, "keys", "list", "--database-url", a.dbURL); err != nil {
		t.Errorf("keys list: %v", err)
	} else {
		for _, k := range keys {
			if strings.Contains(out, gqxSecretPart(k)) {
				t.Errorf("keys list prints a raw key")
			}
		}
	}

	full := `{ apiKeys(first: 100) { totalCount edges { cursor node { id prefix userId plan role features label createdAt lastUsedAt expiresAt revokedAt } } } }`
	adminView, _ := json.Marshal(a.mustGraphql(t, a.AdminKey, full, nil))
	userView, _ := json.Marshal(a.mustGraphql(t, cliKey, full, nil))
	logs := a.Logs.String()
	if logs == "" {
		t.Log("the server logged nothing")
	}
	for i, k := range keys {
		for where, text := range map[string]string{"admin apiKeys": string(adminView), "user apiKeys": string(userView), "logs": logs} {
			if strings.Contains(text, k) || strings.Contains(text, gqxSecretPart(k)) {
				t.Errorf("raw key %d appears in %s", i, where)
			}
		}
	}
	for _, k := range keys {
		authNoRawInTable(t, a.DB.DB, k)
	}
}

// Keys are recognised by the SHA-256 of the exact raw key, with any case
// of the Bearer scheme. (Sections share one server per backend.)
func TestAuthKeyCheck(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		t.Run("SHA256", func(t *testing.T) { authCheckSHA256(t, a) })
		t.Run("SchemeCaseInsensitive", func(t *testing.T) { authCheckScheme(t, a) })
	})
}

// A user key acts for its own userId only; an admin key for everybody.
func TestAuthRoles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		t.Run("UserScope", func(t *testing.T) { authCheckUserScope(t, a) })
		t.Run("Admin", func(t *testing.T) { authCheckAdmin(t, a) })
	})
}

// Expiry with the injected clock, and lastUsedAt bookkeeping.
func TestAuthKeyLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		t.Run("Expired", func(t *testing.T) { authCheckExpiry(t, a) })
		t.Run("LastUsedAt", func(t *testing.T) { authCheckLastUsed(t, a) })
	})
}

// New keys' format and randomness, and the raw key's secrecy.
func TestAuthNewKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		t.Run("Format", func(t *testing.T) { authCheckFormat(t, a) })
		t.Run("RawKeyNeverExposed", func(t *testing.T) { authCheckSecrecy(t, a) })
	})
}
