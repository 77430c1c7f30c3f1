package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// /metrics exposes the registry's metrics after real traffic.
func TestMetrics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		a.register(t, a.AdminKey, "u1", "home")
		a.do(t, http.MethodPost, "/api/heartbeat", "", `{"userId":"u1"}`)
		a.do(t, http.MethodPost, "/api/validate-key", "agb_wrong", "")
		a.graphql(t, a.AdminKey, `{ fleetSummary { total } }`, nil)
		a.graphql(t, a.AdminKey, `{ installation(userId: "") { userId } }`, nil)
		a.settle(t)

		res := a.do(t, http.MethodGet, "/metrics", "", "")
		if res.Status != http.StatusOK {
			t.Fatalf("/metrics: %d", res.Status)
		}
		for _, want := range []string{
			`registry_http_requests_total{code="200",method="POST",route="register-home"} 1`,
			`registry_http_requests_total{code="200",method="POST",route="heartbeat"} 1`,
			`registry_http_requests_total{code="401",method="POST",route="validate-key"} 1`,
			`registry_http_request_duration_seconds_bucket{method="POST",route="heartbeat",le="+Inf"} 1`,
			`registry_graphql_operations_total{outcome="ok",type="query"} 1`,
			`registry_graphql_operations_total{outcome="error",type="query"} 1`,
			`registry_graphql_errors_total{code="BAD_USER_INPUT"} 1`,
			`registry_key_checks_total{result="invalid"} 1`,
			`registry_installations{mode="home",status="active"} 1`,
			`registry_installations{mode="link",status="inactive"} 0`,
			`registry_heartbeats_recorded_total 1`,
			`registry_heartbeats_rows_written_total 1`,
			`registry_key_uses_recorded_total`,
			`go_sql_open_connections{db_name="registry"}`,
		} {
			if !strings.Contains(res.Raw, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		if n := regexp.MustCompile(`registry_key_checks_total\{result="valid"\} (\d+)`).FindStringSubmatch(res.Raw); n == nil || n[1] == "0" {
			t.Errorf("no valid key checks counted")
		}
	})
}

// Every answer carries a request ID, a sane incoming one is kept, and the
// ID is on the log lines of that request.
func TestRequestIDs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		req, _ := http.NewRequest(http.MethodPost, a.URL+"/api/validate-key", nil)
		req.Header.Set("X-Request-ID", "proxy-id-123")
		req.Header.Set("Authorization", "Bearer "+a.AdminKey)
		if res := a.send(t, req); res.Header.Get("X-Request-ID") != "proxy-id-123" {
			t.Errorf("X-Request-ID %q, want the proxy's", res.Header.Get("X-Request-ID"))
		}
		req, _ = http.NewRequest(http.MethodGet, a.URL+"/healthz", nil)
		req.Header.Set("X-Request-ID", "bad id {with} spaces and symbols")
		if id := a.send(t, req).Header.Get("X-Request-ID"); !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(id) {
			t.Errorf("a malformed incoming ID was kept: %q", id)
		}
		logs := a.Logs.String()
		if !strings.Contains(logs, `"requestId":"proxy-id-123"`) || !strings.Contains(logs, `"route":"validate-key"`) {
			t.Errorf("the access log has no line with the request ID:\n%s", logs)
		}
		if strings.Contains(logs, a.AdminKey) || strings.Contains(logs, "Bearer") {
			t.Error("a raw key reached the logs")
		}
	})
}

// X-Forwarded-For is believed only from a trusted proxy: otherwise a client
// could pick a fresh rate-limit bucket with every request.
func TestRateLimitByClientIP(t *testing.T) {
	t.Parallel()
	send := func(a *app, forwardedFor string) int {
		req, _ := http.NewRequest(http.MethodPost, a.URL+"/api/heartbeat", nil)
		if forwardedFor != "" {
			req.Header.Set("X-Forwarded-For", forwardedFor)
		}
		return a.send(t, req).Status
	}
	dbURL := backends(t)[0].newURL

	untrusted := newApp(t, dbURL(t), func(c *config) { c.RateLimit = 2 })
	statuses := []int{send(untrusted, "10.0.0.1"), send(untrusted, "10.0.0.2"), send(untrusted, "10.0.0.3")}
	if statuses[2] != http.StatusTooManyRequests {
		t.Errorf("without trusted proxies, changing X-Forwarded-For escaped the limit: %v", statuses)
	}

	proxied := newApp(t, dbURL(t), func(c *config) { c.RateLimit = 2; c.TrustedProxies = "127.0.0.1/32, ::1" })
	statuses = []int{send(proxied, "10.0.0.1"), send(proxied, "10.0.0.1"), send(proxied, "10.0.0.1"), send(proxied, "10.0.0.2")}
	if statuses[2] != http.StatusTooManyRequests || statuses[3] != http.StatusOK {
		t.Errorf("behind a trusted proxy, clients should have their own buckets: %v", statuses)
	}
	// A client cannot smuggle an address in front of the proxy's own entry.
	statuses = []int{send(proxied, "10.0.0.9, 10.0.0.1")}
	if statuses[0] != http.StatusTooManyRequests {
		t.Errorf("a spoofed left-most X-Forwarded-For entry was believed: %v", statuses)
	}
}

// Production switches: introspection and the playground can be turned off;
// deep documents are refused.
func TestGraphQLProductionSwitches(t *testing.T) {
	t.Parallel()
	dbURL := backends(t)[0].newURL
	a := newApp(t, dbURL(t), func(c *config) { c.Introspection = false; c.Playground = false })
	if res := a.graphql(t, a.AdminKey, `{ __schema { types { name } } }`, nil); len(res.Errors) == 0 {
		t.Error("introspection answered while switched off")
	}
	if res := a.do(t, http.MethodGet, "/playground", "", ""); res.Status != http.StatusNotFound {
		t.Errorf("/playground while switched off: %d", res.Status)
	}
	doc := "{ installations(first: 1) { edges { node { id } } } }"
	for range 12 {
		doc = "{ ... on Query " + doc + " }"
	}
	if res := a.graphql(t, a.AdminKey, doc, nil); len(res.Errors) > 0 {
		t.Errorf("inline fragments counted as depth: %+v", res.Errors)
	}
}
