package main

// The REST compatibility layer, row by row of CONTRACT.md section 4, over
// real HTTP on every backend.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentbot/registry/auth"
)

// rxDashboard is the dashboardUrl the harness configures (the default).
const rxDashboard = "https://agentbot.raveculture.xyz/dashboard"

// rxBody marshals v as compact JSON without HTML escaping (as the server
// writes it), for request bodies and expected answers alike.
func rxBody(t *testing.T, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// rxRequest sends a request with exactly the given headers (nothing added).
func rxRequest(t *testing.T, a *app, method, path string, header map[string]string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, a.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return a.send(t, req)
}

// rxSendBig sends a request like rxRequest, but without the harness's
// OpenAPI validation of the exchange: for bodies of megabytes or of
// thousands of nesting levels, which the validator takes seconds to parse
// (the answer's shape is asserted by the caller).
func rxSendBig(t *testing.T, a *app, method, path string, header map[string]string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, a.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{Status: res.StatusCode, Header: res.Header, Raw: string(raw)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.JSON); err != nil {
			t.Errorf("%s %s: body is not JSON: %v\n%s", method, path, err, raw)
		}
	}
	return r
}

// rxBigPost posts body as JSON with an optional key through rxSendBig.
func rxBigPost(t *testing.T, a *app, path, key, body string) response {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	if key != "" {
		h["Authorization"] = "Bearer " + key
	}
	return rxSendBig(t, a, http.MethodPost, path, h, strings.NewReader(body))
}

// rxLeakWords are fragments that would show internals in an error message.
var rxLeakWords = []string{"sql", "ent:", "pgx", "pq:", "postgres", "constraint", "panic", "goroutine", "runtime", ".go:", "SELECT", "INSERT", "UPDATE "}

// rxCheckJSON asserts the answer is a JSON object, compact (no spaces between
// tokens: install scripts grep it), with Content-Type application/json.
func rxCheckJSON(t *testing.T, what string, res response) {
	t.Helper()
	mt, _, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json (status %d, body %q)", what, res.Header.Get("Content-Type"), res.Status, res.Raw)
		return
	}
	raw := strings.TrimSuffix(res.Raw, "\n")
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(raw)); err != nil {
		t.Errorf("%s: body is not JSON: %v: %q", what, err, res.Raw)
		return
	}
	if compact.String() != raw {
		t.Errorf("%s: body is not compact JSON:\n got %q\nwant %q", what, raw, compact.String())
	}
	if res.JSON == nil {
		t.Errorf("%s: body is not a JSON object: %q", what, res.Raw)
	}
}

// rxExpectError asserts a documented error answer: status, and a body of
// exactly {okField:false,"error":"…"} with a non-empty message (equal to
// msg when msg is given) that shows no internals.
func rxExpectError(t *testing.T, what string, res response, status int, okField, msg string) {
	t.Helper()
	if res.Status != status {
		t.Errorf("%s: status %d, want %d; body %q", what, res.Status, status, res.Raw)
		return
	}
	rxCheckJSON(t, what, res)
	if res.JSON == nil {
		return
	}
	keys := slices.Sorted(maps.Keys(res.JSON))
	if want := slices.Sorted(slices.Values([]string{okField, "error"})); !slices.Equal(keys, want) {
		t.Errorf("%s: body has fields %v, want %v: %s", what, keys, want, res.Raw)
	}
	if v, ok := res.JSON[okField].(bool); !ok || v {
		t.Errorf("%s: %q is %v, want false: %s", what, okField, res.JSON[okField], res.Raw)
	}
	e, _ := res.JSON["error"].(string)
	if e == "" {
		t.Errorf("%s: error message is empty or not a string: %s", what, res.Raw)
	}
	if msg != "" && e != msg {
		t.Errorf("%s: error %q, want %q", what, e, msg)
	}
	for _, w := range rxLeakWords {
		if strings.Contains(strings.ToLower(e), strings.ToLower(w)) {
			t.Errorf("%s: error message shows internals (%q): %q", what, w, e)
		}
	}
}

// rxExpectExact asserts a 200 JSON answer whose body is exactly want (plus
// an optional trailing newline).
func rxExpectExact(t *testing.T, what string, res response, want string) {
	t.Helper()
	if res.Status != http.StatusOK {
		t.Errorf("%s: status %d, want 200; body %q", what, res.Status, res.Raw)
		return
	}
	rxCheckJSON(t, what, res)
	if got := strings.TrimSuffix(res.Raw, "\n"); got != want {
		t.Errorf("%s: body\n got %s\nwant %s", what, got, want)
	}
}

// rxInst is one entry of GET /api/installations.
type rxInst struct {
	UserID, Mode, RegisteredAt, LastSeen, Status string
}

var rxTimestamp = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$`)

// rxList reads GET /api/installations with key and checks its shape: exactly
// success, count and installations; count equals the length; every entry has
// exactly the five documented string fields with RFC 3339 UTC timestamps.
func rxList(t *testing.T, a *app, key string) ([]rxInst, response) {
	t.Helper()
	res := a.do(t, http.MethodGet, "/api/installations", key, "")
	if res.Status != http.StatusOK {
		t.Fatalf("GET /api/installations: %d %s", res.Status, res.Raw)
	}
	rxCheckJSON(t, "GET /api/installations", res)
	var body struct {
		Success       *bool             `json:"success"`
		Count         *int              `json:"count"`
		Installations []json.RawMessage `json:"installations"`
	}
	if err := json.Unmarshal([]byte(res.Raw), &body); err != nil {
		t.Fatalf("installations body: %v: %s", err, res.Raw)
	}
	if keys := slices.Sorted(maps.Keys(res.JSON)); !slices.Equal(keys, []string{"count", "installations", "success"}) {
		t.Errorf("installations body has fields %v, want count, installations, success", keys)
	}
	if body.Success == nil || !*body.Success {
		t.Errorf("installations: success is not true: %s", res.Raw)
	}
	if body.Installations == nil {
		t.Errorf("installations: the list is missing or null, want an array: %s", res.Raw)
	}
	if body.Count == nil || *body.Count != len(body.Installations) {
		t.Errorf("installations: count %v, but %d entries", body.Count, len(body.Installations))
	}
	var list []rxInst
	for _, rawEntry := range body.Installations {
		var m map[string]any
		if err := json.Unmarshal(rawEntry, &m); err != nil {
			t.Fatalf("installation entry is not an object: %s", rawEntry)
		}
		if keys := slices.Sorted(maps.Keys(m)); !slices.Equal(keys, []string{"lastSeen", "mode", "registeredAt", "status", "userId"}) {
			t.Errorf("installation entry has fields %v, want exactly userId, mode, registeredAt, lastSeen, status: %s", keys, rawEntry)
		}
		str := func(k string) string {
			s, ok := m[k].(string)
			if !ok {
				t.Errorf("installation field %s is %T, want string: %s", k, m[k], rawEntry)
			}
			return s
		}
		e := rxInst{UserID: str("userId"), Mode: str("mode"), RegisteredAt: str("registeredAt"), LastSeen: str("lastSeen"), Status: str("status")}
		for _, ts := range []string{e.RegisteredAt, e.LastSeen} {
			if !rxTimestamp.MatchString(ts) {
				t.Errorf("timestamp %q is not RFC 3339 UTC ending in Z", ts)
			}
		}
		list = append(list, e)
	}
	return list, res
}

// rxFind returns the entry of userID, or nil.
func rxFind(list []rxInst, userID string) *rxInst {
	for i := range list {
		if list[i].UserID == userID {
			return &list[i]
		}
	}
	return nil
}

// rxMustFind is rxFind for entries that must be there.
func rxMustFind(t *testing.T, list []rxInst, userID string) rxInst {
	t.Helper()
	e := rxFind(list, userID)
	if e == nil {
		t.Fatalf("installation %q is not listed; list: %+v", userID, list)
	}
	return *e
}

// rxWithPrefix returns the entries whose userId starts with prefix, in order.
func rxWithPrefix(list []rxInst, prefix string) []rxInst {
	var out []rxInst
	for _, e := range list {
		if strings.HasPrefix(e.UserID, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// rxSameTime asserts that the timestamp s denotes want.
func rxSameTime(t *testing.T, what, s string, want time.Time) {
	t.Helper()
	got, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Errorf("%s: %q is not RFC 3339: %v", what, s, err)
		return
	}
	if !got.Equal(want) {
		t.Errorf("%s = %s, want %s", what, s, want.UTC().Format(time.RFC3339))
	}
}

// rxToken returns the stored gateway token of userID as an admin sees it
// through GraphQL (nil when there is none), and whether the installation
// exists.
func rxToken(t *testing.T, a *app, userID string) (*string, bool) {
	t.Helper()
	data := a.mustGraphql(t, a.AdminKey, `query($u: String!) { installation(userId: $u) { userId gatewayToken } }`, map[string]any{"u": userID})
	inst, _ := data["installation"].(map[string]any)
	if inst == nil {
		return nil, false
	}
	tok, ok := inst["gatewayToken"].(string)
	if !ok {
		return nil, true
	}
	return &tok, true
}

// rxKeyID is the ID of the key raw, through the viewer query.
func rxKeyID(t *testing.T, a *app, raw string) string {
	t.Helper()
	data := a.mustGraphql(t, raw, `{ viewer { keyId } }`, nil)
	id, _ := data["viewer"].(map[string]any)["keyId"].(string)
	if id == "" {
		t.Fatalf("viewer has no keyId: %v", data)
	}
	return id
}

// rxCreateKey creates a key through the GraphQL mutation with an admin key
// and returns the raw key.
func rxCreateKey(t *testing.T, a *app, input map[string]any) string {
	t.Helper()
	data := a.mustGraphql(t, a.AdminKey, `mutation($in: CreateAPIKeyInput!) { createAPIKey(input: $in) { key } }`, map[string]any{"in": input})
	raw, _ := data["createAPIKey"].(map[string]any)["key"].(string)
	if raw == "" {
		t.Fatalf("createAPIKey returned no key: %v", data)
	}
	return raw
}

// rxUserKey creates a user key through GraphQL: quicker than the command
// line, which opens (and migrates) the database on every run.
func rxUserKey(t *testing.T, a *app, userID, plan string) string {
	t.Helper()
	return rxCreateKey(t, a, map[string]any{"userId": userID, "plan": strings.ToUpper(plan)})
}

// rxRevoke revokes the key raw with the GraphQL mutation, as an admin.
func rxRevoke(t *testing.T, a *app, raw string) {
	t.Helper()
	a.mustGraphql(t, a.AdminKey, `mutation($id: ID!) { revokeAPIKey(id: $id) { id revokedAt } }`, map[string]any{"id": rxKeyID(t, a, raw)})
}

// rxValidate calls validate-key with an Authorization header value ("" for
// none).
func rxValidate(t *testing.T, a *app, authorization string) response {
	t.Helper()
	h := map[string]string{}
	if authorization != "" {
		h["Authorization"] = authorization
	}
	return rxRequest(t, a, http.MethodPost, "/api/validate-key", h, nil)
}

// rxValidBody is the documented success body of validate-key for the given
// key attributes, built from what the test created the key with.
func rxValidBody(t *testing.T, userID, plan string, features []string) string {
	t.Helper()
	return `{"valid":true,"userId":` + rxBody(t, userID) + `,"plan":` + rxBody(t, plan) + `,"features":` + rxBody(t, features) + `}`
}

var rxDefaultFeatures = []string{"dashboard", "marketplace", "analytics"}

func rxValidKeys(t *testing.T, a *app) {
	solo := a.createKey(t, "user-a1b2c3d4", "user", "solo")
	label := rxUserKey(t, a, "label-user", "label")
	// Characters JSON encoders like to escape: the scripts grep for them as they are.
	odd := rxUserKey(t, a, "a&b<c>d", "collective")
	custom := rxCreateKey(t, a, map[string]any{"userId": "custom-user", "plan": "COLLECTIVE", "features": []string{"fleet", "beta"}})
	featureless := rxCreateKey(t, a, map[string]any{"userId": "no-features", "plan": "NETWORK", "features": []string{}})

	cases := []struct {
		name, auth, want string
	}{
		{"user key, default features", "Bearer " + solo, rxValidBody(t, "user-a1b2c3d4", "solo", rxDefaultFeatures)},
		{"admin key", "Bearer " + a.AdminKey, rxValidBody(t, "admin", "network", rxDefaultFeatures)},
		{"label plan", "Bearer " + label, rxValidBody(t, "label-user", "label", rxDefaultFeatures)},
		{"unescaped characters", "Bearer " + odd, `{"valid":true,"userId":"a&b<c>d","plan":"collective","features":["dashboard","marketplace","analytics"]}`},
		{"custom plan and features", "Bearer " + custom, rxValidBody(t, "custom-user", "collective", []string{"fleet", "beta"})},
		{"no features: an empty list, not null", "Bearer " + featureless, `{"valid":true,"userId":"no-features","plan":"network","features":[]}`},
		{"scheme lower case", "bearer " + solo, rxValidBody(t, "user-a1b2c3d4", "solo", rxDefaultFeatures)},
		{"scheme upper case", "BEARER " + solo, rxValidBody(t, "user-a1b2c3d4", "solo", rxDefaultFeatures)},
		{"scheme mixed case", "bEaReR " + solo, rxValidBody(t, "user-a1b2c3d4", "solo", rxDefaultFeatures)},
	}
	for _, c := range cases {
		rxExpectExact(t, c.name, rxValidate(t, a, c.auth), c.want)
	}

	// The scripts grep the compact body for these exact fragments.
	res := rxValidate(t, a, "Bearer "+solo)
	for _, frag := range []string{`"valid":true`, `"userId":"user-a1b2c3d4"`, `"plan":"solo"`} {
		if !strings.Contains(res.Raw, frag) {
			t.Errorf("validate-key body %q lacks %s", res.Raw, frag)
		}
	}
	// The key is valid with and without a request body of any type.
	for _, ct := range []string{"application/json", "application/x-www-form-urlencoded", "text/plain"} {
		r := rxRequest(t, a, http.MethodPost, "/api/validate-key",
			map[string]string{"Authorization": "Bearer " + solo, "Content-Type": ct}, strings.NewReader(`{}`))
		rxExpectExact(t, "with body as "+ct, r, rxValidBody(t, "user-a1b2c3d4", "solo", rxDefaultFeatures))
	}
}

func rxRefusedKeys(t *testing.T, a *app) {
	key := rxUserKey(t, a, "refused-user", "solo")
	cases := []struct{ name, auth string }{
		{"no header", ""},
		{"scheme only", "Bearer"},
		{"scheme and blank", "Bearer    "},
		{"other scheme", "Basic " + key},
		{"token scheme", "Token " + key},
		{"key without scheme", key},
		{"garbage", "Bearer not-a-key"},
		{"key with a character more", "Bearer " + key + "x"},
		{"truncated key", "Bearer " + key[:len(key)-1]},
		{"key upper-cased", "Bearer " + strings.ToUpper(key)},
		{"key and more words", "Bearer " + key + " " + key},
		{"display prefix only", "Bearer " + key[:strings.LastIndex(key, "_")]},
		{"sha-256 of the key", "Bearer " + auth.Hash(key)},
	}
	for _, c := range cases {
		rxExpectError(t, c.name, rxValidate(t, a, c.auth), http.StatusUnauthorized, "valid", "")
	}
	// The same refusals on an authenticated endpoint use "success".
	for _, c := range cases[:3] {
		res := rxRequest(t, a, http.MethodGet, "/api/installations", map[string]string{"Authorization": c.auth}, nil)
		rxExpectError(t, "installations, "+c.name, res, http.StatusUnauthorized, "success", "")
	}
	// The key itself still works: the refusals were not about the key.
	rxExpectExact(t, "the real key", rxValidate(t, a, "Bearer "+key), rxValidBody(t, "refused-user", "solo", rxDefaultFeatures))
}

// rxRevokedAndExpired: a key revoked through GraphQL or the
// command line, or past its expiry on the server's clock, gets 401
// {"valid":false,"error":…} everywhere.
func rxRevokedAndExpired(t *testing.T, a *app) {
	refusedEverywhere := func(what, key string) {
		t.Helper()
		rxExpectError(t, what+": validate-key", rxValidate(t, a, "Bearer "+key), http.StatusUnauthorized, "valid", "")
		res := a.do(t, http.MethodPost, "/api/register-home", key, `{"userId":"ghost"}`)
		rxExpectError(t, what+": register-home", res, http.StatusUnauthorized, "success", "")
		res = a.do(t, http.MethodPost, "/api/register-link", key, `{"userId":"ghost"}`)
		rxExpectError(t, what+": register-link", res, http.StatusUnauthorized, "success", "")
		res = a.do(t, http.MethodGet, "/api/installations", key, "")
		rxExpectError(t, what+": installations", res, http.StatusUnauthorized, "success", "")
	}

	// Revoked with the GraphQL mutation; the key was valid (and cached) before.
	gqlKey := rxUserKey(t, a, "ghost", "solo")
	rxExpectExact(t, "before GraphQL revocation", rxValidate(t, a, "Bearer "+gqlKey), rxValidBody(t, "ghost", "solo", rxDefaultFeatures))
	rxRevoke(t, a, gqlKey)
	refusedEverywhere("revoked by GraphQL", gqlKey)

	// Revoked with the command line, another process on the same database.
	cliKey := a.createKey(t, "ghost", "user", "solo")
	rxExpectExact(t, "before CLI revocation", rxValidate(t, a, "Bearer "+cliKey), rxValidBody(t, "ghost", "solo", rxDefaultFeatures))
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"keys", "revoke", "--database-url", a.dbURL, rxKeyID(t, a, cliKey)}, noEnv, &stdout, &stderr); err != nil {
		t.Fatalf("keys revoke: %v\n%s", err, stderr.String())
	}
	a.settle(t)
	refusedEverywhere("revoked by the CLI", cliKey)

	// Expiring: created through GraphQL with an expiry on the server's
	// clock (the CLI's --expires counts from the real time instead).
	expiresAt := a.Clock.Now().Add(time.Hour)
	expiring := rxCreateKey(t, a, map[string]any{"userId": "ghost", "expiresAt": expiresAt.Format(time.RFC3339)})
	rxExpectExact(t, "before expiry", rxValidate(t, a, "Bearer "+expiring), rxValidBody(t, "ghost", "solo", rxDefaultFeatures))
	a.Clock.Advance(59 * time.Minute)
	rxExpectExact(t, "a minute before expiry", rxValidate(t, a, "Bearer "+expiring), rxValidBody(t, "ghost", "solo", rxDefaultFeatures))
	a.Clock.Advance(2 * time.Minute)
	refusedEverywhere("expired", expiring)

	// Nothing was registered by any refused request.
	if list, _ := rxList(t, a, a.AdminKey); rxFind(list, "ghost") != nil {
		t.Errorf("a refused key registered an installation: %+v", list)
	}
	// Other keys are unaffected.
	rxExpectExact(t, "admin key", rxValidate(t, a, "Bearer "+a.AdminKey), rxValidBody(t, "admin", "network", rxDefaultFeatures))
}

func rxRegisterHome(t *testing.T, a *app) {
	const homeOK = `{"success":true,"message":"Home installation registered","dashboardUrl":"` + rxDashboard + `"}`
	res := a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, `{"userId":"user-a1b2c3d4","gatewayToken":"gw-1"}`)
	rxExpectExact(t, "register-home", res, homeOK)
	if !strings.Contains(res.Raw, `"success":true`) {
		t.Errorf("body %q lacks \"success\":true", res.Raw)
	}

	// mode: default home; home, link and cloud accepted as given.
	modes := []struct{ userID, body, want string }{
		{"mode-absent", `{"userId":"mode-absent"}`, "home"},
		{"mode-null", `{"userId":"mode-null","mode":null}`, "home"},
		{"mode-home", `{"userId":"mode-home","mode":"home"}`, "home"},
		{"mode-link", `{"userId":"mode-link","mode":"link"}`, "link"},
		{"mode-cloud", `{"userId":"mode-cloud","mode":"cloud"}`, "cloud"},
	}
	for _, m := range modes {
		rxExpectExact(t, m.userID, a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, m.body), homeOK)
	}
	list, _ := rxList(t, a, a.AdminKey)
	for _, m := range modes {
		if got := rxMustFind(t, list, m.userID).Mode; got != m.want {
			t.Errorf("%s: mode %q, want %q", m.userID, got, m.want)
		}
	}
	if got := rxMustFind(t, list, "user-a1b2c3d4"); got.Mode != "home" || got.Status != "active" {
		t.Errorf("registered installation: %+v, want mode home, status active", got)
	}
	before := len(list)

	// Invalid modes: 400, nothing stored.
	for _, mode := range []string{"HOME", "Home", " home", "home ", "remote", "docker", "link,home", "0"} {
		res := a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, rxBody(t, map[string]string{"userId": "bad-mode", "mode": mode}))
		rxExpectError(t, "mode "+mode, res, http.StatusBadRequest, "success", "")
	}

	// userId missing, empty or null: 400 "userId is required", on both endpoints.
	for _, path := range []string{"/api/register-home", "/api/register-link"} {
		for _, body := range []string{``, `{}`, `{"userId":""}`, `{"userId":null}`, `{"mode":"home","gatewayToken":"x"}`} {
			res := a.do(t, http.MethodPost, path, a.AdminKey, body)
			rxExpectError(t, path+" "+body, res, http.StatusBadRequest, "success", "userId is required")
		}
	}

	// userId length counts characters, not bytes: 256 is fine, 257 is not.
	lengths := []struct {
		name   string
		userID string
		ok     bool
	}{
		{"256 ASCII", strings.Repeat("a", 256), true},
		{"257 ASCII", strings.Repeat("b", 257), false},
		{"256 two-byte", strings.Repeat("é", 256), true},
		{"257 two-byte", strings.Repeat("ü", 257), false},
		{"256 four-byte", strings.Repeat("🦀", 256), true},
		{"257 four-byte", strings.Repeat("🐙", 257), false},
		{"255 ASCII and one emoji", strings.Repeat("c", 255) + "🚀", true},
		{"256 ASCII and one emoji", strings.Repeat("d", 256) + "🚀", false},
		{"1 character", "z", true},
	}
	for _, l := range lengths {
		res := a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, rxBody(t, map[string]string{"userId": l.userID}))
		if l.ok {
			rxExpectExact(t, l.name, res, homeOK)
		} else {
			rxExpectError(t, l.name, res, http.StatusBadRequest, "success", "")
		}
	}
	list, _ = rxList(t, a, a.AdminKey)
	for _, l := range lengths {
		if found := rxFind(list, l.userID) != nil; found != l.ok {
			t.Errorf("%s: listed %v, want %v", l.name, found, l.ok)
		}
	}
	if want := before + 5; len(list) != want {
		t.Errorf("after the refused registrations there are %d installations, want %d", len(list), want)
	}
	if rxFind(list, "bad-mode") != nil || rxFind(list, "") != nil {
		t.Errorf("a refused registration was stored: %+v", list)
	}
}

func rxRegisterAuthorization(t *testing.T, a *app) {
	alice := rxUserKey(t, a, "alice", "solo")
	for _, path := range []string{"/api/register-home", "/api/register-link"} {
		// No key, a bad key: 401.
		rxExpectError(t, path+" without key", a.do(t, http.MethodPost, path, "", `{"userId":"alice"}`), http.StatusUnauthorized, "success", "")
		rxExpectError(t, path+" bad key", a.do(t, http.MethodPost, path, "agb_nope_nope", `{"userId":"alice"}`), http.StatusUnauthorized, "success", "")
		// A user key for another userId: 403.
		rxExpectError(t, path+" other user", a.do(t, http.MethodPost, path, alice, `{"userId":"bob"}`), http.StatusForbidden, "success", "")
		rxExpectError(t, path+" other user, different case", a.do(t, http.MethodPost, path, alice, `{"userId":"Alice"}`), http.StatusForbidden, "success", "")
		// Identity headers of the web proxy do not count: the key decides.
		res := rxRequest(t, a, http.MethodPost, path, map[string]string{
			"Authorization": "Bearer " + alice, "Content-Type": "application/json",
			"x-user-id": "bob", "x-user-role": "admin", "x-user-email": "bob@example.com",
		}, strings.NewReader(`{"userId":"bob"}`))
		rxExpectError(t, path+" spoofed identity headers", res, http.StatusForbidden, "success", "")
	}
	list, _ := rxList(t, a, a.AdminKey)
	for _, u := range []string{"alice", "Alice", "bob"} {
		if rxFind(list, u) != nil {
			t.Fatalf("refused registrations stored %q: %+v", u, list)
		}
	}

	// A user key registers its own userId; an admin key any userId.
	rxExpectExact(t, "own userId", a.do(t, http.MethodPost, "/api/register-home", alice, `{"userId":"alice"}`),
		`{"success":true,"message":"Home installation registered","dashboardUrl":"`+rxDashboard+`"}`)
	rxExpectExact(t, "admin for bob", a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, `{"userId":"bob","mode":"cloud"}`),
		`{"success":true,"message":"Home installation registered","dashboardUrl":"`+rxDashboard+`"}`)
	rxExpectExact(t, "admin links carol", a.do(t, http.MethodPost, "/api/register-link", a.AdminKey, `{"userId":"carol"}`),
		`{"success":true,"message":"OpenClaw instance linked","dashboardUrl":"`+rxDashboard+`"}`)
	list, _ = rxList(t, a, a.AdminKey)
	if rxMustFind(t, list, "alice").Mode != "home" || rxMustFind(t, list, "bob").Mode != "cloud" || rxMustFind(t, list, "carol").Mode != "link" {
		t.Errorf("installations: %+v, want alice home, bob cloud, carol link", list)
	}
	// Alice still cannot overwrite bob's installation.
	rxExpectError(t, "overwrite bob", a.do(t, http.MethodPost, "/api/register-link", alice, `{"userId":"bob"}`), http.StatusForbidden, "success", "")
	list, _ = rxList(t, a, a.AdminKey)
	if got := rxMustFind(t, list, "bob").Mode; got != "cloud" {
		t.Errorf("bob's mode is %q after a refused overwrite, want cloud", got)
	}
}

// rxInstallationGQL reads an installation through GraphQL as an admin.
func rxInstallationGQL(t *testing.T, a *app, userID string) map[string]any {
	t.Helper()
	data := a.mustGraphql(t, a.AdminKey, `query($u: String!) { installation(userId: $u) { id userId mode registeredAt lastSeen gatewayToken } }`, map[string]any{"u": userID})
	inst, _ := data["installation"].(map[string]any)
	if inst == nil {
		t.Fatalf("installation %q not found through GraphQL", userID)
	}
	return inst
}

func rxReRegistration(t *testing.T, a *app) {
	t0 := a.Clock.Now()
	owner := rxUserKey(t, a, "rereg", "solo")
	post := func(path, key, body string) {
		t.Helper()
		if res := a.do(t, http.MethodPost, path, key, body); res.Status != http.StatusOK {
			t.Fatalf("%s %s: %d %s", path, body, res.Status, res.Raw)
		}
	}
	check := func(step, mode, token string, lastSeen time.Time) {
		t.Helper()
		list, _ := rxList(t, a, a.AdminKey)
		if n := len(rxWithPrefix(list, "rereg")); n != 1 {
			t.Fatalf("%s: %d installations of rereg, want 1: %+v", step, n, list)
		}
		e := rxMustFind(t, list, "rereg")
		if e.Mode != mode {
			t.Errorf("%s: mode %q, want %q", step, e.Mode, mode)
		}
		rxSameTime(t, step+": registeredAt", e.RegisteredAt, t0)
		rxSameTime(t, step+": lastSeen", e.LastSeen, lastSeen)
		got, _ := rxToken(t, a, "rereg")
		if got == nil || *got != token {
			t.Errorf("%s: gatewayToken %v, want %q", step, got, token)
		}
	}

	post("/api/register-home", owner, `{"userId":"rereg","mode":"home","gatewayToken":"tok-1"}`)
	id := rxInstallationGQL(t, a, "rereg")["id"]
	check("first registration", "home", "tok-1", t0)

	a.Clock.Advance(time.Minute)
	post("/api/register-link", owner, `{"userId":"rereg"}`)
	check("re-registered by link without token", "link", "tok-1", t0.Add(time.Minute))

	a.Clock.Advance(time.Minute)
	post("/api/register-home", a.AdminKey, `{"userId":"rereg","mode":"cloud","gatewayToken":""}`)
	check("re-registered with an empty token", "cloud", "tok-1", t0.Add(2*time.Minute))

	a.Clock.Advance(time.Minute)
	post("/api/register-home", owner, `{"userId":"rereg","gatewayToken":null}`)
	check("re-registered with a null token", "home", "tok-1", t0.Add(3*time.Minute))

	a.Clock.Advance(time.Minute)
	post("/api/register-home", owner, `{"userId":"rereg","mode":"link","gatewayToken":"tok-2"}`)
	check("re-registered with a new token", "link", "tok-2", t0.Add(4*time.Minute))

	if got := rxInstallationGQL(t, a, "rereg")["id"]; got != id {
		t.Errorf("re-registration changed the installation's id from %v to %v", id, got)
	}
	// The token never shows in REST.
	_, res := rxList(t, a, a.AdminKey)
	for _, s := range []string{"gatewayToken", "tok-1", "tok-2"} {
		if strings.Contains(res.Raw, s) {
			t.Errorf("installations body shows %q: %s", s, res.Raw)
		}
	}
}

func rxRegisterLink(t *testing.T, a *app) {
	const linkOK = `{"success":true,"message":"OpenClaw instance linked","dashboardUrl":"` + rxDashboard + `"}`
	owner := rxUserKey(t, a, "link-owner", "solo")
	cases := []struct{ userID, body string }{
		{"link-absent", `{"userId":"link-absent"}`},
		{"link-home", `{"userId":"link-home","mode":"home"}`},
		{"link-cloud", `{"userId":"link-cloud","mode":"cloud"}`},
		{"link-link", `{"userId":"link-link","mode":"link"}`},
		{"link-null", `{"userId":"link-null","mode":null}`},
		{"link-other", `{"userId":"link-other","mode":"whatever"}`},
	}
	for _, c := range cases {
		rxExpectExact(t, c.userID, a.do(t, http.MethodPost, "/api/register-link", a.AdminKey, c.body), linkOK)
	}
	// A user key links its own installation, which was home before.
	a.register(t, owner, "link-owner", "home")
	rxExpectExact(t, "owner", a.do(t, http.MethodPost, "/api/register-link", owner, `{"userId":"link-owner","mode":"home","gatewayToken":"gw-link"}`), linkOK)

	list, _ := rxList(t, a, a.AdminKey)
	if n := len(rxWithPrefix(list, "link-")); n != len(cases)+1 {
		t.Errorf("%d installations, want %d: %+v", n, len(cases)+1, list)
	}
	for _, c := range append(cases, struct{ userID, body string }{"link-owner", ""}) {
		if got := rxMustFind(t, list, c.userID); got.Mode != "link" || got.Status != "active" {
			t.Errorf("%s: %+v, want mode link, status active", c.userID, got)
		}
	}
	if tok, _ := rxToken(t, a, "link-owner"); tok == nil || *tok != "gw-link" {
		t.Errorf("link-owner's gatewayToken is %v, want gw-link", tok)
	}
}

func TestRESTInstallations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		// Empty: an empty array, not null.
		_, res := rxList(t, a, a.AdminKey)
		rxExpectExact(t, "empty list", res, `{"success":true,"count":0,"installations":[]}`)

		t0 := a.Clock.Now()
		bob := rxUserKey(t, a, "bob", "solo")
		a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, `{"userId":"alice","gatewayToken":"secret-gw-alice"}`)
		a.Clock.Advance(time.Minute)
		a.do(t, http.MethodPost, "/api/register-link", bob, `{"userId":"bob","gatewayToken":"secret-gw-bob"}`)
		a.Clock.Advance(time.Minute)
		a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, `{"userId":"carol","mode":"cloud"}`)
		a.Clock.Advance(time.Minute)
		// alice's heartbeat makes her the most recently seen.
		if res := a.do(t, http.MethodPost, "/api/heartbeat", "", `{"userId":"alice"}`); res.Status != http.StatusOK {
			t.Fatalf("heartbeat: %d %s", res.Status, res.Raw)
		}
		a.settle(t)

		list, res := rxList(t, a, a.AdminKey)
		want := []rxInst{
			{"alice", "home", "", "", "active"},
			{"carol", "cloud", "", "", "active"},
			{"bob", "link", "", "", "active"},
		}
		wantTimes := map[string][2]time.Time{
			"alice": {t0, t0.Add(3 * time.Minute)},
			"carol": {t0.Add(2 * time.Minute), t0.Add(2 * time.Minute)},
			"bob":   {t0.Add(time.Minute), t0.Add(time.Minute)},
		}
		if len(list) != len(want) {
			t.Fatalf("admin sees %d installations, want %d: %s", len(list), len(want), res.Raw)
		}
		for i, w := range want {
			g := list[i]
			if g.UserID != w.UserID || g.Mode != w.Mode || g.Status != w.Status {
				t.Errorf("entry %d: %+v, want userId %s, mode %s, status %s (newest lastSeen first)", i, g, w.UserID, w.Mode, w.Status)
				continue
			}
			rxSameTime(t, w.UserID+" registeredAt", g.RegisteredAt, wantTimes[w.UserID][0])
			rxSameTime(t, w.UserID+" lastSeen", g.LastSeen, wantTimes[w.UserID][1])
		}
		if !strings.Contains(res.Raw, `"userId":"alice"`) {
			t.Errorf("body %q lacks the greppable \"userId\":\"alice\"", res.Raw)
		}
		for _, s := range []string{"gatewayToken", "secret-gw-alice", "secret-gw-bob"} {
			if strings.Contains(res.Raw, s) {
				t.Errorf("installations body shows %q: %s", s, res.Raw)
			}
		}

		// Liveness is derived at read time: bob (last seen 5m30s ago) is inactive.
		a.Clock.Advance(3*time.Minute + 30*time.Second)
		list, _ = rxList(t, a, a.AdminKey)
		for user, status := range map[string]string{"alice": "active", "carol": "active", "bob": "inactive"} {
			if got := rxMustFind(t, list, user).Status; got != status {
				t.Errorf("after 3m30s more, %s is %q, want %q", user, got, status)
			}
		}

		// A user key sees only its own installation, whatever headers say.
		list, _ = rxList(t, a, bob)
		if len(list) != 1 || list[0].UserID != "bob" || list[0].Mode != "link" {
			t.Errorf("bob's key lists %+v, want only bob", list)
		}
		res = rxRequest(t, a, http.MethodGet, "/api/installations", map[string]string{"Authorization": "Bearer " + bob, "x-user-role": "admin", "x-user-id": "alice"}, nil)
		if res.Status != http.StatusOK || res.JSON["count"] != float64(1) {
			t.Errorf("bob's key with spoofed identity headers: %d %s", res.Status, res.Raw)
		}
		nobody := rxUserKey(t, a, "nobody", "solo")
		_, res = rxList(t, a, nobody)
		rxExpectExact(t, "a user without installation", res, `{"success":true,"count":0,"installations":[]}`)

		// 401 without a key or with a bad one.
		rxExpectError(t, "no key", a.do(t, http.MethodGet, "/api/installations", "", ""), http.StatusUnauthorized, "success", "")
		rxExpectError(t, "bad key", a.do(t, http.MethodGet, "/api/installations", "garbage", ""), http.StatusUnauthorized, "success", "")
	})
}

// rxOrderFollowsHeartbeats: the order is by lastSeen,
// not by registration, and follows heartbeats as they come.
func rxOrderFollowsHeartbeats(t *testing.T, a *app) {
	users := []string{"seq-1", "seq-2", "seq-3", "seq-4"}
	for _, u := range users {
		a.register(t, a.AdminKey, u, "home")
		a.Clock.Advance(time.Second)
	}
	order := func() []string {
		list, _ := rxList(t, a, a.AdminKey)
		var ids []string
		for _, e := range rxWithPrefix(list, "seq-") {
			ids = append(ids, e.UserID)
		}
		return ids
	}
	if got := order(); !slices.Equal(got, []string{"seq-4", "seq-3", "seq-2", "seq-1"}) {
		t.Errorf("after registrations: %v, want seq-4 seq-3 seq-2 seq-1", got)
	}
	for _, u := range []string{"seq-2", "seq-1", "seq-4"} {
		a.Clock.Advance(time.Second)
		a.do(t, http.MethodPost, "/api/heartbeat", "", rxBody(t, map[string]string{"userId": u}))
	}
	a.settle(t)
	if got := order(); !slices.Equal(got, []string{"seq-4", "seq-1", "seq-2", "seq-3"}) {
		t.Errorf("after heartbeats seq-2, seq-1, seq-4: %v, want seq-4 seq-1 seq-2 seq-3", got)
	}
}

func rxHeartbeat(t *testing.T, a *app) {
	t0 := a.Clock.Now()
	a.register(t, a.AdminKey, "hb-user", "home")
	a.register(t, a.AdminKey, "hb-other", "link")
	beatOK := func() string {
		return `{"success":true,"timestamp":"` + a.Clock.Now().UTC().Format(time.RFC3339) + `"}`
	}
	lastSeen := func(user string) string {
		t.Helper()
		a.settle(t)
		list, _ := rxList(t, a, a.AdminKey)
		return rxMustFind(t, list, user).LastSeen
	}

	// Known userId, no key, JSON content type.
	a.Clock.Advance(2 * time.Minute)
	rxExpectExact(t, "known userId", a.do(t, http.MethodPost, "/api/heartbeat", "", `{"userId":"hb-user"}`), beatOK())
	rxSameTime(t, "lastSeen after heartbeat", lastSeen("hb-user"), t0.Add(2*time.Minute))
	rxSameTime(t, "other installation's lastSeen", lastSeen("hb-other"), t0)
	list, _ := rxList(t, a, a.AdminKey)
	rxSameTime(t, "registeredAt after heartbeat", rxMustFind(t, list, "hb-user").RegisteredAt, t0)

	// Acknowledged without a userId, or with an unknown one; nothing is created.
	before := len(list)
	a.Clock.Advance(time.Minute)
	bodies := map[string]string{
		"unknown userId":      `{"userId":"nobody-here"}`,
		"empty body":          ``,
		"blank body":          " \n\t ",
		"empty object":        `{}`,
		"empty userId":        `{"userId":""}`,
		"unknown fields only": `{"status":"ok","version":"1.2.3"}`,
	}
	for name, body := range bodies {
		req, _ := http.NewRequest(http.MethodPost, a.URL+"/api/heartbeat", strings.NewReader(body))
		rxExpectExact(t, name, a.send(t, req), beatOK())
	}
	// Form-encoded content type (curl -d) and a key do not matter.
	res := rxRequest(t, a, http.MethodPost, "/api/heartbeat", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, strings.NewReader(`{"userId":"hb-user"}`))
	rxExpectExact(t, "form content type", res, beatOK())
	rxExpectExact(t, "with a key", a.do(t, http.MethodPost, "/api/heartbeat", a.AdminKey, `{"userId":"hb-other"}`), beatOK())
	a.settle(t)
	list, _ = rxList(t, a, a.AdminKey)
	if len(list) != before || rxFind(list, "nobody-here") != nil {
		t.Errorf("heartbeats created installations: %+v", list)
	}
	rxSameTime(t, "lastSeen after form heartbeat", rxMustFind(t, list, "hb-user").LastSeen, t0.Add(3*time.Minute))
	rxSameTime(t, "lastSeen after keyed heartbeat", rxMustFind(t, list, "hb-other").LastSeen, t0.Add(3*time.Minute))

	// An inactive installation becomes active again.
	a.Clock.Advance(10 * time.Minute)
	list, _ = rxList(t, a, a.AdminKey)
	if got := rxMustFind(t, list, "hb-user").Status; got != "inactive" {
		t.Errorf("after 10 minutes without heartbeat: status %q, want inactive", got)
	}
	a.do(t, http.MethodPost, "/api/heartbeat", "", `{"userId":"hb-user"}`)
	a.settle(t)
	list, _ = rxList(t, a, a.AdminKey)
	if got := rxMustFind(t, list, "hb-user"); got.Status != "active" {
		t.Errorf("after a heartbeat: %+v, want active", got)
	}
	if list[0].UserID != "hb-user" {
		t.Errorf("the installation just seen is not listed first: %+v", list)
	}
	seen := t0.Add(13 * time.Minute)
	rxSameTime(t, "lastSeen", lastSeen("hb-user"), seen)

	// Bad bodies: 400 and lastSeen untouched.
	a.Clock.Advance(time.Minute)
	bad := []string{
		`not json`,
		`userId=hb-user`,
		`{"userId":"hb-user"`,
		`{"userId":"hb-user"} trailing`,
		`{"userId":"hb-user"}{"userId":"hb-user"}`,
		`{"userId":42}`,
		`{"userId":1.5}`,
		`{"userId":{"id":"hb-user"}}`,
		`{"userId":{}}`,
		`{"userId":["hb-user"]}`,
		`{"userId":[]}`,
		`{"userId":true}`,
		`{"userId":false}`,
		`["hb-user"]`,
		`"hb-user"`,
		`42`,
	}
	for _, body := range bad {
		rxExpectError(t, "heartbeat "+body, a.do(t, http.MethodPost, "/api/heartbeat", "", body), http.StatusBadRequest, "success", "")
	}
	rxSameTime(t, "lastSeen after refused heartbeats", lastSeen("hb-user"), seen)
}

// rxHeartbeatThenRegistration: a heartbeat still pending when a later
// registration is written does not move lastSeen back.
func rxHeartbeatThenRegistration(t *testing.T, a *app) {
	a.register(t, a.AdminKey, "order", "home")
	a.Clock.Advance(time.Minute)
	a.do(t, http.MethodPost, "/api/heartbeat", "", `{"userId":"order"}`)
	a.Clock.Advance(time.Minute)
	want := a.Clock.Now()
	a.register(t, a.AdminKey, "order", "link")
	a.settle(t)
	list, _ := rxList(t, a, a.AdminKey)
	rxSameTime(t, "lastSeen", rxMustFind(t, list, "order").LastSeen, want)
}

func rxNotFound(t *testing.T, a *app) {
	cases := []struct{ method, path string }{
		{http.MethodGet, "/api/nope"},
		{http.MethodPost, "/api/nope"},
		{http.MethodGet, "/api/"},
		{http.MethodPost, "/api/validate-key/extra"},
		{http.MethodPost, "/api/register-home/"},
		{http.MethodGet, "/api/installations/alice"},
		{http.MethodPost, "/api/Heartbeat"},
		{http.MethodPost, "/api/v1/heartbeat"},
		{http.MethodDelete, "/api/installations-all"},
		{http.MethodGet, "/nope"},
		{http.MethodPost, "/register-home"},
		{http.MethodGet, "/"},
		{http.MethodGet, "/.env"},
	}
	for _, c := range cases {
		for _, key := range []string{"", a.AdminKey} {
			res := a.do(t, c.method, c.path, key, "")
			rxExpectError(t, c.method+" "+c.path, res, http.StatusNotFound, "success", "")
		}
	}
}

func rxMethodNotAllowed(t *testing.T, a *app) {
	endpoints := []struct {
		path, method, okField string
	}{
		{"/api/validate-key", http.MethodPost, "valid"},
		{"/api/register-home", http.MethodPost, "success"},
		{"/api/register-link", http.MethodPost, "success"},
		{"/api/installations", http.MethodGet, "success"},
		{"/api/heartbeat", http.MethodPost, "success"},
	}
	body := `{"userId":"wrong-method"}`
	for _, e := range endpoints {
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if m == e.method {
				continue
			}
			res := a.do(t, m, e.path, a.AdminKey, body)
			what := m + " " + e.path
			rxExpectError(t, what, res, http.StatusMethodNotAllowed, e.okField, "")
			allow := res.Header.Values("Allow")
			var methods []string
			for _, v := range allow {
				for _, part := range strings.Split(v, ",") {
					methods = append(methods, strings.TrimSpace(part))
				}
			}
			if !slices.Contains(methods, e.method) {
				t.Errorf("%s: Allow header %q does not name %s", what, allow, e.method)
			}
			if slices.Contains(methods, m) {
				t.Errorf("%s: Allow header %q names the refused method", what, allow)
			}
		}
	}
	// Nothing was registered by the refused requests.
	if list, _ := rxList(t, a, a.AdminKey); rxFind(list, "wrong-method") != nil {
		t.Errorf("wrong-method requests stored installations: %+v", list)
	}
}

// rxPadded is body followed by spaces up to exactly size bytes.
func rxPadded(t *testing.T, body string, size int) string {
	t.Helper()
	if len(body) > size {
		t.Fatalf("body longer than %d", size)
	}
	return body + strings.Repeat(" ", size-len(body))
}

// rxChunked is a reader of unknown length, so the request is sent chunked
// without a Content-Length.
type rxChunked struct{ r io.Reader }

func (c rxChunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestRESTBodyTooLarge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		const limit = 1 << 20
		a.register(t, a.AdminKey, "big-hb", "home")
		a.Clock.Advance(time.Minute)
		t1 := a.Clock.Now()

		// Exactly 1 MiB is accepted.
		res := rxBigPost(t, a, "/api/heartbeat", "", rxPadded(t, `{"userId":"big-hb"}`, limit))
		rxExpectExact(t, "heartbeat of exactly 1 MiB", res, `{"success":true,"timestamp":"`+t1.Format(time.RFC3339)+`"}`)
		res = rxBigPost(t, a, "/api/register-home", a.AdminKey, rxPadded(t, `{"userId":"big-1mib"}`, limit))
		rxExpectExact(t, "register-home of exactly 1 MiB", res, `{"success":true,"message":"Home installation registered","dashboardUrl":"`+rxDashboard+`"}`)

		a.Clock.Advance(time.Minute)
		for _, path := range []string{"/api/register-home", "/api/register-link", "/api/heartbeat"} {
			body := rxPadded(t, `{"userId":"big-hb","mode":"cloud"}`, limit+1)
			res := rxBigPost(t, a, path, a.AdminKey, body)
			rxExpectError(t, path+" one byte over", res, http.StatusRequestEntityTooLarge, "success", "")
		}
		// Far over the limit with a Content-Length, chunked without one, and a
		// huge value inside the JSON: one endpoint each.
		res = rxBigPost(t, a, "/api/register-home", a.AdminKey, rxPadded(t, `{"userId":"big-hb","mode":"cloud"}`, 2*limit))
		rxExpectError(t, "register-home of 2 MiB", res, http.StatusRequestEntityTooLarge, "success", "")
		chunked := rxChunked{strings.NewReader(rxPadded(t, `{"userId":"big-chunked"}`, 2*limit))}
		res = rxSendBig(t, a, http.MethodPost, "/api/register-link", map[string]string{"Authorization": "Bearer " + a.AdminKey, "Content-Type": "application/json"}, chunked)
		rxExpectError(t, "register-link chunked", res, http.StatusRequestEntityTooLarge, "success", "")
		res = rxBigPost(t, a, "/api/heartbeat", "", `{"userId":"big-hb`+strings.Repeat("x", limit)+`"}`)
		rxExpectError(t, "heartbeat with a huge userId", res, http.StatusRequestEntityTooLarge, "success", "")

		// validate-key takes no body: a large one is not a reason for a 5xx.
		res = rxBigPost(t, a, "/api/validate-key", a.AdminKey, rxPadded(t, `{}`, limit+1))
		if res.Status >= 500 {
			t.Errorf("validate-key with a body over 1 MiB: %d %s", res.Status, res.Raw)
		}
		rxCheckJSON(t, "validate-key with a body over 1 MiB", res)

		a.settle(t)
		list, _ := rxList(t, a, a.AdminKey)
		if len(list) != 2 || rxFind(list, "big-chunked") != nil {
			t.Errorf("oversized requests changed the installations: %+v", list)
		}
		e := rxMustFind(t, list, "big-hb")
		if e.Mode != "home" {
			t.Errorf("an oversized registration changed big-hb's mode to %q", e.Mode)
		}
		rxSameTime(t, "big-hb lastSeen", e.LastSeen, t1)
		rxMustFind(t, list, "big-1mib")
	})
}

// rxRegisterContentTypes: installers post with curl -d, which sends
// application/x-www-form-urlencoded; the body is JSON whatever the header says.
func rxRegisterContentTypes(t *testing.T, a *app) {
	for i, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "", "application/json; charset=utf-8"} {
		user := "ct-" + string(rune('a'+i))
		h := map[string]string{"Authorization": "Bearer " + a.AdminKey}
		if ct != "" {
			h["Content-Type"] = ct
		}
		res := rxRequest(t, a, http.MethodPost, "/api/register-home", h, strings.NewReader(`{"userId":"`+user+`","mode":"cloud","gatewayToken":"t-`+user+`"}`))
		rxExpectExact(t, "Content-Type "+ct, res, `{"success":true,"message":"Home installation registered","dashboardUrl":"`+rxDashboard+`"}`)
		if tok, _ := rxToken(t, a, user); tok == nil || *tok != "t-"+user {
			t.Errorf("Content-Type %q: token %v", ct, tok)
		}
	}
	list, _ := rxList(t, a, a.AdminKey)
	list = rxWithPrefix(list, "ct-")
	if len(list) != 4 {
		t.Errorf("%d installations, want 4: %+v", len(list), list)
	}
	for _, e := range list {
		if e.Mode != "cloud" {
			t.Errorf("%s: mode %q, want cloud", e.UserID, e.Mode)
		}
	}
}

// rxFieldNamesCaseSensitive: the documented field names are userId, mode
// and gatewayToken. Other spellings are unknown fields, which are ignored:
// they must not be taken for the documented ones (a proxy or filter that
// inspects "userId" would otherwise see a different request than the
// registry acts on).
func rxFieldNamesCaseSensitive(t *testing.T, a *app) {
	for _, body := range []string{`{"userid":"cs-user"}`, `{"UserId":"cs-user"}`, `{"USERID":"cs-user","MODE":"cloud"}`} {
		res := a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, body)
		rxExpectError(t, "register-home "+body, res, http.StatusBadRequest, "success", "userId is required")
	}
	a.register(t, a.AdminKey, "cs-user", "link")
	a.Clock.Advance(time.Minute)
	t1 := a.Clock.Now()
	res := a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, `{"userId":"cs-user","Mode":"cloud","GatewayToken":"cs-token"}`)
	rxExpectExact(t, "register-home with misspelt mode and token", res, `{"success":true,"message":"Home installation registered","dashboardUrl":"`+rxDashboard+`"}`)
	list, _ := rxList(t, a, a.AdminKey)
	if got := rxMustFind(t, list, "cs-user").Mode; got != "home" {
		t.Errorf(`"Mode":"cloud" was taken for mode: mode is %q, want home (the default)`, got)
	}
	if tok, _ := rxToken(t, a, "cs-user"); tok != nil {
		t.Errorf(`"GatewayToken" was taken for gatewayToken: token %q`, *tok)
	}
	// A heartbeat with a misspelt userId is acknowledged but touches nothing.
	a.Clock.Advance(time.Minute)
	res = a.do(t, http.MethodPost, "/api/heartbeat", "", `{"UserID":"cs-user"}`)
	rxExpectExact(t, "heartbeat with UserID", res, `{"success":true,"timestamp":"`+a.Clock.Now().Format(time.RFC3339)+`"}`)
	a.settle(t)
	list, _ = rxList(t, a, a.AdminKey)
	rxSameTime(t, "cs-user lastSeen after a heartbeat for UserID", rxMustFind(t, list, "cs-user").LastSeen, t1)
}

// TestRESTDashboardURLConfigured: the configured dashboardUrl is returned as
// it is, with no HTML escaping of & < >.
func TestRESTDashboardURLConfigured(t *testing.T) {
	t.Parallel()
	const dash = "https://dash.example.test/home?a=1&b=<2>"
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, b.newURL(t), func(c *config) { c.DashboardURL = dash })
			rxExpectExact(t, "register-home", a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, `{"userId":"d1"}`),
				`{"success":true,"message":"Home installation registered","dashboardUrl":"`+dash+`"}`)
			rxExpectExact(t, "register-link", a.do(t, http.MethodPost, "/api/register-link", a.AdminKey, `{"userId":"d2"}`),
				`{"success":true,"message":"OpenClaw instance linked","dashboardUrl":"`+dash+`"}`)
		})
	}
}

// rxSubtests runs the named cases one after the other on one registry per
// backend; each case uses its own userIds.
func rxSubtests(t *testing.T, cases ...any) {
	t.Helper()
	forEachBackend(t, func(t *testing.T, a *app) {
		for i := 0; i < len(cases); i += 2 {
			name, run := cases[i].(string), cases[i+1].(func(*testing.T, *app))
			t.Run(name, func(t *testing.T) { run(t, a) })
		}
	})
}

func TestRESTValidateKey(t *testing.T) {
	rxSubtests(t,
		"valid", rxValidKeys,
		"refused", rxRefusedKeys,
		"revoked and expired", rxRevokedAndExpired,
	)
}

func TestRESTRegister(t *testing.T) {
	rxSubtests(t,
		"register-home", rxRegisterHome,
		"authorization", rxRegisterAuthorization,
		"re-registration", rxReRegistration,
		"register-link", rxRegisterLink,
		"content types", rxRegisterContentTypes,
		"field names are case-sensitive", rxFieldNamesCaseSensitive,
	)
}

func TestRESTHeartbeat(t *testing.T) {
	rxSubtests(t,
		"heartbeat", rxHeartbeat,
		"order follows heartbeats", rxOrderFollowsHeartbeats,
		"pending heartbeat then registration", rxHeartbeatThenRegistration,
	)
}

func TestRESTRouting(t *testing.T) {
	rxSubtests(t,
		"not found", rxNotFound,
		"method not allowed", rxMethodNotAllowed,
	)
}
