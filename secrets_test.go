package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentbot/registry/ent/installation"
	"github.com/agentbot/registry/fleet"
	"github.com/agentbot/registry/secrets"
)

const tokenQuery = `query($u: String!) { installation(userId: $u) { gatewayToken } }`

func storedToken(t *testing.T, a *app, userID string) string {
	t.Helper()
	inst, err := a.DB.Client.Installation.Query().Where(installation.UserID(userID)).Only(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return inst.GatewayToken
}

// Gateway tokens are sealed in the database and opened for their owner.
func TestGatewayTokensAreSealedAtRest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		res := a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, `{"userId":"u1","gatewayToken":"gw-very-secret"}`)
		if res.Status != http.StatusOK {
			t.Fatalf("%d %s", res.Status, res.Raw)
		}
		stored := storedToken(t, a, "u1")
		if !secrets.IsSealed(stored) || strings.Contains(stored, "gw-very-secret") {
			t.Errorf("stored token %q is not sealed", stored)
		}
		data := a.mustGraphql(t, a.AdminKey, tokenQuery, map[string]any{"u": "u1"})
		if got := data["installation"].(map[string]any)["gatewayToken"]; got != "gw-very-secret" {
			t.Errorf("gatewayToken %v, want the token registered", got)
		}
		if strings.Contains(a.Logs.String(), "gw-very-secret") {
			t.Error("the gateway token reached the logs")
		}
	})
}

// With the embedded default and no key given, the key lives in a file
// beside the database, readable by its owner only, and is used again.
func TestSQLiteKeyFileBesideTheDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	url := "sqlite:" + filepath.Join(dir, "registry.db")
	a := newApp(t, url, nil)
	a.register(t, a.AdminKey, "u1", "home")
	a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, `{"userId":"u1","gatewayToken":"tok-1"}`)

	info, err := os.Stat(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatalf("no key file beside the database: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", info.Mode().Perm())
	}
	// A second server on the same file opens the token with the same key.
	b := newApp(t, url, nil)
	data := b.mustGraphql(t, b.AdminKey, tokenQuery, map[string]any{"u": "u1"})
	if got := data["installation"].(map[string]any)["gatewayToken"]; got != "tok-1" {
		t.Errorf("second server reads gatewayToken %v", got)
	}
}

// On PostgreSQL the server refuses to start without a key, rather than
// storing tokens it cannot protect.
func TestSecretKeyRequiredOnPostgres(t *testing.T) {
	t.Parallel()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		t.Skip("TEST_DATABASE_URL is not set")
	}
	url := freshSchema(t, base)
	for _, command := range []string{"serve", "migrate"} {
		var stderr bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := run(ctx, []string{command, "--addr", "127.0.0.1:0", "--database-url", url}, noEnv, &bytes.Buffer{}, &stderr)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "--secret-key") {
			t.Errorf("%s without a key: %v, want an error naming --secret-key", command, err)
		}
	}
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"migrate", "--database-url", url, "--secret-key", "tooshort"}, noEnv, &bytes.Buffer{}, &stderr)
	if err == nil {
		t.Error("migrate accepted a malformed key")
	}
}

// migrate seals tokens that were stored in plaintext (rows from before
// sealing), and they still open afterwards.
func TestMigrateSealsPlaintextTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		now := a.Clock.Now()
		err := a.DB.Client.Installation.Create().SetUserID("legacy").SetMode(fleet.ModeHome).
			SetGatewayToken("plain-old-token").SetRegisteredAt(now).SetLastSeen(now).Exec(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// Before migrate a plaintext row still reads back.
		data := a.mustGraphql(t, a.AdminKey, tokenQuery, map[string]any{"u": "legacy"})
		if got := data["installation"].(map[string]any)["gatewayToken"]; got != "plain-old-token" {
			t.Errorf("plaintext row reads %v", got)
		}
		args := []string{"migrate", "--database-url", a.dbURL}
		if strings.HasPrefix(a.dbURL, "postgres") {
			args = append(args, "--secret-key", a.secretKey)
		}
		var stderr bytes.Buffer
		if err := run(context.Background(), args, noEnv, &bytes.Buffer{}, &stderr); err != nil {
			t.Fatalf("migrate: %v\n%s", err, stderr.String())
		}
		if stored := storedToken(t, a, "legacy"); !secrets.IsSealed(stored) {
			t.Errorf("after migrate the token is stored as %q", stored)
		}
		data = a.mustGraphql(t, a.AdminKey, tokenQuery, map[string]any{"u": "legacy"})
		if got := data["installation"].(map[string]any)["gatewayToken"]; got != "plain-old-token" {
			t.Errorf("after migrate gatewayToken reads %v", got)
		}
	})
}

// A server started with another key cannot open the tokens: it says so
// with a generic error, and the rest of the installation still reads.
func TestWrongSecretKeyFailsClosed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		a.do(t, http.MethodPost, "/api/register-home", a.AdminKey, `{"userId":"u1","gatewayToken":"tok"}`)
		b := newApp(t, a.dbURL, func(c *config) { c.SecretKey = randomHex(32) })
		res := b.graphql(t, b.AdminKey, `{ installation(userId: "u1") { userId gatewayToken } }`, nil)
		if res.code() != "INTERNAL_SERVER_ERROR" || strings.Contains(res.Errors[0].Message, "cipher") {
			t.Errorf("errors %+v, want a generic INTERNAL_SERVER_ERROR", res.Errors)
		}
		if inst, _ := res.Data["installation"].(map[string]any); inst == nil || inst["userId"] != "u1" {
			t.Errorf("data %v: the other fields should still read", res.Data)
		}
	})
}
