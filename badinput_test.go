package main

// Hostile input to the REST layer (CONTRACT.md section 7): every malformed
// request gets a clear 4xx JSON answer, never a 500 or a panic, and changes
// nothing; legal but hostile strings are stored verbatim and harmlessly; no
// secret reaches the logs.

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// bxEndpoints are the POST endpoints that read a body.
var bxEndpoints = []string{"/api/register-home", "/api/register-link", "/api/heartbeat"}

const (
	bxRegister = "register" // register-home and register-link only
	bxHome     = "home"     // register-home only
)

// bxCase is one hostile body, sent to the endpoints only names (all of
// bxEndpoints when empty), answered with want (400 when 0).
type bxCase struct {
	name string
	body string
	only string
	want int
}

func (c bxCase) endpoints() []string {
	switch c.only {
	case bxRegister:
		return bxEndpoints[:2]
	case bxHome:
		return bxEndpoints[:1]
	}
	return bxEndpoints
}

func bxNested(open, close string, depth int, inner string) string {
	return strings.Repeat(open, depth) + inner + strings.Repeat(close, depth)
}

// bxCases aim at the existing installation "victim": were any of them
// accepted, victim's mode, lastSeen or token would change.
func bxCases() []bxCase {
	const deep = 100_000
	return []bxCase{
		// Not an object.
		{name: "top-level null", body: `null`},
		{name: "top-level empty array", body: `[]`},
		{name: "top-level array of objects", body: `[{"userId":"victim","mode":"cloud"}]`},
		{name: "top-level string", body: `"victim"`},
		{name: "top-level number", body: `42`},
		{name: "top-level float", body: `-1.5e300`},
		{name: "top-level bool", body: `true`},
		{name: "deeply nested top-level arrays", body: bxNested("[", "]", deep, "")},

		// Trailing garbage after the object.
		{name: "trailing word", body: `{"userId":"victim","mode":"link"} garbage`},
		{name: "two objects", body: `{"userId":"victim","mode":"link"}{"userId":"victim"}`},
		{name: "trailing comma", body: `{"userId":"victim","mode":"link"},`},
		{name: "trailing bracket", body: `{"userId":"victim","mode":"link"}]`},
		{name: "trailing null", body: `{"userId":"victim","mode":"link"}null`},
		{name: "trailing NUL byte", body: "{\"userId\":\"victim\",\"mode\":\"link\"}\x00"},

		// Not JSON, or broken JSON.
		{name: "truncated object", body: `{"userId":"victim","mode":"link"`},
		{name: "truncated string", body: `{"userId":"vic`},
		{name: "lone brace", body: `{`},
		{name: "closing brace", body: `}`},
		{name: "comma before brace", body: `{"userId":"victim","mode":"link",}`},
		{name: "single quotes", body: `{'userId':'victim','mode':'link'}`},
		{name: "bare keys", body: `{userId:"victim",mode:"link"}`},
		{name: "missing comma", body: `{"userId":"victim" "mode":"link"}`},
		{name: "missing value", body: `{"userId":"victim","mode":}`},
		{name: "raw newline in string", body: "{\"userId\":\"vic\ntim\"}"},
		{name: "form encoded", body: `userId=victim&mode=link`},
		{name: "XML", body: `<registration><userId>victim</userId></registration>`},
		{name: "NUL bytes", body: "\x00\x00\x00\x00"},
		{name: "NaN", body: `{"userId":"victim","mode":"link","n":NaN}`},

		// Wrong types.
		{name: "userId number", body: `{"userId":1}`},
		{name: "userId huge number", body: `{"userId":1e400}`},
		{name: "userId bool", body: `{"userId":true}`},
		{name: "userId object", body: `{"userId":{"id":"victim"}}`},
		{name: "userId operator object", body: `{"userId":{"$ne":null}}`},
		{name: "userId empty array", body: `{"userId":[]}`},
		{name: "userId array", body: `{"userId":["victim"]}`},
		{name: "userId duplicate with number", body: `{"userId":"victim","userId":7}`},
		{name: "field names in other case", body: `{"USERID":"victim","MODE":"link","GATEWAYTOKEN":"x"}`, only: bxRegister},
		{name: "userId null with mode", body: `{"userId":null,"mode":"cloud"}`, only: bxRegister},
		{name: "mode number", body: `{"userId":"victim","mode":1}`, only: bxRegister},
		{name: "mode array", body: `{"userId":"victim","mode":["link"]}`, only: bxRegister},
		{name: "mode object", body: `{"userId":"victim","mode":{"value":"link"}}`, only: bxRegister},
		{name: "mode bool", body: `{"userId":"victim","mode":true}`, only: bxRegister},
		{name: "gatewayToken number", body: `{"userId":"victim","gatewayToken":12345}`, only: bxRegister},
		{name: "gatewayToken object", body: `{"userId":"victim","gatewayToken":{"t":"x"}}`, only: bxRegister},
		{name: "gatewayToken array", body: `{"userId":"victim","gatewayToken":["x"]}`, only: bxRegister},
		{name: "gatewayToken bool", body: `{"userId":"victim","gatewayToken":false}`, only: bxRegister},

		// Deeply nested values.
		{name: "deeply nested arrays as an extra field", body: `{"userId":"victim","mode":"link","extra":` + bxNested("[", "]", deep, "") + `}`},
		{name: "deeply nested arrays as userId", body: `{"userId":` + bxNested("[", "]", deep, `"victim"`) + `}`},
		{name: "deeply nested objects as an extra field", body: `{"userId":"victim","mode":"link","extra":` + bxNested(`{"a":`, "}", deep, "1") + `}`},
		{name: "deeply nested objects as gatewayToken", body: `{"userId":"victim","gatewayToken":` + bxNested(`{"a":`, "}", deep, `"x"`) + `}`, only: bxRegister},

		// Huge strings (under the 1 MiB body limit).
		{name: "huge userId", body: `{"userId":"victim` + strings.Repeat("a", 300_000) + `"}`},
		{name: "userId of 257 characters", body: `{"userId":"` + strings.Repeat("v", 257) + `"}`},
		{name: "huge gatewayToken", body: `{"userId":"victim","gatewayToken":"` + strings.Repeat("t", 500_000) + `"}`, only: bxRegister},
		{name: "huge mode", body: `{"userId":"victim","mode":"` + strings.Repeat("link", 50_000) + `"}`, only: bxHome},

		// Invalid UTF-8.
		{name: "invalid byte in userId", body: "{\"userId\":\"vic\xfftim\"}"},
		{name: "overlong encoding in userId", body: "{\"userId\":\"victim\xc0\xaf\"}"},
		{name: "encoded surrogate in userId", body: "{\"userId\":\"victim\xed\xa0\x80\"}"},
		{name: "truncated sequence in userId", body: "{\"userId\":\"victim\xe2\x82\"}"},
		{name: "invalid byte in an extra field", body: "{\"userId\":\"victim\",\"mode\":\"link\",\"note\":\"\xff\xfe\"}"},
		{name: "invalid bytes in gatewayToken", body: "{\"userId\":\"victim\",\"gatewayToken\":\"tok\xc3\x28en\"}", only: bxRegister},

		// Control characters and NUL, escaped in otherwise valid JSON.
		{name: "NUL inside userId", body: `{"userId":"vic\u0000tim"}`},
		{name: "NUL after userId", body: `{"userId":"victim\u0000"}`},
		{name: "NUL userId", body: `{"userId":"\u0000"}`},
		{name: "newline in userId", body: `{"userId":"victim\n"}`},
		{name: "CRLF in userId", body: `{"userId":"victim\r\nX-Injected: 1"}`},
		{name: "tab in userId", body: `{"userId":"vic\ttim"}`},
		{name: "escape sequence in userId", body: `{"userId":"\u001b[31mvictim"}`},
		{name: "DEL in userId", body: `{"userId":"victim\u007f"}`},
		{name: "C1 control in userId", body: `{"userId":"vic\u0085tim"}`},
		{name: "NUL in gatewayToken", body: `{"userId":"victim","gatewayToken":"tok\u0000en"}`, only: bxRegister},
		{name: "newline in gatewayToken", body: `{"userId":"victim","gatewayToken":"tok\nen"}`, only: bxRegister},
		{name: "terminal escape in gatewayToken", body: `{"userId":"victim","gatewayToken":"\u001b]0;pwned\u0007"}`, only: bxRegister},

		// Injection through fields that are validated.
		{name: "GraphQL injection in mode", body: `{"userId":"victim","mode":"link\") { id } } mutation { deregisterInstallation(userId: \"victim\") }"}`, only: bxHome},
		{name: "SQL injection in mode", body: `{"userId":"victim","mode":"link'; DELETE FROM installations; --"}`, only: bxHome},
		{name: "enum name as mode", body: `{"userId":"victim","mode":"LINK"}`, only: bxHome},
	}
}

// bxState is what a refused request must not change: the admin listing
// (every field of every installation) and victim's gateway token.
func bxState(t *testing.T, a *app) string {
	t.Helper()
	a.settle(t)
	_, res := rxList(t, a, a.AdminKey)
	tok, _ := rxToken(t, a, "victim")
	s := res.Raw + "\ntoken="
	if tok != nil {
		s += *tok
	}
	return s
}

func TestBadInputRefused(t *testing.T) {
	rxSubtests(t,
		"bodies", bxRefusedBodies,
		"authorization headers", bxAuthorizationHeaders,
	)
}

func bxRefusedBodies(t *testing.T, a *app) {
	a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, `{"userId":"victim","mode":"cloud","gatewayToken":"victim-token"}`)
	a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, `{"userId":"bystander","mode":"home"}`)
	// Time moves on, so an accepted request would show in lastSeen.
	a.Clock.Advance(time.Minute)
	before := bxState(t, a)

	for _, c := range bxCases() {
		want := c.want
		if want == 0 {
			want = http.StatusBadRequest
		}
		for i, path := range c.endpoints() {
			// Installers post with curl -d: form-encoded content type.
			ct := "application/json"
			if i == 0 {
				ct = "application/x-www-form-urlencoded"
			}
			h := map[string]string{"Content-Type": ct}
			if path != "/api/heartbeat" {
				h["Authorization"] = "Bearer " + a.AdminKey
			}
			send := rxRequest
			if len(c.body) > 16<<10 {
				send = rxSendBig
			}
			res := send(t, a, http.MethodPost, path, h, strings.NewReader(c.body))
			rxExpectError(t, path+" "+c.name, res, want, "success", "")
		}
	}

	if after := bxState(t, a); after != before {
		t.Errorf("refused requests changed the state:\nbefore %s\n after %s", before, after)
	}
	bxAlive(t, a)
}

// bxAlive asserts the server still answers and logged no panic.
func bxAlive(t *testing.T, a *app) {
	t.Helper()
	res := a.do(t, http.MethodGet, "/healthz", "", "")
	if res.Status != http.StatusOK {
		t.Errorf("/healthz after hostile input: %d %s", res.Status, res.Raw)
	}
	rxExpectExact(t, "validate-key after hostile input", rxValidate(t, a, "Bearer "+a.AdminKey), rxValidBody(t, "admin", "network", rxDefaultFeatures))
	if logs := a.Logs.String(); strings.Contains(strings.ToLower(logs), "panic") {
		t.Errorf("the server logged a panic:\n%s", logs)
	}
}

// bxLegal are strings that look like attacks but are legal userIds: they are
// stored verbatim and do nothing else.
var bxLegal = []string{
	`' OR '1'='1`,
	`victim' --`,
	`victim'; DROP TABLE installations; --`,
	`x"; DROP TABLE api_keys; --`,
	`'); DELETE FROM installations WHERE ('1'='1`,
	`1; UPDATE installations SET mode='cloud'`,
	`' UNION SELECT key_hash, user_id FROM api_keys --`,
	`%`,
	`_`,
	`victim%`,
	`%victim%`,
	`vic_im`,
	`\`,
	`\'; --`,
	`$1`,
	`?`,
	`:userId`,
	`") { id } } mutation { deregisterInstallation(userId: "victim") } #`,
	`{__schema{types{name}}}`,
	`query { installations { totalCount } }`,
	`$userId @include(if: false)`,
	`<script>alert(1)</script>`,
	`{{7*7}}`,
	`${jndi:ldap://example.test/a}`,
	`../../etc/passwd`,
	"\u202eevil",
	"zero\u200bwidth",
	"日本語ユーザー",
	"🦀 crab",
	`"quoted"`,
}

func TestBadInputLegalHostileStrings(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		t0 := a.Clock.Now()
		a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, `{"userId":"victim","mode":"cloud","gatewayToken":"victim-token"}`)
		a.do(t, http.MethodPost, "/api/register-link", a.AdminKey, `{"userId":"bystander"}`)
		a.Clock.Advance(time.Minute)

		for i, s := range bxLegal {
			body := rxBody(t, map[string]string{"userId": s, "mode": "home", "gatewayToken": "tok-" + s})
			res := a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, body)
			rxExpectExact(t, "register "+s, res, `{"success":true,"message":"Home installation registered","dashboardUrl":"`+rxDashboard+`"}`)
			if i%5 == 0 {
				// The same strings as gateway tokens and in the link endpoint.
				res = a.do(t, http.MethodPost, "/api/register-link", a.AdminKey, rxBody(t, map[string]string{"userId": s, "mode": s, "gatewayToken": s}))
				if res.Status != http.StatusOK {
					t.Errorf("register-link %q: %d %s", s, res.Status, res.Raw)
				}
			}
		}

		list, _ := rxList(t, a, a.AdminKey)
		if len(list) != 2+len(bxLegal) {
			t.Errorf("%d installations, want %d", len(list), 2+len(bxLegal))
		}
		seen := map[string]int{}
		for _, e := range list {
			seen[e.UserID]++
		}
		for i, s := range bxLegal {
			if seen[s] != 1 {
				t.Errorf("userId %q is listed %d times, want once", s, seen[s])
				continue
			}
			e := rxMustFind(t, list, s)
			wantMode, wantToken := "home", "tok-"+s
			if i%5 == 0 {
				wantMode, wantToken = "link", s
			}
			if e.Mode != wantMode {
				t.Errorf("%q: mode %q, want %q", s, e.Mode, wantMode)
			}
			// Exact lookup: no pattern matching on % or _.
			inst := rxInstallationGQL(t, a, s)
			if inst["userId"] != s || inst["gatewayToken"] != wantToken {
				t.Errorf("installation(userId: %q) returned userId %q, gatewayToken %v; want gatewayToken %q", s, inst["userId"], inst["gatewayToken"], wantToken)
			}
		}
		victim := rxMustFind(t, list, "victim")
		if victim.Mode != "cloud" {
			t.Errorf("victim's mode changed to %q", victim.Mode)
		}
		rxSameTime(t, "victim lastSeen", victim.LastSeen, t0)
		if got := rxMustFind(t, list, "bystander"); got.Mode != "link" {
			t.Errorf("bystander changed: %+v", got)
		}
		if tok, _ := rxToken(t, a, "victim"); tok == nil || *tok != "victim-token" {
			t.Errorf("victim's token changed to %v", tok)
		}

		// Heartbeats for pattern-like userIds touch only that exact userId.
		a.Clock.Advance(time.Minute)
		for _, s := range []string{`%`, `_`, `%victim%`, `' OR '1'='1`, `victim' --`} {
			res := a.do(t, http.MethodPost, "/api/heartbeat", "", rxBody(t, map[string]string{"userId": s}))
			if res.Status != http.StatusOK {
				t.Errorf("heartbeat %q: %d %s", s, res.Status, res.Raw)
			}
		}
		a.settle(t)
		list, _ = rxList(t, a, a.AdminKey)
		rxSameTime(t, "victim lastSeen after pattern heartbeats", rxMustFind(t, list, "victim").LastSeen, t0)
		rxSameTime(t, "bystander lastSeen after pattern heartbeats", rxMustFind(t, list, "bystander").LastSeen, t0)
		rxSameTime(t, "vic_im lastSeen after pattern heartbeats", rxMustFind(t, list, "vic_im").LastSeen, t0.Add(time.Minute))
		rxSameTime(t, "% lastSeen", rxMustFind(t, list, "%").LastSeen, t0.Add(2*time.Minute))

		// A user key whose userId looks like SQL sees, and may register, only itself.
		for _, s := range []string{`' OR '1'='1`, `%`} {
			key := rxUserKey(t, a, s, "solo")
			rxExpectExact(t, "validate "+s, rxValidate(t, a, "Bearer "+key), rxValidBody(t, s, "solo", rxDefaultFeatures))
			own, _ := rxList(t, a, key)
			if len(own) != 1 || own[0].UserID != s {
				t.Errorf("the key of %q lists %+v, want only itself", s, own)
			}
			res := a.do(t, http.MethodPost, "/api/register-home", key, `{"userId":"victim"}`)
			rxExpectError(t, s+" registers victim", res, http.StatusForbidden, "success", "")
		}
		bxAlive(t, a)
	})
}

func bxAuthorizationHeaders(t *testing.T, a *app) {
	prefix := a.AdminKey[:strings.LastIndex(a.AdminKey, "_")]
	headers := []string{
		"Bearer " + strings.Repeat("k", 60_000),
		"Bearer ' OR '1'='1",
		"Bearer ' OR 1=1 --",
		"Bearer %",
		"Bearer *",
		"Bearer null",
		"Bearer undefined",
		"Bearer " + prefix + "%",
		"Bearer " + prefix + "_%",
		"Bearer " + prefix,
		"Bearer clé-\u00e9\u00e8",
		"Bearer {__typename}",
		"Bearer Bearer " + a.AdminKey,
		strings.Repeat("Bearer ", 1000),
	}
	for _, h := range headers {
		what := h
		if len(what) > 60 {
			what = what[:60] + "…"
		}
		rxExpectError(t, "validate-key "+what, rxValidate(t, a, h), http.StatusUnauthorized, "valid", "")
		res := rxRequest(t, a, http.MethodPost, "/api/register-home", map[string]string{"Authorization": h}, strings.NewReader(`{"userId":"intruder"}`))
		rxExpectError(t, "register-home "+what, res, http.StatusUnauthorized, "success", "")
		res = rxRequest(t, a, http.MethodGet, "/api/installations", map[string]string{"Authorization": h}, nil)
		rxExpectError(t, "installations "+what, res, http.StatusUnauthorized, "success", "")
	}
	if list, _ := rxList(t, a, a.AdminKey); rxFind(list, "intruder") != nil {
		t.Errorf("refused keys registered installations: %+v", list)
	}
	bxAlive(t, a)
}

// TestBadInputNoSecretsInLogs: after a run of requests that carry raw keys
// and gateway tokens (accepted, refused and malformed), none of them is in
// the server's log.
func TestBadInputNoSecretsInLogs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		user := rxUserKey(t, a, "log-user", "solo")
		created := rxCreateKey(t, a, map[string]any{"userId": "log-user", "label": "created over GraphQL"})
		revoked := rxUserKey(t, a, "log-user", "solo")
		fake := "agb_zzzzzzzz_" + strings.Repeat("q", 52)
		tok1 := "gw-secret-one-" + randomHex(8)
		tok2 := "gw-secret-two-" + randomHex(8)
		tok3 := "gw-secret-three-" + randomHex(8)
		tok4 := "gw-secret-four-" + randomHex(8)

		rxValidate(t, a, "Bearer "+user)
		rxValidate(t, a, "Bearer "+created)
		rxValidate(t, a, "Bearer "+fake)
		rxValidate(t, a, "bearer "+revoked)
		rxRevoke(t, a, revoked)
		rxValidate(t, a, "Bearer "+revoked)
		a.do(t, http.MethodPost, "/api/register-home", revoked, `{"userId":"log-user","gatewayToken":"`+tok4+`"}`)
		a.do(t, http.MethodPost, "/api/register-home", user, `{"userId":"log-user","gatewayToken":"`+tok1+`"}`)
		a.do(t, http.MethodPost, "/api/register-link", created, `{"userId":"log-user","gatewayToken":"`+tok2+`"}`)
		a.do(t, http.MethodPost, "/api/register-home", user, `{"userId":"someone-else","gatewayToken":"`+tok3+`"}`)
		a.do(t, http.MethodPost, "/api/register-home", user, `{"userId":"log-user","gatewayToken":"`+tok3+`\u0000"}`)
		a.do(t, http.MethodPost, "/api/register-home", user, `{"userId":"log-user","gatewayToken":"`+tok3+strings.Repeat("x", 10_000)+`"}`)
		a.do(t, http.MethodPost, "/api/register-home", user, `{"userId":"log-user","gatewayToken":"`+tok3+`"} trailing`)
		a.do(t, http.MethodPost, "/api/register-home", user, "{\"userId\":\"log-user\",\"gatewayToken\":\""+tok3+"\xff\"}")
		a.do(t, http.MethodPost, "/api/register-home", user, `{"userId":"log-user","gatewayToken":"`+tok3+`","mode":"bogus"}`)
		a.do(t, http.MethodPost, "/api/register-home", fake, `{"userId":"log-user","gatewayToken":"`+tok3+`"}`)
		a.do(t, http.MethodPost, "/api/register-home", user, rxPadded(t, `{"userId":"log-user","gatewayToken":"`+tok3+`"}`, 1<<20+1))
		a.do(t, http.MethodPost, "/api/heartbeat", user, `{"userId":"log-user","gatewayToken":"`+tok3+`"}`)
		a.do(t, http.MethodGet, "/api/installations", user, "")
		a.do(t, http.MethodGet, "/api/nope?token="+tok3, user, "")
		a.do(t, http.MethodPut, "/api/register-home", user, `{"userId":"log-user","gatewayToken":"`+tok3+`"}`)
		a.mustGraphql(t, a.AdminKey, `query($u: String!) { installation(userId: $u) { gatewayToken } }`, map[string]any{"u": "log-user"})
		a.graphql(t, user, `mutation { registerInstallation(input: {userId: "log-user", gatewayToken: "`+tok3+`", mode: BOGUS}) { id } }`, nil)
		a.settle(t)

		// The request with the accepted token really stored it.
		if tok, _ := rxToken(t, a, "log-user"); tok == nil || *tok != tok2 {
			t.Fatalf("log-user's token is %v, want %s", tok, tok2)
		}
		logs := a.Logs.String()
		if !strings.Contains(logs, "api key created") && !strings.Contains(logs, "revoked") {
			t.Logf("no audit line in the log; the check below is only as good as what is logged:\n%s", logs)
		}
		secrets := map[string]string{
			"admin key": a.AdminKey, "user key": user, "GraphQL-created key": created, "revoked key": revoked, "unknown key": fake,
			"token 1": tok1, "token 2": tok2, "token 3": tok3, "token 4": tok4,
		}
		for name, raw := range []string{a.AdminKey, user, created, revoked} {
			// The secret part of a key (after its display prefix) is never logged either.
			secrets["secret part of key "+string(rune('A'+name))] = raw[strings.LastIndex(raw, "_")+1:]
		}
		for name, s := range secrets {
			if strings.Contains(logs, s) {
				t.Errorf("the log contains the %s %q:\n%s", name, s, logs)
			}
		}
	})
}
