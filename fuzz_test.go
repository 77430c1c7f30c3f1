package main

// Fuzz targets for hostile input (issue 4 item 6, CONTRACT.md sections 4
// and 7): one per REST decoder or endpoint and one for the GraphQL endpoint.
// Each target sends every input over HTTP to one in-process registry on
// SQLite and checks what no input may break:
//
//   - the status is never 5xx, and an answer is JSON with
//     Content-Type application/json;
//   - an error answer is {"success":false,"error":"…"} ({"valid":false,…}
//     on validate-key) whose message names no internal detail (SQL, panics,
//     Go types, decoder texts);
//   - the status is the one the contract gives for the input (a small model
//     of each endpoint decides it), a refused request changes nothing, and
//     an accepted registration is stored with exactly the userId, mode and
//     gateway token sent (read back through GraphQL with the admin key);
//   - the process keeps answering /healthz.
//
// `go test` runs the seed corpus (f.Add plus testdata/fuzz/<Target>/);
// `go test -run '^$' -fuzz '^FuzzHeartbeat$' -fuzztime 45s .` fuzzes one
// target for real. An input that fails is written to testdata/fuzz/<Target>/
// and from then on runs with the seed corpus. While a known bug waits for
// its fix, FUZZ_IGNORE (see fuzzT) lets fuzzing go on past it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"entgo.io/contrib/entgql"

	"github.com/agentbot/registry/auth"
	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/ent/installation"
)

// fuzzUser is the userId of the user key each target holds besides the
// admin key.
const fuzzUser = "fuzz-user"

// fuzzEnv is the one registry a fuzz target sends all its inputs to.
type fuzzEnv struct {
	*app
	client *http.Client
	// UserKey acts for fuzzUser; RevokedKey and ExpiredKey were valid once.
	UserKey, RevokedKey, ExpiredKey string
	// logMark is the length of the log when the last request was sent.
	logMark int
}

// newFuzzApp is one registry for all the inputs of a fuzz target, on
// SQLite in the target's TempDir. It logs warnings and errors only: a fuzz
// run makes millions of requests, and access logs would pile up in memory.
func newFuzzApp(tb testing.TB) *app {
	tb.Helper()
	return startApp(tb, "sqlite:"+filepath.Join(tb.TempDir(), "registry.db"), slog.LevelWarn, nil)
}

// newFuzzEnv starts the target's registry with a user key, a revoked key
// and an expired key besides the admin key.
func newFuzzEnv(f *testing.F) *fuzzEnv {
	f.Helper()
	e := &fuzzEnv{app: newFuzzApp(f), client: &http.Client{Timeout: 30 * time.Second}}
	f.Cleanup(e.client.CloseIdleConnections)
	createKey := func(userID string, expires *time.Time) (raw, id string) {
		vars := map[string]any{"u": userID}
		if expires != nil {
			vars["x"] = expires.Format(time.RFC3339)
		}
		data := e.mustGQL(f, `mutation($u: String!, $x: Time) { createAPIKey(input: {userId: $u, expiresAt: $x}) { key apiKey { id } } }`, vars)
		var out struct {
			CreateAPIKey struct {
				Key    string
				APIKey struct{ ID string }
			}
		}
		remarshal(f, data, &out)
		return out.CreateAPIKey.Key, out.CreateAPIKey.APIKey.ID
	}
	e.UserKey, _ = createKey(fuzzUser, nil)
	var revokedID string
	e.RevokedKey, revokedID = createKey("fuzz-revoked", nil)
	e.mustGQL(f, `mutation($id: ID!) { revokeAPIKey(id: $id) { id } }`, map[string]any{"id": revokedID})
	soon := e.Clock.Now().Add(time.Hour)
	e.ExpiredKey, _ = createKey("fuzz-expired", &soon)
	e.Clock.Advance(2 * time.Hour)
	return e
}

// fuzzAnswer is an HTTP answer.
type fuzzAnswer struct {
	Status int
	Header http.Header
	Body   []byte
}

// fuzzT is the *testing.T of one input. Its Errorf and Fatalf fail the
// input unless the message matches the regular expression in FUZZ_IGNORE:
// while a bug the fuzzer found waits for its fix, fuzzing can go on looking
// for others with, for example,
// FUZZ_IGNORE='Expression tree is too large|msgpack'. The normal suite
// leaves it unset, so every failure counts.
type fuzzT struct{ *testing.T }

var fuzzIgnore = sync.OnceValue(func() *regexp.Regexp {
	if expr := os.Getenv("FUZZ_IGNORE"); expr != "" {
		return regexp.MustCompile(expr)
	}
	return nil
})

func (t fuzzT) ignored(msg string) bool {
	if re := fuzzIgnore(); re != nil && re.MatchString(msg) {
		t.Log("ignored (FUZZ_IGNORE): " + msg)
		return true
	}
	return false
}

func (t fuzzT) Errorf(format string, args ...any) {
	t.Helper()
	if msg := fmt.Sprintf(format, args...); !t.ignored(msg) {
		t.T.Error(msg)
	}
}

func (t fuzzT) Fatalf(format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if t.ignored(msg) {
		t.SkipNow()
	}
	t.T.Fatal(msg)
}

// send sends req and reads the whole answer. A transport error is a
// failure: the server dropped the connection (a panic, or an aborted
// stream) or hung.
func (e *fuzzEnv) send(t testing.TB, req *http.Request) fuzzAnswer {
	t.Helper()
	e.logMark = len(e.Logs.String())
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: no answer: %v", req.Method, req.URL.RequestURI(), err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", req.Method, req.URL.RequestURI(), err)
	}
	return fuzzAnswer{Status: res.StatusCode, Header: res.Header, Body: body}
}

// post sends body to path with key as the bearer key ("" for none).
func (e *fuzzEnv) post(t testing.TB, path, key string, body []byte) fuzzAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return e.send(t, req)
}

// logTail is what the server logged (warnings and errors) since the last
// request was sent: it names the internal error behind a 500.
func (e *fuzzEnv) logTail() string {
	s := e.Logs.String()
	s = strings.TrimSpace(s[min(e.logMark, len(s)):])
	if len(s) > 1500 {
		s = s[:1500] + "…"
	}
	return s
}

// alive checks that the process still answers /healthz.
func (e *fuzzEnv) alive(t testing.TB) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/healthz", nil)
	ans := e.send(t, req)
	if ans.Status != http.StatusOK || strings.TrimSpace(string(ans.Body)) != `{"status":"ok"}` {
		t.Fatalf("/healthz after the input: %d %s", ans.Status, ans.Body)
	}
}

// gql posts a GraphQL document with the admin key and decodes the answer.
func (e *fuzzEnv) gql(t testing.TB, query string, vars map[string]any) gqlResult {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	ans := e.post(t, "/graphql", e.AdminKey, body)
	var out gqlResult
	if err := json.Unmarshal(ans.Body, &out); err != nil {
		t.Fatalf("graphql: status %d, body is not JSON: %s", ans.Status, ans.Body)
	}
	return out
}

func (e *fuzzEnv) mustGQL(t testing.TB, query string, vars map[string]any) map[string]any {
	t.Helper()
	out := e.gql(t, query, vars)
	if len(out.Errors) > 0 {
		t.Fatalf("graphql %s: errors %+v", query, out.Errors)
	}
	return out.Data
}

func remarshal(t testing.TB, from, to any) {
	t.Helper()
	b, err := json.Marshal(from)
	if err == nil {
		err = json.Unmarshal(b, to)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// internalMarkers are texts that only an internal error would put in a
// message shown to a client: database and driver errors, panics and stack
// traces, Go type names and the texts of Go's and the libraries' decoders.
var internalMarkers = []string{
	"sql", "sqlstate", "constraint failed", "database is locked", "pgx", "pq:", "modernc",
	"panic", "goroutine", "runtime error", "runtime.", ".go:",
	"*errors.", "errors.errorstring", "*fmt.", "*ent.", "ent: ", "entgql",
	"json: ", "go struct field", "go value of type", "unmarshal", "rawparams",
	"interface {}", "interface{}", "map[string]", "[]string", "json.number", "float64", "int64",
	"msgpack", "illegal base64", "nil pointer", "index out of range",
}

// leak returns the internal marker msg contains, or "" when it contains
// none. Markers that occur in the input itself do not count: messages may
// quote the caller's own text (GraphQL names the field it cannot find).
func leak(msg, input string) string {
	lower, in := strings.ToLower(msg), strings.ToLower(input)
	for _, m := range internalMarkers {
		if strings.Contains(lower, m) && !strings.Contains(in, m) {
			return m
		}
	}
	return ""
}

// checkREST checks what every REST answer must be, and returns its body:
// never 5xx, JSON with Content-Type application/json, and on an error the
// documented {okField:false,"error":"…"} with a clean message.
func (e *fuzzEnv) checkREST(t testing.TB, what string, ans fuzzAnswer, okField, input string) map[string]any {
	t.Helper()
	if ans.Status >= 500 {
		t.Fatalf("%s: status %d (never 5xx for bad input): %s\nserver log: %s", what, ans.Status, ans.Body, e.logTail())
	}
	if ct := ans.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var body map[string]any
	dec := json.NewDecoder(bytes.NewReader(ans.Body))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil || body == nil {
		t.Fatalf("%s: status %d, body is not a JSON object (%v): %q", what, ans.Status, err, ans.Body)
	}
	if ans.Status == http.StatusOK {
		if body[okField] != true {
			t.Errorf("%s: 200 without %q:true: %s", what, okField, ans.Body)
		}
		return body
	}
	msg, _ := body["error"].(string)
	switch {
	case body[okField] != false || len(body) != 2:
		t.Errorf("%s: error body is not {%q:false,\"error\":…}: %s", what, okField, ans.Body)
	case strings.TrimSpace(msg) == "":
		t.Errorf("%s: error without a message: %s", what, ans.Body)
	case leak(msg, input) != "":
		t.Errorf("%s: error message shows an internal detail (%q): %s", what, leak(msg, input), ans.Body)
	}
	return body
}

// jsonSpace reports whether b is empty or JSON whitespace only: the body the
// contract lets heartbeat send instead of an object.
func jsonSpace(b []byte) bool {
	return len(bytes.Trim(b, " \t\r\n")) == 0
}

// parseBody reads a request body the way the contract says: empty (or
// JSON whitespace) is {}, otherwise one JSON object of valid UTF-8 whose
// named fields, matched exactly, are strings or null. It returns the named
// fields that are strings; ok is false when the body must get a 400.
func parseBody(body []byte, names ...string) (fields map[string]string, ok bool) {
	fields = map[string]string{}
	if jsonSpace(body) {
		return fields, true
	}
	var object map[string]json.RawMessage
	if !utf8.Valid(body) || json.Unmarshal(body, &object) != nil || object == nil {
		return fields, false
	}
	for _, name := range names {
		raw, present := object[name]
		if !present || string(raw) == "null" {
			continue
		}
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return fields, false
		}
		fields[name] = v
	}
	return fields, true
}

// validText is the contract's rule for stored text: valid UTF-8, at most
// max characters, no control characters.
func validText(s string, max int) bool {
	return utf8.ValidString(s) && utf8.RuneCountInString(s) <= max &&
		!strings.ContainsFunc(s, unicode.IsControl)
}

// ---------------------------------------------------------------------------
// validate-key

func FuzzValidateKey(f *testing.F) {
	e := newFuzzEnv(f)
	// {admin}, {user}, {revoked} and {expired} stand for the target's keys,
	// so seeds and the fuzzer's mutations can reach real keys.
	for _, h := range []string{
		"", " ", "Bearer", "Bearer ", "Bearer  ", "Bearer \t ",
		"Bearer {admin}", "Bearer {user}", "Bearer {revoked}", "Bearer {expired}",
		"bearer {admin}", "BEARER   {user}  ", "Bearer\t{admin}", "  Bearer {admin}\t",
		"{admin}", "Basic {admin}", "Token {user}", "Bearer: {admin}", "Bearer={admin}",
		"Bearer {admin}x", "Bearer x{admin}", "Bearer {admin} {admin}", "Bearer {admin},Bearer {user}",
		"Bearer agb_", "Bearer agb_aaaaaaaa_", "Bearer agb_aaaaaaaa_" + strings.Repeat("a", 52),
		"Bearer ' OR '1'='1", "Bearer '; DROP TABLE api_keys; --", `Bearer " OR 1=1 --`,
		"Bearer \xff\xfe\xfd", "Bearer \xc3\x28", "Bearer é🔑", "Bearer \u00a0{admin}",
		"Bearer %00", "Bearer null", "Bearer {}", "Bearer 1e999", "Bearer -1",
		"Bearer " + strings.Repeat("k", 4096), "Bearer " + strings.Repeat("é", 600),
		"Bearer {{admin}}", "Bearer {admin}\u200b",
	} {
		f.Add(h)
	}
	keys := strings.NewReplacer("{admin}", e.AdminKey, "{user}", e.UserKey, "{revoked}", e.RevokedKey, "{expired}", e.ExpiredKey)
	f.Fuzz(func(tt *testing.T, header string) {
		t := fuzzT{tt}
		header = keys.Replace(header)
		if !validHeaderValue(header) {
			return // no HTTP client can send it
		}
		req, err := http.NewRequest(http.MethodPost, e.URL+"/api/validate-key", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", header)
		ans := e.send(t, req)
		body := e.checkREST(t, "validate-key", ans, "valid", header)

		// What the contract answers for this header.
		wantStatus, wantUser, wantErr := http.StatusUnauthorized, "", auth.ErrInvalidKey.Message
		switch auth.BearerToken(header) {
		case "":
			wantErr = auth.ErrMissingKey.Message
		case e.AdminKey:
			wantStatus, wantUser = http.StatusOK, "admin"
		case e.UserKey:
			wantStatus, wantUser = http.StatusOK, fuzzUser
		case e.RevokedKey:
			wantErr = auth.ErrRevokedKey.Message
		case e.ExpiredKey:
			wantErr = auth.ErrExpiredKey.Message
		}
		if ans.Status != wantStatus {
			t.Fatalf("validate-key with Authorization %q: status %d, want %d: %s", header, ans.Status, wantStatus, ans.Body)
		}
		if wantStatus != http.StatusOK {
			if body["error"] != wantErr {
				t.Errorf("validate-key with Authorization %q: error %q, want %q", header, body["error"], wantErr)
			}
			return
		}
		if body["userId"] != wantUser || body["plan"] == nil || len(body) != 4 {
			t.Errorf("validate-key with Authorization %q: %s, want valid, userId %s, plan and features", header, ans.Body, wantUser)
		}
		if _, ok := body["features"].([]any); !ok {
			t.Errorf("validate-key: features is not a list: %s", ans.Body)
		}
		e.alive(t)
	})
}

// validHeaderValue reports whether Go's HTTP client sends v as a header
// value: no control characters but tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------
// register-home and register-link

// registerSeeds are hostile bodies for both registration endpoints.
func registerSeeds() [][]byte {
	deep := `{"userId":"deep","x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`
	deepObj := `{"userId":"deep-obj","x":` + strings.Repeat(`{"a":`, 2000) + "1" + strings.Repeat("}", 2000) + `}`
	seeds := []string{
		`{"userId":"seed-home","mode":"home","gatewayToken":"tok-1"}`,
		`{"userId":"seed-cloud","mode":"cloud"}`,
		`{"userId":"seed-link","mode":"link","gatewayToken":""}`,
		`{"userId":"seed-none"}`,
		`{"userId":"fuzz-user","mode":"home"}`,
		``, ` `, "\n\t\r ", `null`, `{}`, `[]`, `[{"userId":"arr"}]`, `"seed"`, `42`, `-1.5e300`, `true`, `false`,
		`{"userId":null}`, `{"userId":""}`, `{"userId":" "}`, `{"userId":42}`, `{"userId":1e999}`,
		`{"userId":-0}`, `{"userId":true}`, `{"userId":["a"]}`, `{"userId":{"a":1}}`, `{"userId":{}}`,
		`{"userId":"x","mode":7}`, `{"userId":"x","mode":null}`, `{"userId":"x","mode":""}`, `{"userId":"x","mode":"HOME"}`,
		`{"userId":"x","mode":"home "}`, `{"userId":"x","mode":"link\u0000"}`, `{"userId":"x","mode":["home"]}`,
		`{"userId":"x","gatewayToken":{}}`, `{"userId":"x","gatewayToken":12}`, `{"userId":"x","gatewayToken":null}`,
		`{"userId":"x","extra":1e999,"more":[null,{"k":"v"}]}`,
		`{"userId":"x"`, `{"userId":"x"}}`, `{"userId":"x"} {"userId":"y"}`, `{"userId":"x"}[]`, `{"userId":"x",}`,
		`{'userId':'x'}`, `{userId:"x"}`, `{"userId":"x" "mode":"home"}`, `{"userId":"a","userId":"b"}`,
		`{"USERID":"case-fold"}`, `{"userid":"lower","UserId":"mixed"}`, `{"userId":"a","userId":null}`,
		deep, deepObj, `{"userId":"x","x":` + strings.Repeat("[", 500) + `}`,
		"\xef\xbb\xbf{\"userId\":\"bom\"}",
		"{\"userId\":\"\xff\xfe\"}", "{\"userId\":\"a\xc3\"}", "{\"userId\":\"ok\",\"junk\":\"\xed\xa0\x80\"}",
		"{\"userId\":\"a\x00b\"}", "{\"userId\":\"tab\tin\"}", "\x00", "{\"userId\":\"x\"}\x00",
		`{"userId":"a\u0000b"}`, `{"userId":"\u001b[31mred"}`, `{"userId":"del\u007f"}`, `{"userId":"nel\u0085"}`,
		`{"userId":"\ud800"}`, `{"userId":"\udfff\ud800"}`, `{"userId":"\uFEFFbom"}`, `{"userId":"zw\u200bsp"}`,
		`{"userId":"ltr\u202eevil"}`, `{"userId":"line\u2028sep"}`, `{"userId":"😀🎉"}`, `{"userId":"\\"}`, `{"userId":"\""}`,
		`{"userId":"x' OR '1'='1"}`, `{"userId":"'; DROP TABLE installations; --"}`, `{"userId":"\" OR 1=1 --"}`,
		`{"userId":"%"}`, `{"userId":"_"}`, `{"userId":"x","gatewayToken":"'); DELETE FROM api_keys; --"}`,
		`{"userId":"{{7*7}}"}`, `{"userId":"${jndi:ldap://x}"}`, `{"userId":"<script>alert(1)</script>&amp;"}`,
		`{"userId":"` + strings.Repeat("a", 256) + `"}`,
		`{"userId":"` + strings.Repeat("a", 257) + `"}`,
		`{"userId":"` + strings.Repeat("é", 256) + `"}`,
		`{"userId":"` + strings.Repeat("é", 257) + `"}`,
		`{"userId":"long-token","gatewayToken":"` + strings.Repeat("t", 4096) + `"}`,
		`{"userId":"long-token","gatewayToken":"` + strings.Repeat("t", 4097) + `"}`,
	}
	out := make([][]byte, len(seeds))
	for i, s := range seeds {
		out[i] = []byte(s)
	}
	return out
}

// registerFieldSeeds are userId, mode and gatewayToken values for the
// otherwise valid object.
var registerFieldSeeds = []struct{ userID, mode, token string }{
	{"field-ok", "home", "tok"}, {"field-cloud", "cloud", ""}, {"field-link", "link", "t-2"},
	{"", "home", ""}, {" ", "", ""}, {fuzzUser, "cloud", "x"}, {"other-user", "home", ""},
	{"field-mode", "HOME", ""}, {"field-mode", "remote", ""}, {"field-mode", "", ""}, {"field-mode", "home\x00", ""},
	{"a\x00b", "home", ""}, {"ctl\x1b[0m", "home", ""}, {"del\x7f", "home", ""}, {"c1\u0085", "home", ""},
	{"\xff\xfe", "home", ""}, {"half\xc3", "link", ""}, {"tok-ctl", "home", "a\nb"}, {"tok-nul", "home", "\x00"},
	{"x' OR '1'='1", "home", "'; DROP TABLE installations; --"}, {"%", "cloud", "%"}, {"_", "link", "_"},
	{"😀", "home", "🔑"}, {"\u202eevil", "home", ""}, {"\\\"", "home", "\\"},
	{strings.Repeat("u", 256), "home", ""}, {strings.Repeat("u", 257), "home", ""},
	{strings.Repeat("ü", 256), "cloud", ""}, {"tok-long", "home", strings.Repeat("t", 4097)},
}

func FuzzRegisterHome(f *testing.F) { fuzzRegister(f, "/api/register-home", false) }

func FuzzRegisterLink(f *testing.F) { fuzzRegister(f, "/api/register-link", true) }

// fuzzRegister fuzzes one registration endpoint. Each input is sent twice:
// body as it is, then userId, mode and gatewayToken in an otherwise valid
// object. flags: 1 leaves mode out of the object, 2 leaves gatewayToken
// out, 4 sends both with the user key instead of the admin key.
func fuzzRegister(f *testing.F, path string, link bool) {
	e := newFuzzEnv(f)
	bodies := registerSeeds()
	for i := range max(len(bodies), len(registerFieldSeeds)) {
		fs := registerFieldSeeds[i%len(registerFieldSeeds)]
		f.Add(bodies[i%len(bodies)], fs.userID, fs.mode, fs.token, uint8(i%8))
	}
	f.Fuzz(func(tt *testing.T, body []byte, userID, mode, token string, flags uint8) {
		t := fuzzT{tt}
		userKey := flags&4 != 0
		e.register(t, path, link, userKey, body)

		obj := map[string]string{"userId": userID}
		if flags&1 == 0 {
			obj["mode"] = mode
		}
		if flags&2 == 0 {
			obj["gatewayToken"] = token
		}
		var built bytes.Buffer
		enc := json.NewEncoder(&built)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(obj); err != nil {
			t.Fatal(err)
		}
		e.register(t, path, link, userKey, built.Bytes())
		e.alive(t)
	})
}

// register sends one registration and checks the answer and the stored row
// against the contract.
func (e *fuzzEnv) register(t testing.TB, path string, link, userKey bool, body []byte) {
	t.Helper()
	what := fmt.Sprintf("POST %s %q", path, truncate(body))
	// The contract's answer: 400 for a body that is not an object of
	// strings or for bad values, 403 for another user's userId with a user
	// key, else 200 and the row stored.
	b, ok := parseBody(body, "userId", "mode", "gatewayToken")
	userID, token := b["userId"], b["gatewayToken"]
	mode := "home"
	if link {
		mode = "link"
	} else if m, given := b["mode"]; given { // absent or null is the default; "" is not a mode
		mode = m
	}
	want := http.StatusOK
	switch {
	case len(body) > 1<<20:
		want = http.StatusRequestEntityTooLarge
	case !ok, userID == "", !validText(userID, 256), !slices.Contains([]string{"home", "link", "cloud"}, mode), !validText(token, 4096):
		want = http.StatusBadRequest
	case userKey && userID != fuzzUser:
		want = http.StatusForbidden
	}

	key := e.AdminKey
	if userKey {
		key = e.UserKey
	}
	before := e.snapshot(t, userID)
	ans := e.post(t, path, key, body)
	res := e.checkREST(t, what, ans, "success", string(body))
	if ans.Status != want {
		t.Fatalf("%s: status %d, want %d: %s", what, ans.Status, want, ans.Body)
	}
	if want == http.StatusBadRequest && userID == "" && ok && !jsonSpace(body) && res["error"] != "userId is required" {
		t.Errorf("%s: error %q, want \"userId is required\"", what, res["error"])
	}
	if ans.Status != http.StatusOK {
		if after := e.snapshot(t, userID); after != before {
			t.Fatalf("%s: refused with %d, but the registry changed:\nbefore %s\nafter  %s", what, ans.Status, before, after)
		}
		return
	}
	message := "Home installation registered"
	if link {
		message = "OpenClaw instance linked"
	}
	if res["message"] != message || res["dashboardUrl"] != "https://agentbot.raveculture.xyz/dashboard" || len(res) != 3 {
		t.Errorf("%s: 200 body %s, want success, message %q and dashboardUrl", what, ans.Body, message)
	}

	// Stored with exactly the userId, mode and token sent.
	got := e.gql(t, `query($u: String!) { installation(userId: $u) { userId mode gatewayToken } }`, map[string]any{"u": userID})
	if len(got.Errors) > 0 {
		t.Fatalf("%s: reading back %q: %+v", what, userID, got.Errors)
	}
	inst, _ := got.Data["installation"].(map[string]any)
	switch {
	case inst == nil:
		t.Fatalf("%s: answered 200 but installation(userId: %q) is null", what, userID)
	case inst["userId"] != userID:
		t.Fatalf("%s: sent userId %q, stored %q", what, userID, inst["userId"])
	case inst["mode"] != strings.ToUpper(mode):
		t.Errorf("%s: mode %v stored, want %s", what, inst["mode"], strings.ToUpper(mode))
	case token != "" && inst["gatewayToken"] != token:
		t.Errorf("%s: gatewayToken %q stored, want %q", what, inst["gatewayToken"], token)
	}
}

// snapshot describes the registry as far as a refused request about userID
// could have changed it: how many installations there are, and userID's row.
func (e *fuzzEnv) snapshot(t testing.TB, userID string) string {
	t.Helper()
	ctx := context.Background()
	n, err := e.Resolver.Client.Installation.Query().Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprintf("%d installations", n)
	if userID != "" {
		inst, err := e.Resolver.Client.Installation.Query().Where(installation.UserID(userID)).Only(ctx)
		switch {
		case ent.IsNotFound(err):
		case err != nil:
			t.Fatal(err)
		default:
			s += fmt.Sprintf("; %q: id %s mode %s registered %s lastSeen %s token %q",
				userID, inst.ID, inst.Mode, inst.RegisteredAt, inst.LastSeen, inst.GatewayToken)
		}
	}
	return s
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + fmt.Sprintf("… (%d bytes)", len(b))
	}
	return string(b)
}

// ---------------------------------------------------------------------------
// heartbeat

func FuzzHeartbeat(f *testing.F) {
	e := newFuzzEnv(f)
	e.post(f, "/api/register-home", e.AdminKey, []byte(`{"userId":"beating"}`))
	for _, b := range registerSeeds() {
		f.Add(b)
	}
	for _, s := range []string{`{"userId":"beating"}`, `{"userId":"never-registered"}`, `{"userId":""}`, `{"userId":null}`} {
		f.Add([]byte(s))
	}
	count := func(t testing.TB) int {
		n, err := e.Resolver.Client.Installation.Query().Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	installations := count(f)
	inputs := 0
	f.Fuzz(func(tt *testing.T, body []byte) {
		t := fuzzT{tt}
		what := fmt.Sprintf("POST /api/heartbeat %q", truncate(body))
		// 200 for an empty body, null, an object without userId or with
		// a valid one (known or not); 400 for anything else.
		b, ok := parseBody(body, "userId")
		want := http.StatusOK
		if userID := b["userId"]; !ok || (userID != "" && !validText(userID, 256)) {
			want = http.StatusBadRequest
		}
		ans := e.post(t, "/api/heartbeat", "", body)
		res := e.checkREST(t, what, ans, "success", string(body))
		if ans.Status != want {
			t.Fatalf("%s: status %d, want %d: %s", what, ans.Status, want, ans.Body)
		}
		if ans.Status == http.StatusOK {
			if ts := e.Clock.Now().UTC().Format(time.RFC3339); res["timestamp"] != ts || len(res) != 2 {
				t.Errorf("%s: body %s, want success and timestamp %s", what, ans.Body, ts)
			}
		}
		// A heartbeat never creates an installation. Write the pending
		// heartbeats now and then, as the flusher would, and recount.
		if inputs++; inputs%64 == 0 {
			if err := e.Resolver.Settle(context.Background()); err != nil {
				t.Fatalf("settle: %v", err)
			}
			if n := count(t); n != installations {
				t.Fatalf("heartbeats changed the number of installations from %d to %d", installations, n)
			}
		}
		e.alive(t)
	})
}

// ---------------------------------------------------------------------------
// installations

// cursorSeed is a cursor as the GraphQL and REST layers encode them, with
// any ID and value: well-formed on the wire, whatever it holds.
func cursorSeed[T any](id T, value any) string {
	var b bytes.Buffer
	entgql.Cursor[T]{ID: id, Value: value}.MarshalGQL(&b)
	return strings.Trim(b.String(), `"`)
}

func FuzzInstallationsQuery(f *testing.F) {
	e := newFuzzEnv(f)
	for i, u := range []string{"list-0", fuzzUser, "list-1", "list-2", "list-3"} {
		e.post(f, "/api/register-home", e.AdminKey, []byte(`{"userId":"`+u+`","mode":"`+[]string{"home", "link", "cloud"}[i%3]+`"}`))
		e.Clock.Advance(time.Minute)
	}
	when := time.Date(2026, 3, 21, 14, 0, 0, 0, time.UTC)
	cursors := []string{
		cursorSeed("ins_01jq0000000000000000000000", when),
		cursorSeed("ins_zzzz", when.Add(time.Hour)),
		cursorSeed("", when),
		cursorSeed("ins_x", nil),
		cursorSeed("ins_x", "not a time"),
		cursorSeed("ins_x", 42),
		cursorSeed("ins_x", -1.5),
		cursorSeed("ins_x", true),
		cursorSeed("ins_x", []any{1, "a"}),
		cursorSeed("ins_x", map[string]any{"a": 1}),
		cursorSeed(42, when),
		cursorSeed("x' OR '1'='1", "'; DROP TABLE installations; --"),
		"", "garbage", "!!!!", "gqJpZA", "AAAA", "=", strings.Repeat("A", 2000),
	}
	for _, c := range cursors {
		f.Add("2", c, uint8(3))
		f.Add("", c, uint8(2))
	}
	for _, s := range []struct {
		limit, cursor string
		flags         uint8
	}{
		{"", "", 0}, {"", "", 8}, {"2", "", 1}, {"2", "", 9}, {"1", "", 1}, {"1000", "", 1}, {"1001", "", 1},
		{"0", "", 1}, {"-1", "", 1}, {"+3", "", 1}, {" 3", "", 1}, {"3 ", "", 1}, {"0x10", "", 1}, {"1e3", "", 1},
		{"3.0", "", 1}, {"99999999999999999999", "", 1}, {"-9223372036854775808", "", 1}, {"", "", 1},
		{"abc", "", 1}, {"' OR 1=1 --", "", 1}, {"٣", "", 1}, {"3\x00", "", 1}, {"\xff", "", 1},
		{"2&limit=3", "", 5}, {"2;3", "", 5}, {"%zz", "", 5}, {"2&cursor=", "", 5}, {"", "&limit=2", 7},
		{"2", "garbage&limit=0", 7}, {"2%26cursor%3Dx", "", 5},
	} {
		f.Add(s.limit, s.cursor, s.flags)
	}

	f.Fuzz(func(tt *testing.T, limit, cursor string, flags uint8) {
		t := fuzzT{tt}
		// flags: 1 sends limit, 2 sends cursor, 4 writes them into the
		// query unescaped, 8 asks with the user key.
		var query string
		if flags&4 != 0 {
			var parts []string
			if flags&1 != 0 {
				parts = append(parts, "limit="+limit)
			}
			if flags&2 != 0 {
				parts = append(parts, "cursor="+cursor)
			}
			query = strings.Join(parts, "&")
			for _, c := range []byte(query) {
				if c <= ' ' || c >= 0x7f || c == '#' {
					return // not something a client sends in a request line
				}
			}
		} else {
			v := url.Values{}
			if flags&1 != 0 {
				v.Set("limit", limit)
			}
			if flags&2 != 0 {
				v.Set("cursor", cursor)
			}
			query = v.Encode()
		}
		key, user := e.AdminKey, flags&8 != 0
		if user {
			key = e.UserKey
		}
		target := "/api/installations"
		if query != "" {
			target += "?" + query
		}
		what := "GET " + target
		ans := e.list(t, target, key)
		res := e.checkREST(t, what, ans, "success", query)

		// The contract's answer: without paging parameters the whole list;
		// a limit that is not 1…1000 is a 400; a cursor this server could
		// not have made may be a 400; anything else a page.
		values, _ := url.ParseQuery(query)
		paged := values.Has("limit") || values.Has("cursor")
		n := 100
		badLimit := false
		if values.Has("limit") {
			var err error
			n, err = strconv.Atoi(values.Get("limit"))
			badLimit = err != nil || n < 1 || n > 1000
		}
		switch {
		case badLimit:
			if ans.Status != http.StatusBadRequest {
				t.Fatalf("%s: status %d, want 400 for limit %q: %s", what, ans.Status, values.Get("limit"), ans.Body)
			}
			return
		case values.Has("cursor") && ans.Status == http.StatusBadRequest:
			if msg, _ := res["error"].(string); !strings.HasPrefix(msg, "cursor is not one this server returned") {
				t.Errorf("%s: error %q for a bad cursor", what, res["error"])
			}
			return
		case ans.Status != http.StatusOK:
			t.Fatalf("%s: status %d, want 200: %s", what, ans.Status, ans.Body)
		}
		e.checkListing(t, what, ans, res, user, paged, n)
		if next, ok := res["nextCursor"].(string); ok {
			again := "/api/installations?" + url.Values{"limit": {strconv.Itoa(n)}, "cursor": {next}}.Encode()
			if ans := e.list(t, again, key); ans.Status != http.StatusOK {
				t.Fatalf("GET %s (the nextCursor of %s): status %d: %s", again, what, ans.Status, ans.Body)
			}
		}
		e.alive(t)
	})
}

func (e *fuzzEnv) list(t testing.TB, target, key string) fuzzAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.URL+target, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	return e.send(t, req)
}

// checkListing checks a 200 listing: the count matches the entries, each
// entry has exactly the documented fields, the order is newest lastSeen
// first, a user sees only its own installation, and a page holds at most
// limit entries and says whether there is a next one.
func (e *fuzzEnv) checkListing(t testing.TB, what string, ans fuzzAnswer, res map[string]any, user, paged bool, limit int) {
	t.Helper()
	list, ok := res["installations"].([]any)
	if !ok {
		t.Fatalf("%s: installations is not a list: %s", what, ans.Body)
	}
	if c, _ := res["count"].(json.Number); c.String() != strconv.Itoa(len(list)) {
		t.Errorf("%s: count %v for %d installations", what, res["count"], len(list))
	}
	if paged {
		if _, has := res["nextCursor"]; !has || len(list) > limit {
			t.Errorf("%s: page of %d with limit %d, nextCursor %v", what, len(list), limit, res["nextCursor"])
		}
	} else if total, _ := e.Resolver.Client.Installation.Query().Count(context.Background()); !user && len(list) != total {
		t.Errorf("%s: %d installations listed, %d stored", what, len(list), total)
	}
	last := ""
	for _, item := range list {
		inst, _ := item.(map[string]any)
		seen, _ := inst["lastSeen"].(string)
		if len(inst) != 5 || inst["userId"] == nil || inst["mode"] == nil || inst["registeredAt"] == nil || inst["status"] == nil || !strings.HasSuffix(seen, "Z") {
			t.Errorf("%s: entry %v does not have exactly userId, mode, registeredAt, lastSeen, status", what, item)
		}
		if user && inst["userId"] != fuzzUser {
			t.Errorf("%s: the user key sees %v", what, inst["userId"])
		}
		if last != "" && seen > last {
			t.Errorf("%s: not newest lastSeen first: %s after %s", what, seen, last)
		}
		last = seen
	}
}

// ---------------------------------------------------------------------------
// GraphQL

// rawJSONString quotes s as a JSON string but leaves its bytes as they are,
// invalid UTF-8 included, so the server's decoder sees them.
func rawJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func FuzzGraphQL(f *testing.F) {
	e := newFuzzEnv(f)
	e.post(f, "/api/register-home", e.AdminKey, []byte(`{"userId":"gql-1","mode":"cloud","gatewayToken":"secret-token"}`))
	e.post(f, "/api/register-link", e.AdminKey, []byte(`{"userId":"gql-2"}`))

	const (
		inst    = `query($u: String!) { installation(userId: $u) { id userId mode status registeredAt lastSeen gatewayToken } }`
		reg     = `mutation($i: RegisterInstallationInput!) { registerInstallation(input: $i) { userId mode status } }`
		page    = `query($c: Cursor, $n: Int, $w: InstallationWhereInput) { installations(after: $c, first: $n, where: $w) { totalCount edges { cursor node { userId mode } } pageInfo { hasNextPage endCursor } } }`
		keyMut  = `mutation($i: CreateAPIKeyInput!) { createAPIKey(input: $i) { apiKey { userId plan role features expiresAt } } }`
		fullKey = `{ apiKeys(first: 3, orderBy: {field: CREATED_AT, direction: DESC}) { totalCount edges { node { id userId plan role features label revokedAt expiresAt lastUsedAt } } } }`
	)
	inlineDeep := "query { " + strings.Repeat("... on Query { ", 40) + "viewer { userId }" + strings.Repeat(" }", 40) + " }"
	notDeep := `{"w":` + strings.Repeat(`{"not":`, 1200) + `{"userId":"x"}` + strings.Repeat("}", 1200) + `}`
	andDeep := `{"w":` + strings.Repeat(`{"and":[`, 600) + `{"userId":"x"}` + strings.Repeat("]}", 600) + `}`
	many := make([]string, 1200)
	for i := range many {
		many[i] = fmt.Sprintf("%q", fmt.Sprint(i))
	}
	manyIn := `{"w":{"userIdIn":[` + strings.Join(many, ",") + `]}}`
	wideOr := `{"w":{"or":[` + strings.Repeat(`{"userId":"x"},`, 1100) + `{"userId":"y"}]}}`
	hugeIn := `{"w":{"userIdIn":[` + strings.Repeat(`"",`, 33000) + `""]}}`
	for _, s := range []struct{ query, vars string }{
		// Valid operations.
		{`{ viewer { userId plan role features keyId } }`, ``},
		{`{ fleetSummary { total active inactive home link cloud } }`, `{}`},
		{inst, `{"u":"gql-1"}`},
		{inst, `{"u":"nobody"}`},
		{reg, `{"i":{"userId":"gql-new","mode":"LINK","gatewayToken":"t"}}`},
		{page, `{"n":2}`},
		{page, `{"n":1,"w":{"modeIn":["HOME","CLOUD"],"userIdContains":"gql"}}`},
		{page, `{"c":"` + cursorSeed("ins_x", time.Date(2026, 3, 21, 12, 0, 0, 0, time.UTC)) + `","n":1}`},
		{fullKey, ``},
		{keyMut, `{"i":{"userId":"gql-key","plan":"COLLECTIVE","features":["a","b"],"label":"seed"}}`},
		{`mutation { heartbeat(userId: "gql-1") { timestamp } }`, ``},
		{`mutation { deregisterInstallation(userId: "nobody") }`, ``},
		{`mutation { revokeAPIKey(id: "key_nonexistent") { id } }`, ``},
		{`{ node(id: "ins_nonexistent") { id } }`, ``},
		{`{ nodes(ids: ["ins_x", "key_x", "", "nope"]) { id } }`, ``},
		{`{ __typename }`, ``},
		{`{ __schema { queryType { name } mutationType { name } } }`, ``},
		{`{ __type(name: "Installation") { fields { name type { name kind } } } }`, ``},
		{`query A { viewer { userId } } query B { fleetSummary { total } }`, ``},
		{`{ viewer @skip(if: true) { userId } fleetSummary @include(if: false) { total } }`, ``},
		{`{ a: viewer { userId } b: viewer { userId } c: fleetSummary { total } }`, ``},
		// Wrong types and nulls in variables and arguments.
		{inst, `{"u":5}`}, {inst, `{"u":null}`}, {inst, `{"u":["a"]}`}, {inst, `{"u":{"$ne":1}}`}, {inst, `{"u":1e999}`},
		{inst, `{}`}, {inst, `null`}, {inst, `5`}, {inst, `[]`}, {inst, `"u"`}, {inst, `{`}, {inst, `{"u":"x"}}`},
		{reg, `{"i":null}`}, {reg, `{"i":{"userId":5}}`}, {reg, `{"i":{"userId":"x","mode":"home"}}`},
		{reg, `{"i":{"userId":"x","mode":7}}`}, {reg, `{"i":{"userId":"x","extra":1}}`}, {reg, `{"i":"x"}`},
		{reg, `{"i":{"userId":"x","gatewayToken":{"a":[1]}}}`},
		{page, `{"n":-1}`}, {page, `{"n":1001}`}, {page, `{"n":99999999999}`}, {page, `{"n":1.5}`}, {page, `{"n":"2"}`},
		{page, `{"c":5}`}, {page, `{"c":"garbage"}`}, {page, `{"c":{"i":"x"}}`}, {page, `{"c":""}`},
		{page, `{"c":"` + cursorSeed("ins_x", map[string]any{"a": 1}) + `"}`},
		{page, `{"c":"` + cursorSeed("ins_x", []any{1}) + `"}`},
		{page, `{"c":"` + cursorSeed(7, true) + `"}`},
		{page, `{"w":{"userIdIn":[]}}`}, {page, `{"w":{"not":null}}`}, {page, `{"w":{"status":"ACTIVE","or":[]}}`},
		{page, `{"w":{"userIdGT":"\u0000"}}`}, {page, `{"w":{"idIn":["' OR 1=1 --"]}}`},
		{page, `{"w":{"userIdContainsFold":"%_\\"}}`}, {page, `{"w":{"lastSeenGT":"not a time"}}`},
		{page, notDeep}, {page, andDeep}, {page, manyIn}, {page, wideOr}, {page, hugeIn},
		{keyMut, `{"i":{"userId":"k","expiresAt":"2020-01-01T00:00:00Z"}}`},
		{keyMut, `{"i":{"userId":"k","expiresAt":"not a time"}}`}, {keyMut, `{"i":{"userId":"k","expiresAt":5}}`},
		{keyMut, `{"i":{"userId":"k","features":[""]}}`}, {keyMut, `{"i":{"userId":"k","features":null}}`},
		{keyMut, `{"i":{"userId":"k","label":"` + strings.Repeat("l", 257) + `"}}`},
		{`{ installations(first: 1001) { totalCount } }`, ``},
		{`{ installations(first: -1) { totalCount } }`, ``},
		{`{ installations(first: 99999999999) { totalCount } }`, ``},
		{`{ installations(last: 2, orderBy: {field: LAST_SEEN, direction: ASC}) { edges { node { userId } } } }`, ``},
		{`{ installations(first: 1000) { edges { node { userId } } } apiKeys(first: 1000) { edges { node { id } } } }`, ``},
		// Hostile strings.
		{`{ installation(userId: "x' OR '1'='1") { id } }`, ``},
		{`{ installation(userId: "'; DROP TABLE installations; --") { id } }`, ``},
		{`{ installation(userId: "a\u0000b") { id } }`, ``},
		{`{ installation(userId: "\ud800") { id } }`, ``},
		{`{ installation(userId: "` + strings.Repeat("x", 300) + `") { id } }`, ``},
		{inst, "{\"u\":\"\xff\xfe\"}"},
		{"{ installation(userId: \"\xff\") { id } }", ``},
		{"{ viewer \x00 { userId } }", ``},
		{"{ viewer { userId } }\x00", ``},
		{"\xef\xbb\xbf{ viewer { userId } }", ``},
		// GraphQL injection and malformed documents.
		{`{ viewer { userId } } mutation { deregisterInstallation(userId: "gql-1") }`, ``},
		{`{ installation(userId: "x\") { id } } mutation { deregisterInstallation(userId: \"gql-1\") }") { id } }`, ``},
		{``, ``}, {` `, ``}, {`{`, ``}, {`}`, ``}, {`query {`, ``}, {`{ viewer { userId }`, ``}, {`"unterminated`, ``},
		{`{ viewer { userId } } garbage`, ``}, {`{ nope }`, ``}, {`{ viewer { nope } }`, ``}, {`{ viewer }`, ``},
		{`subscription { viewer { userId } }`, ``}, {`mutation { viewer { userId } }`, ``},
		{`query($u: Int!) { installation(userId: $u) { id } }`, `{"u":1}`},
		{`query($u: String!, $u: String!) { installation(userId: $u) { id } }`, `{"u":"a"}`},
		{`{ viewer { ...F } } fragment F on Viewer { ...G } fragment G on Viewer { ...F }`, ``},
		{`{ viewer { ...F } } fragment F on Query { viewer { userId } }`, ``},
		{`{ viewer { userId @deprecated } }`, ``}, {`{ viewer @nope { userId } }`, ``},
		{inlineDeep, ``},
		{"{" + strings.Repeat(" a {", 50) + " b" + strings.Repeat(" }", 50) + " }", ``},
		{"{" + strings.Repeat(" viewer { userId }", 200) + " }", ``},
		{`{ __schema { types { name fields { name args { name } type { name ofType { name ofType { name } } } } } } }`, ``},
		// Hostile variables documents.
		{`{ viewer { userId } }`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001)},
		{`{ viewer { userId } }`, `{"a":` + strings.Repeat(`{"a":`, 3000) + `1` + strings.Repeat("}", 3001)},
		{`{ viewer { userId } }`, `{"a":1e999999}`}, {`{ viewer { userId } }`, `{"a":"` + strings.Repeat("v", 5000) + `"}`},
		{`{ viewer { userId } }`, "{\"a\":\"\x00\"}"},
	} {
		f.Add(s.query, s.vars)
	}

	f.Fuzz(func(tt *testing.T, query, vars string) {
		t := fuzzT{tt}
		body := `{"query":` + rawJSONString(query)
		if vars != "" {
			body += `,"variables":` + vars
		}
		body += "}"
		what := fmt.Sprintf("POST /graphql %q", truncate([]byte(body)))
		ans := e.post(t, "/graphql", e.AdminKey, []byte(body))
		if ans.Status >= 500 || (ans.Status != http.StatusOK && ans.Status < 400) {
			t.Errorf("%s: status %d, want 200 or 4xx: %s", what, ans.Status, ans.Body)
		}
		if ct := ans.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", what, ct)
		}
		var res map[string]json.RawMessage
		if err := json.Unmarshal(ans.Body, &res); err != nil || res == nil {
			t.Fatalf("%s: status %d, body is not a JSON object (%v): %q", what, ans.Status, err, ans.Body)
		}
		_, hasData := res["data"]
		rawErrs, hasErrs := res["errors"]
		if !hasData && !hasErrs {
			t.Errorf("%s: answer has neither data nor errors: %s", what, ans.Body)
		}
		var errsList []struct {
			Message    *string        `json:"message"`
			Extensions map[string]any `json:"extensions"`
		}
		if hasErrs {
			if err := json.Unmarshal(rawErrs, &errsList); err != nil || len(errsList) == 0 {
				t.Fatalf("%s: errors is not a non-empty list of errors: %s", what, rawErrs)
			}
		}
		for _, ge := range errsList {
			msg := ""
			if ge.Message != nil {
				msg = *ge.Message
			}
			code, _ := ge.Extensions["code"].(string)
			switch {
			case strings.TrimSpace(msg) == "":
				t.Errorf("%s: error without a message: %s", what, rawErrs)
			case code == "INTERNAL_SERVER_ERROR":
				t.Errorf("%s: internal server error: %s\nserver log: %s", what, rawErrs, e.logTail())
			case leak(msg, body) != "":
				t.Errorf("%s: error message shows an internal detail (%q): %q", what, leak(msg, body), msg)
			}
		}
		e.alive(t)
	})
}
