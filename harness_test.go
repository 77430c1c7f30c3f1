package main

// The test harness: every behaviour test runs through the public surface
// (HTTP, GraphQL documents, the command line) against each backend:
// SQLite always, PostgreSQL when TEST_DATABASE_URL is set (.ci/run sets it).

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentbot/registry/database"
	"github.com/agentbot/registry/graph"
	"github.com/agentbot/registry/metrics"
	"github.com/agentbot/registry/requestlog"
)

// backend is a database the suite runs against.
type backend struct {
	name string
	// newURL returns the URL of a fresh, empty database for one test.
	newURL func(t *testing.T) string
}

func backends(t *testing.T) []backend {
	list := []backend{{name: "sqlite", newURL: func(t *testing.T) string {
		return "sqlite:" + filepath.Join(t.TempDir(), "registry.db")
	}}}
	if pgURL := os.Getenv("TEST_DATABASE_URL"); pgURL != "" {
		list = append(list, backend{name: "postgres", newURL: func(t *testing.T) string { return freshSchema(t, pgURL) }})
	} else {
		t.Log("TEST_DATABASE_URL is not set: PostgreSQL cases are skipped")
	}
	return list
}

// freshSchema creates an empty PostgreSQL schema for one test, dropped when
// the test ends, and returns a URL whose search_path points at it.
func freshSchema(t *testing.T, baseURL string) string {
	t.Helper()
	db, err := sql.Open("pgx", baseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	name := "t_" + randomHex(8)
	if _, err := db.Exec("CREATE SCHEMA " + name); err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	t.Cleanup(func() { db.Exec("DROP SCHEMA " + name + " CASCADE") })
	u, err := url.Parse(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// forEachBackend runs test once per backend, each in parallel with its own
// fresh database and server.
func forEachBackend(t *testing.T, test func(t *testing.T, a *app)) {
	t.Helper()
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, newApp(t, b.newURL(t), nil))
		})
	}
}

// testClock is the injected clock: tests move time instead of sleeping.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer collects the server's log lines, so tests can assert that no
// secret is ever logged.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// app is one running registry: a real HTTP server over a fresh database.
type app struct {
	URL      string
	Handler  http.Handler
	DB       *database.Database
	Resolver *graph.Resolver
	Clock    *testClock
	Logs     *syncBuffer
	// AdminKey is a raw admin key created for the test.
	AdminKey string
	dbURL    string
	// secretKey seals gateway tokens (given on PostgreSQL; a key file on SQLite).
	secretKey string
}

// newApp starts a registry on dbURL. adjust, when given, changes the
// configuration before the server starts.
func newApp(t *testing.T, dbURL string, adjust func(*config)) *app {
	t.Helper()
	return startApp(t, dbURL, slog.LevelDebug, adjust)
}

// startApp is newApp for any testing.TB (a fuzz target's *testing.F keeps
// one server for all its inputs), logging at logLevel and above.
func startApp(t testing.TB, dbURL string, logLevel slog.Level, adjust func(*config)) *app {
	t.Helper()
	cfg := config{
		DatabaseURL:   dbURL,
		InactiveAfter: 5 * time.Minute,
		DashboardURL:  "https://agentbot.raveculture.xyz/dashboard",
		Introspection: true,
		Playground:    true,
		RateLimit:     0,
		// Tests write pending heartbeats with settle, not by waiting.
		HeartbeatFlush: time.Hour,
	}
	if adjust != nil {
		adjust(&cfg)
	}
	if strings.HasPrefix(dbURL, "postgres") && cfg.SecretKey == "" {
		cfg.SecretKey = randomHex(32)
	}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	db, err := openDatabase(context.Background(), cfg)
	if err != nil {
		t.Fatalf("opening %s: %v", dbURL, err)
	}
	t.Cleanup(func() { db.Close() })
	logs := &syncBuffer{}
	log := requestlog.NewLogger(logs, logLevel)
	clock := &testClock{now: time.Date(2026, 3, 21, 12, 0, 0, 0, time.UTC)}
	m := metrics.New()
	r := newResolver(cfg, db, m, log)
	if err := prepare(context.Background(), cfg, db, r, log); err != nil {
		t.Fatal(err)
	}
	r.Now = clock.Now
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	handler := NewServer(cfg, db, r, m, log)
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	a := &app{URL: srv.URL, Handler: handler, DB: db, Resolver: r, Clock: clock, Logs: logs, dbURL: dbURL, secretKey: cfg.SecretKey}
	a.AdminKey = a.createKey(t, "admin", "admin", "network")
	return a
}

// createKey makes a key through the command line, as an operator would,
// and returns the raw key it printed.
func (a *app) createKey(t testing.TB, user, role, plan string, extra ...string) string {
	t.Helper()
	args := append([]string{"keys", "create", "--database-url", a.dbURL, "--user", user, "--role", role, "--plan", plan}, extra...)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), args, noEnv, &stdout, &stderr); err != nil {
		t.Fatalf("keys create: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

func noEnv(string) string { return "" }

// settle makes everything acknowledged so far readable: pending heartbeats
// and key uses are written, and revocations made by other processes (the
// command line) are picked up. Tests call it instead of sleeping.
func (a *app) settle(t *testing.T) {
	t.Helper()
	if err := a.Resolver.Settle(context.Background()); err != nil {
		t.Fatalf("settle: %v", err)
	}
}

// response is an HTTP answer with its body decoded as JSON when it is JSON.
type response struct {
	Status int
	Header http.Header
	Raw    string
	JSON   map[string]any
}

// do sends an HTTP request with an optional bearer key and raw body.
func (a *app) do(t *testing.T, method, path, key, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, a.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return a.send(t, req)
}

func (a *app) send(t *testing.T, req *http.Request) response {
	t.Helper()
	// Requests to /api/* and their answers are validated against the
	// OpenAPI document (openapi_test.go).
	checkOpenAPI := oaPrepare(t, req)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	checkOpenAPI(res, raw)
	r := response{Status: res.StatusCode, Header: res.Header, Raw: string(raw)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.JSON); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v\n%s", req.Method, req.URL.Path, err, raw)
		}
	}
	return r
}

// gqlResult is a GraphQL answer.
type gqlResult struct {
	Data   map[string]any `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// code is the extensions.code of the first error, or "" when there is none.
func (g gqlResult) code() string {
	if len(g.Errors) == 0 {
		return ""
	}
	c, _ := g.Errors[0].Extensions["code"].(string)
	return c
}

// graphql posts a GraphQL document with variables and the given key.
func (a *app) graphql(t *testing.T, key, query string, vars map[string]any) gqlResult {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	res := a.do(t, http.MethodPost, "/graphql", key, string(body))
	var out gqlResult
	if err := json.Unmarshal([]byte(res.Raw), &out); err != nil {
		t.Fatalf("graphql: status %d, body is not JSON: %s", res.Status, res.Raw)
	}
	return out
}

// mustGraphql is graphql for documents that must succeed.
func (a *app) mustGraphql(t *testing.T, key, query string, vars map[string]any) map[string]any {
	t.Helper()
	out := a.graphql(t, key, query, vars)
	if len(out.Errors) > 0 {
		t.Fatalf("graphql errors: %+v", out.Errors)
	}
	return out.Data
}

// register registers userId through REST with key and fails the test
// unless it succeeds.
func (a *app) register(t *testing.T, key, userID, mode string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"userId": userID, "mode": mode})
	if res := a.do(t, http.MethodPost, "/api/register-home", key, string(body)); res.Status != http.StatusOK {
		t.Fatalf("register %s: %d %s", userID, res.Status, res.Raw)
	}
}
