package main

// Tests of the command line (CONTRACT.md §6, and the faults of §7 that the
// command line and the serve command own). The program runs in-process
// through run(ctx, args, getenv, stdout, stderr), on SQLite always and on
// PostgreSQL when TEST_DATABASE_URL is set.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentbot/registry/auth"
	"github.com/agentbot/registry/database"
	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/ent/apikey"
	"github.com/agentbot/registry/ent/installation"
	"github.com/agentbot/registry/fleet"
)

// cliEachBackend runs test once per backend, in parallel, each with the URL
// of a fresh database.
func cliEachBackend(t *testing.T, test func(t *testing.T, dbURL string)) {
	t.Helper()
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b.newURL(t))
		})
	}
}

// cliEnv is a getenv over a fixed set of variables.
func cliEnv(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// cliResult is what one run of the program gave back.
type cliResult struct {
	err    error
	stdout string
	stderr string
}

// cliRun runs the program to completion with args and getenv.
func cliRun(t *testing.T, getenv func(string) string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, withTestSecret(getenv), &stdout, &stderr)
	return cliResult{err: err, stdout: stdout.String(), stderr: stderr.String()}
}

// testSecretKey seals gateway tokens in the command-line tests: PostgreSQL
// refuses to serve without one (TestSecretKeyRequiredOnPostgres).
var testSecretKey = randomHex(32)

// withTestSecret adds SECRET_KEY to getenv unless the test sets its own.
func withTestSecret(getenv func(string) string) func(string) string {
	return func(name string) string {
		if v := getenv(name); v != "" || name != "SECRET_KEY" {
			return v
		}
		return testSecretKey
	}
}

// cliMust runs the program and fails the test unless it succeeds.
func cliMust(t *testing.T, getenv func(string) string, args ...string) cliResult {
	t.Helper()
	r := cliRun(t, getenv, args...)
	if r.err != nil {
		t.Fatalf("%v: %v\nstdout: %s\nstderr: %s", args, r.err, r.stdout, r.stderr)
	}
	return r
}

var cliKeyPattern = regexp.MustCompile(`^agb_[a-z2-7]{8}_[a-z2-7]{20,}\n$`)

// cliCreateKey runs `keys create` on dbURL and returns the raw key, after
// checking that stdout holds the key and nothing else.
func cliCreateKey(t *testing.T, dbURL, user string, extra ...string) string {
	t.Helper()
	args := append([]string{"keys", "create", "--database-url", dbURL, "--user", user}, extra...)
	r := cliMust(t, noEnv, args...)
	if !cliKeyPattern.MatchString(r.stdout) {
		t.Fatalf("keys create: stdout must be the raw key and one newline, got %q", r.stdout)
	}
	return strings.TrimSuffix(r.stdout, "\n")
}

// cliOpen opens dbURL directly (no migration), to check what the command
// line wrote.
func cliOpen(t *testing.T, dbURL string) *database.Database {
	t.Helper()
	db, err := database.Open(dbURL)
	if err != nil {
		t.Fatalf("opening %s: %v", dbURL, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// cliKeyRow reads the stored key whose raw value is raw.
func cliKeyRow(t *testing.T, db *database.Database, raw string) *ent.APIKey {
	t.Helper()
	k, err := db.Client.APIKey.Query().Where(apikey.KeyHash(auth.Hash(raw))).Only(context.Background())
	if err != nil {
		t.Fatalf("looking up the created key: %v", err)
	}
	return k
}

// cliKeysOf counts the stored keys of userID.
func cliKeysOf(t *testing.T, db *database.Database, userID string) int {
	t.Helper()
	n, err := db.Client.APIKey.Query().Where(apikey.UserID(userID)).Count(context.Background())
	if err != nil {
		t.Fatalf("counting keys: %v", err)
	}
	return n
}

// cliServer is `run serve` running in the background.
type cliServer struct {
	URL    string // http://host:port, reachable from the test
	Addr   string // the "addr" of the listening log line, as logged
	Stderr *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// cliServe starts `run serve` with args and getenv and waits for its
// "listening" log line. It fails the test if serve returns first.
func cliServe(t *testing.T, getenv func(string) string, args ...string) *cliServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &cliServer{Stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- run(ctx, append([]string{"serve"}, args...), withTestSecret(getenv), io.Discard, s.Stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Errorf("serve did not stop within 10s of cancel")
		}
	})
	deadline := time.After(10 * time.Second)
	for {
		if addr := cliListeningAddr(s.Stderr.String()); addr != "" {
			s.Addr = addr
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				t.Fatalf("listening addr %q: %v", addr, err)
			}
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				host = "127.0.0.1"
			}
			s.URL = "http://" + net.JoinHostPort(host, port)
			return s
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("serve returned before listening: %v\nstderr: %s", err, s.Stderr.String())
		case <-deadline:
			t.Fatalf("serve logged no listening line within 10s\nstderr: %s", s.Stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// cliListeningAddr finds the addr of the JSON "listening" log line.
func cliListeningAddr(logs string) string {
	for _, line := range strings.Split(logs, "\n") {
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
			return rec.Addr
		}
	}
	return ""
}

// cliServeFails runs serve expecting it to fail before it listens.
func cliServeFails(t *testing.T, getenv func(string) string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve"}, args...), withTestSecret(getenv), io.Discard, stderr)
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("serve %v: want an error, got nil\nstderr: %s", args, stderr.String())
		}
		if addr := cliListeningAddr(stderr.String()); addr != "" {
			t.Errorf("serve %v listened on %s despite the bad setting", args, addr)
		}
		return cliResult{err: err, stderr: stderr.String()}
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatalf("serve %v: did not fail within 10s; stderr: %s", args, stderr.String())
	}
	return cliResult{}
}

// cliApp wraps a cliServer as an *app so the harness's request helpers
// (do, graphql, send) work on it.
func (s *cliServer) app() *app { return &app{URL: s.URL} }

func cliValidate(t *testing.T, s *cliServer, key string) response {
	t.Helper()
	return s.app().do(t, http.MethodPost, "/api/validate-key", key, "")
}

// cliWaitStatus polls validate-key until it answers want (revocation may
// take about a second to be seen everywhere).
func cliWaitStatus(t *testing.T, s *cliServer, key string, want int) response {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		res := cliValidate(t, s, key)
		if res.Status == want || time.Now().After(deadline) {
			return res
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cliRegister(t *testing.T, s *cliServer, path, key, userID string) response {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"userId": userID})
	return s.app().do(t, http.MethodPost, path, key, string(body))
}

// ---------------------------------------------------------------------------
// keys create

func TestCLIKeysCreate(t *testing.T) {
	cliEachBackend(t, func(t *testing.T, dbURL string) {
		srv := cliServe(t, noEnv, "--addr", "127.0.0.1:0", "--database-url", dbURL, "--rate-limit", "0")

		// Created while the server runs on the same database.
		r := cliMust(t, noEnv, "keys", "create", "--database-url", dbURL, "--user", "alice",
			"--plan", "collective", "--role", "user", "--label", "laptop", "--expires", "720h")
		if !cliKeyPattern.MatchString(r.stdout) {
			t.Fatalf("stdout must be exactly the raw key and a newline, got %q", r.stdout)
		}
		raw := strings.TrimSuffix(r.stdout, "\n")
		if strings.Contains(r.stderr, raw) {
			t.Errorf("the raw key must appear on stdout only, stderr has it: %s", r.stderr)
		}
		if strings.TrimSpace(r.stderr) == "" {
			t.Errorf("keys create should tell people what it did on stderr; stderr is empty")
		}

		res := cliValidate(t, srv, raw)
		if res.Status != http.StatusOK || res.JSON["valid"] != true || res.JSON["userId"] != "alice" || res.JSON["plan"] != "collective" {
			t.Fatalf("validate-key with the created key: %d %s", res.Status, res.Raw)
		}

		db := cliOpen(t, dbURL)
		k := cliKeyRow(t, db, raw)
		if k.UserID != "alice" || k.Plan != fleet.PlanCollective || k.Role != fleet.RoleUser || k.Label != "laptop" {
			t.Errorf("stored key = user %q plan %q role %q label %q; want alice collective user laptop", k.UserID, k.Plan, k.Role, k.Label)
		}
		if k.ExpiresAt == nil {
			t.Errorf("--expires 720h stored no expiry")
		} else if d := time.Until(*k.ExpiresAt); d < 719*time.Hour || d > 721*time.Hour {
			t.Errorf("--expires 720h: key expires in %v", d)
		}

		// Defaults: plan solo, role user, no expiry.
		def := cliCreateKey(t, dbURL, "bob")
		dk := cliKeyRow(t, db, def)
		if dk.Plan != fleet.PlanSolo || dk.Role != fleet.RoleUser || dk.ExpiresAt != nil {
			t.Errorf("default key: plan %q role %q expires %v; want solo user never", dk.Plan, dk.Role, dk.ExpiresAt)
		}
		if res := cliValidate(t, srv, def); res.Status != http.StatusOK || res.JSON["plan"] != "solo" {
			t.Errorf("validate-key with the default key: %d %s", res.Status, res.Raw)
		}

		// An admin key acts as admin over REST: it may register another user.
		adm := cliCreateKey(t, dbURL, "ops", "--role", "admin", "--plan", "network")
		if res := cliRegister(t, srv, "/api/register-home", adm, "someone-else"); res.Status != http.StatusOK {
			t.Errorf("admin key made by the CLI cannot register another user: %d %s", res.Status, res.Raw)
		}
		if res := cliRegister(t, srv, "/api/register-home", def, "someone-else"); res.Status != http.StatusForbidden {
			t.Errorf("user key made by the CLI registered another user: %d %s", res.Status, res.Raw)
		}
	})
}

func TestCLIKeysCreateRefusesBadInput(t *testing.T) {
	cliEachBackend(t, func(t *testing.T, dbURL string) {
		cliMust(t, noEnv, "migrate", "--database-url", dbURL)
		db := cliOpen(t, dbURL)

		for _, tc := range []struct {
			name string
			args []string
		}{
			{"invalid plan", []string{"--user", "carol", "--plan", "gold"}},
			{"invalid role", []string{"--user", "carol", "--role", "root"}},
			{"upper-case role", []string{"--user", "carol", "--role", "ADMIN-ish"}},
		} {
			r := cliRun(t, noEnv, append([]string{"keys", "create", "--database-url", dbURL}, tc.args...)...)
			if r.err == nil {
				t.Errorf("%s: keys create succeeded: stdout %q", tc.name, r.stdout)
			}
			if r.stdout != "" {
				t.Errorf("%s: stdout must stay empty on error, got %q", tc.name, r.stdout)
			}
		}
		if n := cliKeysOf(t, db, "carol"); n != 0 {
			t.Errorf("invalid plan/role created %d keys", n)
		}

		// Missing --user is a usage error, whatever $USER says.
		for _, env := range []map[string]string{nil, {"USER": "alice", "LOGNAME": "alice"}} {
			r := cliRun(t, cliEnv(env), "keys", "create", "--database-url", dbURL)
			if !errors.Is(r.err, errUsage) {
				t.Errorf("keys create without --user (env %v): err = %v, want a usage error", env, r.err)
			}
			if r.stdout != "" {
				t.Errorf("keys create without --user: stdout %q, want nothing", r.stdout)
			}
			if !strings.Contains(r.stderr, "--user") {
				t.Errorf("keys create without --user: stderr should say --user is required, got %q", r.stderr)
			}
		}
		if n := cliKeysOf(t, db, "alice"); n != 0 {
			t.Errorf("keys create without --user created %d keys for $USER", n)
		}
		if n, _ := db.Client.APIKey.Query().Count(context.Background()); n != 0 {
			t.Errorf("refused key creations left %d keys in the database", n)
		}

		// An unknown flag is a usage error too.
		if r := cliRun(t, noEnv, "keys", "create", "--database-url", dbURL, "--user", "dave", "--bogus"); !errors.Is(r.err, errUsage) || r.stdout != "" {
			t.Errorf("keys create --bogus: err %v stdout %q, want a usage error and no key", r.err, r.stdout)
		}
	})
}

// ---------------------------------------------------------------------------
// keys list

// cliListRows parses `keys list` into rows of whitespace-separated fields,
// the header first.
func cliListRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.TrimSpace(line) != "" {
			rows = append(rows, strings.Fields(line))
		}
	}
	return rows
}

// cliListRow is the row of `keys list` that holds id, or nil.
func cliListRow(rows [][]string, id string) []string {
	for _, row := range rows {
		for _, f := range row {
			if f == id {
				return row
			}
		}
	}
	return nil
}

func cliHasField(row []string, value string) bool {
	for _, f := range row {
		if f == value {
			return true
		}
	}
	return false
}

func TestCLIKeysList(t *testing.T) {
	cliEachBackend(t, func(t *testing.T, dbURL string) {
		type made struct {
			raw, user, role, plan, label string
		}
		keys := []made{
			{user: "alice", role: "user", plan: "collective", label: "alice-laptop"},
			{user: "ops", role: "admin", plan: "network", label: "ci-runner"},
			{user: "bob", role: "user", plan: "label", label: "bob-pi"},
		}
		for i := range keys {
			keys[i].raw = cliCreateKey(t, dbURL, keys[i].user, "--role", keys[i].role, "--plan", keys[i].plan, "--label", keys[i].label)
		}

		r := cliMust(t, noEnv, "keys", "list", "--database-url", dbURL)
		rows := cliListRows(r.stdout)
		if len(rows) != len(keys)+1 {
			t.Fatalf("keys list: want a header and %d rows, got:\n%s", len(keys), r.stdout)
		}
		for _, col := range []string{"ID", "PREFIX", "USER", "ROLE", "PLAN", "LABEL"} {
			if !cliHasField(rows[0], col) {
				t.Errorf("keys list header lacks %s: %v", col, rows[0])
			}
		}
		db := cliOpen(t, dbURL)
		for _, k := range keys {
			stored := cliKeyRow(t, db, k.raw)
			row := cliListRow(rows[1:], stored.ID)
			if row == nil {
				t.Errorf("keys list does not show key %s of %s:\n%s", stored.ID, k.user, r.stdout)
				continue
			}
			prefix := k.raw[:strings.LastIndex(k.raw, "_")]
			for _, want := range []string{prefix, k.user, k.role, k.plan, k.label} {
				if !cliHasField(row, want) {
					t.Errorf("keys list row of %s lacks %q: %v", stored.ID, want, row)
				}
			}
			secret := k.raw[len(prefix)+1:]
			for what, s := range map[string]string{"raw key": k.raw, "secret part": secret, "hash": auth.Hash(k.raw)} {
				if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
					t.Errorf("keys list shows the %s of %s", what, stored.ID)
				}
			}
		}
	})
}

// ---------------------------------------------------------------------------
// keys revoke

func TestCLIKeysRevoke(t *testing.T) {
	cliEachBackend(t, func(t *testing.T, dbURL string) {
		// The server and the command line share the database at once (for
		// SQLite: the same file, open in both).
		srv := cliServe(t, noEnv, "--addr", "127.0.0.1:0", "--database-url", dbURL, "--rate-limit", "0")
		byID := cliCreateKey(t, dbURL, "alice", "--label", "by-id")
		byPrefix := cliCreateKey(t, dbURL, "alice", "--label", "by-prefix")
		kept := cliCreateKey(t, dbURL, "alice", "--label", "kept")
		for _, k := range []string{byID, byPrefix, kept} {
			if res := cliValidate(t, srv, k); res.Status != http.StatusOK {
				t.Fatalf("fresh key refused: %d %s", res.Status, res.Raw)
			}
		}

		db := cliOpen(t, dbURL)
		id := cliKeyRow(t, db, byID).ID
		prefix := cliKeyRow(t, db, byPrefix).Prefix
		if !strings.HasPrefix(byPrefix, prefix+"_") {
			t.Fatalf("stored prefix %q is not the visible start of the key", prefix)
		}
		list := cliMust(t, noEnv, "keys", "list", "--database-url", dbURL).stdout
		if !strings.Contains(list, prefix) {
			t.Fatalf("keys list does not show the prefix %s that revoke takes:\n%s", prefix, list)
		}

		cliMust(t, noEnv, "keys", "revoke", "--database-url", dbURL, id)
		cliMust(t, noEnv, "keys", "revoke", "--database-url", dbURL, prefix)

		for name, k := range map[string]string{"revoked by ID": byID, "revoked by prefix": byPrefix} {
			res := cliWaitStatus(t, srv, k, http.StatusUnauthorized)
			if res.Status != http.StatusUnauthorized || res.JSON["valid"] != false {
				t.Errorf("key %s is still accepted by the running server: %d %s", name, res.Status, res.Raw)
			}
			if res := srv.app().do(t, http.MethodGet, "/api/installations", k, ""); res.Status != http.StatusUnauthorized {
				t.Errorf("key %s still lists installations: %d %s", name, res.Status, res.Raw)
			}
		}
		if res := cliValidate(t, srv, kept); res.Status != http.StatusOK {
			t.Errorf("a key that was not revoked is refused: %d %s", res.Status, res.Raw)
		}

		// keys list shows which keys are revoked.
		rows := cliListRows(cliMust(t, noEnv, "keys", "list", "--database-url", dbURL).stdout)
		for raw, revoked := range map[string]bool{byID: true, byPrefix: true, kept: false} {
			k := cliKeyRow(t, db, raw)
			if (k.RevokedAt != nil) != revoked {
				t.Errorf("key %s: revokedAt %v, want revoked=%v", k.ID, k.RevokedAt, revoked)
			}
			row := cliListRow(rows, k.ID)
			if row == nil {
				t.Errorf("keys list lacks %s", k.ID)
				continue
			}
			if last := row[len(row)-1]; (last != "-") != revoked {
				t.Errorf("keys list row of %s ends with %q (REVOKED column), want revoked=%v", k.ID, last, revoked)
			}
		}

		// Unknown ID or prefix, or no argument: errors, and nothing revoked.
		for _, bad := range []string{fleet.APIKeyIDPrefix + "doesnotexist", "agb_zzzzzzzz", "nonsense"} {
			if r := cliRun(t, noEnv, "keys", "revoke", "--database-url", dbURL, bad); r.err == nil {
				t.Errorf("keys revoke %s: want an error, got nil (stderr %s)", bad, r.stderr)
			}
		}
		if r := cliRun(t, noEnv, "keys", "revoke", "--database-url", dbURL); !errors.Is(r.err, errUsage) {
			t.Errorf("keys revoke without an argument: err = %v, want a usage error", r.err)
		}
		if res := cliValidate(t, srv, kept); res.Status != http.StatusOK {
			t.Errorf("failed revocations refused another key: %d %s", res.Status, res.Raw)
		}
	})
}

// ---------------------------------------------------------------------------
// migrate, version, unknown commands

func TestCLIMigrate(t *testing.T) {
	cliEachBackend(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		db := cliOpen(t, dbURL)
		if _, err := db.Client.APIKey.Query().Count(ctx); err == nil {
			t.Fatalf("a fresh database already has the api_keys table; the test cannot tell migrate did anything")
		}
		for i := 1; i <= 2; i++ {
			r := cliRun(t, noEnv, "migrate", "--database-url", dbURL)
			if r.err != nil {
				t.Fatalf("migrate run %d: %v\n%s", i, r.err, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("migrate run %d printed on stdout: %q", i, r.stdout)
			}
		}
		if n, err := db.Client.APIKey.Query().Count(ctx); err != nil || n != 0 {
			t.Errorf("after migrate: api keys count = %d, %v", n, err)
		}
		if n, err := db.Client.Installation.Query().Count(ctx); err != nil || n != 0 {
			t.Errorf("after migrate: installations count = %d, %v", n, err)
		}
		// Data survives another migrate.
		raw := cliCreateKey(t, dbURL, "alice")
		cliMust(t, noEnv, "migrate", "--database-url", dbURL)
		cliKeyRow(t, db, raw)
	})
}

func TestCLIVersion(t *testing.T) {
	t.Parallel()
	r := cliMust(t, noEnv, "version")
	if strings.Count(r.stdout, "\n") != 1 || !strings.HasSuffix(r.stdout, "\n") || strings.TrimSpace(r.stdout) == "" {
		t.Errorf("version: want one non-empty line, got %q", r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("version wrote on stderr: %q", r.stderr)
	}
}

func TestCLIUnknownCommand(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"frobnicate"}, {"keys", "frobnicate"}, {"keys"}} {
		r := cliRun(t, noEnv, args...)
		if !errors.Is(r.err, errUsage) {
			t.Errorf("%v: err = %v, want a usage error", args, r.err)
		}
		if !strings.Contains(r.stderr, "Usage") {
			t.Errorf("%v: stderr should show the usage, got %q", args, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("%v: stdout should stay empty, got %q", args, r.stdout)
		}
	}
	if r := cliRun(t, noEnv, "frobnicate"); !strings.Contains(r.stderr, "frobnicate") {
		t.Errorf("unknown command: stderr should name it, got %q", r.stderr)
	}
	if r := cliRun(t, noEnv, "serve", "--no-such-flag"); !errors.Is(r.err, errUsage) {
		t.Errorf("serve --no-such-flag: err = %v, want a usage error", r.err)
	}
}

// ---------------------------------------------------------------------------
// settings: flags and environment variables

func TestCLIDatabaseURLFromEnv(t *testing.T) {
	cliEachBackend(t, func(t *testing.T, dbURL string) {
		env := cliEnv(map[string]string{"DATABASE_URL": dbURL})
		r := cliMust(t, env, "keys", "create", "--user", "envuser")
		raw := strings.TrimSuffix(r.stdout, "\n")
		db := cliOpen(t, dbURL)
		cliKeyRow(t, db, raw)
		if list := cliMust(t, env, "keys", "list").stdout; !strings.Contains(list, "envuser") {
			t.Errorf("keys list with DATABASE_URL does not show the key:\n%s", list)
		}
		srv := cliServe(t, cliEnv(map[string]string{"DATABASE_URL": dbURL, "ADDR": "127.0.0.1:0"}))
		if res := cliValidate(t, srv, raw); res.Status != http.StatusOK {
			t.Errorf("serve with DATABASE_URL refuses the key: %d %s", res.Status, res.Raw)
		}

		// The flag wins over the environment.
		other := "sqlite:" + filepath.Join(t.TempDir(), "other.db")
		r = cliMust(t, env, "keys", "create", "--user", "flaguser", "--database-url", other)
		if n := cliKeysOf(t, db, "flaguser"); n != 0 {
			t.Errorf("--database-url lost to DATABASE_URL: the key went to the env database")
		}
		cliKeyRow(t, cliOpen(t, other), strings.TrimSuffix(r.stdout, "\n"))
	})
}

// cliFreePort returns a TCP port that was free a moment ago.
func cliFreePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

func cliHost(t *testing.T, addr string) string {
	t.Helper()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("addr %q: %v", addr, err)
	}
	return host
}

func TestCLIAddrAndPort(t *testing.T) {
	t.Parallel()
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "registry.db")
	cliMust(t, noEnv, "migrate", "--database-url", dbURL)

	t.Run("ADDR", func(t *testing.T) {
		srv := cliServe(t, cliEnv(map[string]string{"ADDR": "127.0.0.2:0"}), "--database-url", dbURL)
		if h := cliHost(t, srv.Addr); h != "127.0.0.2" {
			t.Errorf("ADDR=127.0.0.2:0: listening on %s", srv.Addr)
		}
		if res := srv.app().do(t, http.MethodGet, "/healthz", "", ""); res.Status != http.StatusOK {
			t.Errorf("healthz on ADDR: %d", res.Status)
		}
	})
	t.Run("flag wins over ADDR", func(t *testing.T) {
		srv := cliServe(t, cliEnv(map[string]string{"ADDR": "127.0.0.2:0"}), "--database-url", dbURL, "--addr", "127.0.0.1:0")
		if h := cliHost(t, srv.Addr); h != "127.0.0.1" {
			t.Errorf("--addr 127.0.0.1:0 with ADDR=127.0.0.2:0: listening on %s", srv.Addr)
		}
	})
	t.Run("PORT", func(t *testing.T) {
		port := cliFreePort(t)
		srv := cliServe(t, cliEnv(map[string]string{"PORT": port}), "--database-url", dbURL)
		host, got, _ := net.SplitHostPort(srv.Addr)
		if got != port || (host != "" && !net.ParseIP(host).IsUnspecified()) {
			t.Errorf("PORT=%s without ADDR: listening on %s, want :%s", port, srv.Addr, port)
		}
		if res := srv.app().do(t, http.MethodGet, "/healthz", "", ""); res.Status != http.StatusOK {
			t.Errorf("healthz on PORT: %d", res.Status)
		}
	})
	t.Run("ADDR wins over PORT", func(t *testing.T) {
		port := cliFreePort(t)
		srv := cliServe(t, cliEnv(map[string]string{"PORT": port, "ADDR": "127.0.0.2:0"}), "--database-url", dbURL)
		if h := cliHost(t, srv.Addr); h != "127.0.0.2" {
			t.Errorf("ADDR=127.0.0.2:0 PORT=%s: listening on %s, want ADDR", port, srv.Addr)
		}
	})
	t.Run("flag wins over PORT", func(t *testing.T) {
		port := cliFreePort(t)
		srv := cliServe(t, cliEnv(map[string]string{"PORT": port}), "--database-url", dbURL, "--addr", "127.0.0.2:0")
		if h := cliHost(t, srv.Addr); h != "127.0.0.2" {
			t.Errorf("--addr 127.0.0.2:0 PORT=%s: listening on %s, want the flag", port, srv.Addr)
		}
	})
}

// cliInstallationStatus reads userID's status from GET /api/installations.
func cliInstallationStatus(t *testing.T, srv *cliServer, key, userID string) string {
	t.Helper()
	res := srv.app().do(t, http.MethodGet, "/api/installations", key, "")
	if res.Status != http.StatusOK {
		t.Fatalf("installations: %d %s", res.Status, res.Raw)
	}
	list, _ := res.JSON["installations"].([]any)
	for _, item := range list {
		if m, _ := item.(map[string]any); m["userId"] == userID {
			s, _ := m["status"].(string)
			return s
		}
	}
	t.Fatalf("installations does not list %s: %s", userID, res.Raw)
	return ""
}

func TestCLIInactiveAfter(t *testing.T) {
	cliEachBackend(t, func(t *testing.T, dbURL string) {
		key := cliCreateKey(t, dbURL, "admin", "--role", "admin", "--plan", "network")
		env := cliEnv(map[string]string{"INACTIVE_AFTER": "1ms"})
		short := cliServe(t, env, "--addr", "127.0.0.1:0", "--database-url", dbURL)
		long := cliServe(t, env, "--addr", "127.0.0.1:0", "--database-url", dbURL, "--inactive-after", "1h")
		if res := cliRegister(t, short, "/api/register-home", key, "node-1"); res.Status != http.StatusOK {
			t.Fatalf("register: %d %s", res.Status, res.Raw)
		}
		time.Sleep(50 * time.Millisecond)
		if s := cliInstallationStatus(t, short, key, "node-1"); s != "inactive" {
			t.Errorf("INACTIVE_AFTER=1ms, 50ms after registering: status %q, want inactive", s)
		}
		if s := cliInstallationStatus(t, long, key, "node-1"); s != "active" {
			t.Errorf("--inactive-after 1h over INACTIVE_AFTER=1ms: status %q, want active", s)
		}
	})
}

func TestCLIDashboardURL(t *testing.T) {
	cliEachBackend(t, func(t *testing.T, dbURL string) {
		key := cliCreateKey(t, dbURL, "admin", "--role", "admin", "--plan", "network")
		env := cliEnv(map[string]string{"DASHBOARD_URL": "https://env.example.test/dash?a=1&b=2"})
		for _, tc := range []struct {
			name string
			env  func(string) string
			args []string
			want string
		}{
			{"default", noEnv, nil, "https://agentbot.raveculture.xyz/dashboard"},
			{"env", env, nil, "https://env.example.test/dash?a=1&b=2"},
			{"flag wins", env, []string{"--dashboard-url", "https://flag.example.test/d"}, "https://flag.example.test/d"},
		} {
			srv := cliServe(t, tc.env, append([]string{"--addr", "127.0.0.1:0", "--database-url", dbURL}, tc.args...)...)
			for _, path := range []string{"/api/register-home", "/api/register-link"} {
				res := cliRegister(t, srv, path, key, "node-"+tc.name)
				if res.Status != http.StatusOK || res.JSON["dashboardUrl"] != tc.want {
					t.Errorf("%s: %s dashboardUrl: %d %s, want %q", tc.name, path, res.Status, res.Raw, tc.want)
				}
			}
		}
	})
}

// cliHeartbeat sends an anonymous heartbeat, which needs no key.
func cliHeartbeat(t *testing.T, srv *cliServer) response {
	t.Helper()
	return srv.app().do(t, http.MethodPost, "/api/heartbeat", "", `{"userId":"rl"}`)
}

func TestCLIRateLimit(t *testing.T) {
	cliEachBackend(t, func(t *testing.T, dbURL string) {
		cliMust(t, noEnv, "migrate", "--database-url", dbURL)
		env3 := cliEnv(map[string]string{"RATE_LIMIT": "3"})

		t.Run("RATE_LIMIT=3", func(t *testing.T) {
			srv := cliServe(t, env3, "--addr", "127.0.0.1:0", "--database-url", dbURL)
			for i := 1; i <= 3; i++ {
				if res := cliHeartbeat(t, srv); res.Status != http.StatusOK {
					t.Fatalf("request %d of 3 allowed: %d %s", i, res.Status, res.Raw)
				}
			}
			res := cliHeartbeat(t, srv)
			if res.Status != http.StatusTooManyRequests {
				t.Fatalf("4th request within the minute: %d %s, want 429", res.Status, res.Raw)
			}
			if res.JSON["success"] != false || res.JSON["error"] == nil || res.JSON["error"] == "" {
				t.Errorf("429 body: %s, want {\"success\":false,\"error\":…}", res.Raw)
			}
			if got := res.Header.Get("RateLimit-Limit"); got != "3" {
				t.Errorf("RateLimit-Limit = %q, want 3", got)
			}
			if got := res.Header.Get("RateLimit-Remaining"); got != "0" {
				t.Errorf("RateLimit-Remaining = %q, want 0", got)
			}
			// RateLimit-Reset (IETF RateLimit header fields) and Retry-After
			// (RFC 9110) are both delta-seconds: how long until a retry helps.
			for _, h := range []string{"RateLimit-Reset", "Retry-After"} {
				if got := res.Header.Get(h); got == "" {
					t.Errorf("429 has no %s header", h)
				} else if n, err := strconv.Atoi(got); err != nil || n < 0 || n > 60 {
					t.Errorf("%s = %q, want the seconds (0..60) until the one-minute window resets", h, got)
				}
			}
			// Another /api endpoint shares the client's budget.
			if res := cliValidate(t, srv, "agb_whatever"); res.Status != http.StatusTooManyRequests {
				t.Errorf("validate-key after the limit: %d, want 429", res.Status)
			}
			// Only /api/* is limited.
			if res := srv.app().do(t, http.MethodGet, "/healthz", "", ""); res.Status != http.StatusOK {
				t.Errorf("healthz after the /api limit: %d, want 200", res.Status)
			}
		})
		t.Run("RATE_LIMIT=0", func(t *testing.T) {
			srv := cliServe(t, cliEnv(map[string]string{"RATE_LIMIT": "0"}), "--addr", "127.0.0.1:0", "--database-url", dbURL)
			for i := 1; i <= 25; i++ {
				if res := cliHeartbeat(t, srv); res.Status != http.StatusOK {
					t.Fatalf("RATE_LIMIT=0, request %d: %d %s", i, res.Status, res.Raw)
				}
			}
		})
		t.Run("flag wins over RATE_LIMIT", func(t *testing.T) {
			srv := cliServe(t, env3, "--addr", "127.0.0.1:0", "--database-url", dbURL, "--rate-limit", "0")
			for i := 1; i <= 8; i++ {
				if res := cliHeartbeat(t, srv); res.Status != http.StatusOK {
					t.Fatalf("--rate-limit 0 over RATE_LIMIT=3, request %d: %d %s", i, res.Status, res.Raw)
				}
			}
		})
		t.Run("default 120", func(t *testing.T) {
			srv := cliServe(t, noEnv, "--addr", "127.0.0.1:0", "--database-url", dbURL)
			res := cliHeartbeat(t, srv)
			if res.Status != http.StatusOK || res.Header.Get("RateLimit-Limit") != "120" {
				t.Errorf("default rate limit: %d RateLimit-Limit %q, want 120", res.Status, res.Header.Get("RateLimit-Limit"))
			}
		})
	})
}

func TestCLIInvalidEnvironment(t *testing.T) {
	t.Parallel()
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "registry.db")
	for _, tc := range []struct{ name, value string }{
		{"INACTIVE_AFTER", "abc"},
		{"RATE_LIMIT", "abc"},
		{"RATE_LIMIT", "1.5"},
	} {
		env := cliEnv(map[string]string{tc.name: tc.value, "ADDR": "127.0.0.1:0"})
		r := cliServeFails(t, env, "--database-url", dbURL)
		if !strings.Contains(r.err.Error()+r.stderr, tc.name) {
			t.Errorf("serve with %s=%s: the error should name the variable: %v / %s", tc.name, tc.value, r.err, r.stderr)
		}
		for _, cmd := range [][]string{{"migrate"}, {"keys", "list"}, {"keys", "create", "--user", "x"}} {
			r := cliRun(t, env, append(cmd, "--database-url", dbURL)...)
			if r.err == nil {
				t.Errorf("%v with %s=%s: want an error, got nil", cmd, tc.name, tc.value)
			}
			if r.stdout != "" {
				t.Errorf("%v with %s=%s printed %q", cmd, tc.name, tc.value, r.stdout)
			}
		}
	}
	// A bad flag value is an error as well.
	cliServeFails(t, noEnv, "--addr", "127.0.0.1:0", "--database-url", dbURL, "--inactive-after", "soon")
	if r := cliRun(t, noEnv, "keys", "create", "--database-url", dbURL, "--user", "x", "--expires", "a month"); r.err == nil || r.stdout != "" {
		t.Errorf("keys create --expires 'a month': err %v stdout %q, want an error and no key", r.err, r.stdout)
	}
}

// ---------------------------------------------------------------------------
// --database-url forms

func TestCLIDatabaseURLForms(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	t.Run("sqlite creates the folder", func(t *testing.T) {
		path := filepath.Join(dir, "missing", "nested", "registry.db")
		cliMust(t, noEnv, "migrate", "--database-url", "sqlite:"+path)
		if _, err := os.Stat(path); err != nil {
			t.Errorf("sqlite:%s: database file not created: %v", path, err)
		}
		raw := cliCreateKey(t, "sqlite:"+path, "alice")
		srv := cliServe(t, noEnv, "--addr", "127.0.0.1:0", "--database-url", "sqlite:"+path)
		if res := cliValidate(t, srv, raw); res.Status != http.StatusOK {
			t.Errorf("key in sqlite:%s refused: %d %s", path, res.Status, res.Raw)
		}
	})
	t.Run("file URL", func(t *testing.T) {
		path := filepath.Join(dir, "other", "dir", "registry.db")
		raw := cliCreateKey(t, "file:"+path, "bob")
		if _, err := os.Stat(path); err != nil {
			t.Errorf("file:%s: database file not created: %v", path, err)
		}
		if list := cliMust(t, noEnv, "keys", "list", "--database-url", "file:"+path).stdout; !strings.Contains(list, "bob") {
			t.Errorf("keys list on file:%s lacks the key:\n%s", path, list)
		}
		// sqlite: and file: name the same database.
		if list := cliMust(t, noEnv, "keys", "list", "--database-url", "sqlite:"+path).stdout; !strings.Contains(list, "bob") {
			t.Errorf("sqlite:%s does not see the key made through file:%s", path, path)
		}
		srv := cliServe(t, noEnv, "--addr", "127.0.0.1:0", "--database-url", "file:"+path)
		if res := cliValidate(t, srv, raw); res.Status != http.StatusOK {
			t.Errorf("serve on file:%s refuses its key: %d %s", path, res.Status, res.Raw)
		}
	})
	t.Run("unsupported scheme", func(t *testing.T) {
		for _, u := range []string{"mysql://root@127.0.0.1/registry", "redis://127.0.0.1", "registry.db", "sqlite:"} {
			if r := cliRun(t, noEnv, "migrate", "--database-url", u); r.err == nil {
				t.Errorf("migrate --database-url %q: want an error", u)
			}
			if r := cliRun(t, noEnv, "keys", "create", "--database-url", u, "--user", "x"); r.err == nil || r.stdout != "" {
				t.Errorf("keys create --database-url %q: err %v stdout %q, want an error and no key", u, r.err, r.stdout)
			}
			cliServeFails(t, noEnv, "--addr", "127.0.0.1:0", "--database-url", u)
			cliServeFails(t, cliEnv(map[string]string{"DATABASE_URL": u}), "--addr", "127.0.0.1:0")
		}
	})
	if pgURL := os.Getenv("TEST_DATABASE_URL"); pgURL != "" {
		t.Run("postgresql scheme", func(t *testing.T) {
			u := freshSchema(t, pgURL)
			if !strings.HasPrefix(u, "postgres://") {
				t.Skipf("TEST_DATABASE_URL does not start with postgres://")
			}
			u = "postgresql://" + strings.TrimPrefix(u, "postgres://")
			cliMust(t, noEnv, "migrate", "--database-url", u)
			raw := cliCreateKey(t, u, "carol")
			cliKeyRow(t, cliOpen(t, u), raw)
		})
	}
}

// ---------------------------------------------------------------------------
// serve

func TestCLIServeEndpoints(t *testing.T) {
	cliEachBackend(t, func(t *testing.T, dbURL string) {
		srv := cliServe(t, noEnv, "--addr", "127.0.0.1:0", "--database-url", dbURL)
		a := srv.app()

		for _, path := range []string{"/healthz", "/readyz"} {
			res := a.do(t, http.MethodGet, path, "", "")
			if res.Status != http.StatusOK || res.JSON == nil {
				t.Errorf("GET %s: %d %s, want 200 JSON", path, res.Status, res.Raw)
			}
		}

		res := a.do(t, http.MethodGet, "/playground", "", "")
		if res.Status != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(strings.ToLower(res.Raw), "<html") || !strings.Contains(res.Raw, "/graphql") {
			t.Errorf("GET /playground: %d %q, want an HTML page pointing at /graphql", res.Status, res.Header.Get("Content-Type"))
		}

		// The key is created while the server runs.
		key := cliCreateKey(t, dbURL, "ops", "--role", "admin", "--plan", "network")
		data := a.mustGraphql(t, key, `{ viewer { userId role plan } }`, nil)
		viewer, _ := data["viewer"].(map[string]any)
		if viewer["userId"] != "ops" || viewer["role"] != "ADMIN" || viewer["plan"] != "NETWORK" {
			t.Errorf("graphql viewer: %v", data)
		}
		if out := a.graphql(t, "", `{ viewer { userId } }`, nil); out.code() != "UNAUTHENTICATED" {
			t.Errorf("graphql without a key: %+v, want UNAUTHENTICATED", out)
		}
		get := a.do(t, http.MethodGet, "/graphql?query="+strings.ReplaceAll("{viewer{userId}}", "{", "%7B"), key, "")
		if get.Status != http.StatusOK || !strings.Contains(get.Raw, `"ops"`) {
			t.Errorf("GET /graphql: %d %s", get.Status, get.Raw)
		}
	})
}

// cliSlowRegister starts a register-home request on a raw connection and
// writes only the first half of its body; the returned function writes the
// rest and reads the answer.
func cliSlowRegister(t *testing.T, addr, key, userID string) (finish func() (*http.Response, string)) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	body := fmt.Sprintf(`{"userId":%q,"mode":"home"}`, userID)
	half := len(body) / 2
	head := "POST /api/register-home HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + key +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := io.WriteString(conn, head+body[:half]); err != nil {
		t.Fatal(err)
	}
	return func() (*http.Response, string) {
		t.Helper()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, body[half:]); err != nil {
			t.Fatalf("writing the second half of the body: %v", err)
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("reading the answer of the in-flight request: %v", err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return res, string(raw)
	}
}

func TestCLIServeGracefulShutdown(t *testing.T) {
	cliEachBackend(t, func(t *testing.T, dbURL string) {
		key := cliCreateKey(t, dbURL, "ops", "--role", "admin", "--plan", "network")
		srv := cliServe(t, noEnv, "--addr", "127.0.0.1:0", "--database-url", dbURL)
		hostport := strings.TrimPrefix(srv.URL, "http://")
		if res := cliRegister(t, srv, "/api/register-home", key, "before"); res.Status != http.StatusOK {
			t.Fatalf("register before shutdown: %d %s", res.Status, res.Raw)
		}

		finish := cliSlowRegister(t, hostport, key, "in-flight")
		time.Sleep(150 * time.Millisecond) // the handler is now reading the body

		srv.cancel() // what SIGTERM/SIGINT do in main

		// Shutdown has begun once the listener refuses new connections.
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", hostport, 200*time.Millisecond)
			if err != nil {
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Fatalf("the server still accepts connections 5s after cancel")
			}
			time.Sleep(10 * time.Millisecond)
		}
		select {
		case err := <-srv.done:
			srv.done <- err
			t.Fatalf("serve returned (%v) while a request was still in flight", err)
		case <-time.After(100 * time.Millisecond):
		}

		res, body := finish()
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `"success":true`) {
			t.Errorf("in-flight request during shutdown: %d %s", res.StatusCode, body)
		}

		select {
		case err := <-srv.done:
			srv.done <- err
			if err != nil {
				t.Errorf("run after a graceful shutdown returned %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("serve did not return within 10s of cancel")
		}

		// Acknowledged registrations are stored.
		db := cliOpen(t, dbURL)
		for _, u := range []string{"before", "in-flight"} {
			if ok, err := db.Client.Installation.Query().Where(installation.UserID(u)).Exist(context.Background()); err != nil || !ok {
				t.Errorf("acknowledged registration of %s lost after shutdown (exists %v, %v)", u, ok, err)
			}
		}
	})
}

func TestCLIServeCancelWhenIdle(t *testing.T) {
	t.Parallel()
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "registry.db")
	srv := cliServe(t, noEnv, "--addr", "127.0.0.1:0", "--database-url", dbURL)
	// An idle keep-alive connection must not hold the shutdown up.
	if res := srv.app().do(t, http.MethodGet, "/healthz", "", ""); res.Status != http.StatusOK {
		t.Fatalf("healthz: %d", res.Status)
	}
	srv.cancel()
	select {
	case err := <-srv.done:
		srv.done <- err
		if err != nil {
			t.Errorf("run after cancel: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("serve did not stop within 5s of cancel")
	}
}

// ---------------------------------------------------------------------------
// database outage

// cliLeaksInternals reports what internal detail body shows, if any.
func cliLeaksInternals(body string) string {
	lower := strings.ToLower(body)
	for _, s := range []string{"sql", "driver", "closed", "pgx", "pgconn", "modernc", "ent:", "connection", "dial", "goroutine", ".go:"} {
		if strings.Contains(lower, s) {
			return s
		}
	}
	return ""
}

func TestCLIReadyzDatabaseGone(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, b.newURL(t), nil)
			if res := a.do(t, http.MethodGet, "/readyz", "", ""); res.Status != http.StatusOK {
				t.Fatalf("readyz with the database up: %d %s", res.Status, res.Raw)
			}

			a.DB.DB.Close() // the database is gone

			res := a.do(t, http.MethodGet, "/readyz", "", "")
			if res.Status != http.StatusServiceUnavailable || res.JSON == nil {
				t.Errorf("readyz with the database gone: %d %s, want 503 JSON", res.Status, res.Raw)
			}
			if s := cliLeaksInternals(res.Raw); s != "" {
				t.Errorf("readyz body shows internals (%q): %s", s, res.Raw)
			}
			if res := a.do(t, http.MethodGet, "/healthz", "", ""); res.Status != http.StatusOK {
				t.Errorf("healthz with the database gone: %d, want 200 (the process runs)", res.Status)
			}

			body := `{"userId":"alice","mode":"home"}`
			reg := a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, body)
			if reg.Status < 500 || reg.JSON == nil || reg.JSON["success"] != false {
				t.Errorf("register-home with the database gone: %d %s, want a 5xx JSON error", reg.Status, reg.Raw)
			}
			if msg, _ := reg.JSON["error"].(string); msg == "" {
				t.Errorf("register-home 5xx has no error message: %s", reg.Raw)
			}
			if s := cliLeaksInternals(reg.Raw); s != "" {
				t.Errorf("register-home error shows internals (%q): %s", s, reg.Raw)
			}

			val := a.do(t, http.MethodPost, "/api/validate-key", a.AdminKey, "")
			if val.Status < 500 || val.JSON == nil || val.JSON["valid"] != false {
				t.Errorf("validate-key with the database gone: %d %s, want a 5xx {\"valid\":false,…}", val.Status, val.Raw)
			}
			if s := cliLeaksInternals(val.Raw); s != "" {
				t.Errorf("validate-key error shows internals (%q): %s", s, val.Raw)
			}

			hb := a.do(t, http.MethodPost, "/api/heartbeat", "", `{"userId":"alice"}`)
			// A heartbeat may be acknowledged when it is queued; if it fails
			// it must fail cleanly.
			if hb.Status != http.StatusOK && (hb.Status < 500 || hb.JSON == nil || cliLeaksInternals(hb.Raw) != "") {
				t.Errorf("heartbeat with the database gone: %d %s", hb.Status, hb.Raw)
			}

			gql := a.graphql(t, a.AdminKey, `{ viewer { userId } }`, nil)
			if len(gql.Errors) == 0 {
				t.Errorf("graphql with the database gone answered without error: %+v", gql)
			}
			raw, _ := json.Marshal(gql)
			if s := cliLeaksInternals(string(raw)); s != "" {
				t.Errorf("graphql error shows internals (%q): %s", s, raw)
			}
		})
	}
}
