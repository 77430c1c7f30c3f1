package main

// The installer scripts that already exist in the field: bash, curl, grep,
// cut and sed over the compact JSON of the REST layer. They post with
// curl -d, so the registration arrives as application/x-www-form-urlencoded.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ixScript is the registration part of the Home/Link installer.
const ixScript = `#!/usr/bin/env bash
set -u
AGENTBOT_API="${AGENTBOT_API:?}"
API_KEY="${AGENTBOT_API_KEY-}"
GATEWAY_TOKEN="${GATEWAY_TOKEN-}"
ENDPOINT="${ENDPOINT:-register-home}"

echo "Validating API key..."
RESPONSE=$(curl -s -X POST $AGENTBOT_API/api/validate-key -H "Authorization: Bearer $API_KEY")
if echo "$RESPONSE" | grep -q '"valid":false'; then
  echo "Invalid API key. Get one at https://agentbot.raveculture.xyz/dashboard"
  exit 1
fi
USER_ID=$(echo "$RESPONSE" | grep -o '"userId":"[^"]*"' | cut -d'"' -f4)
PLAN=$(echo "$RESPONSE" | sed -n 's/.*"plan":"\([^"]*\)".*/\1/p')
if [ -z "$USER_ID" ]; then
  echo "Could not read userId from: $RESPONSE"
  exit 1
fi
echo "Key valid: user $USER_ID, plan $PLAN"

RESULT=$(curl -s -X POST $AGENTBOT_API/api/$ENDPOINT \
  -H "Authorization: Bearer $API_KEY" \
  -d "{\"userId\":\"$USER_ID\",\"mode\":\"home\",\"gatewayToken\":\"$GATEWAY_TOKEN\"}")
if echo "$RESULT" | grep -q '"success":true'; then
  MESSAGE=$(echo "$RESULT" | grep -o '"message":"[^"]*"' | cut -d'"' -f4)
  DASHBOARD=$(echo "$RESULT" | grep -o '"dashboardUrl":"[^"]*"' | cut -d'"' -f4)
  echo "$MESSAGE"
  echo "Dashboard: $DASHBOARD"
else
  echo "Registration failed: $RESULT"
  exit 1
fi

BEAT=$(curl -s -X POST $AGENTBOT_API/api/heartbeat -d "{\"userId\":\"$USER_ID\"}")
if echo "$BEAT" | grep -q '"success":true'; then
  echo "Heartbeat at $(echo "$BEAT" | grep -o '"timestamp":"[^"]*"' | cut -d'"' -f4)"
else
  echo "Heartbeat failed: $BEAT"
  exit 1
fi
`

// ixRun runs the installer against a with the given key, token and
// endpoint, and returns its output and exit code.
func ixRun(t *testing.T, a *app, key, token, endpoint string) (string, int) {
	t.Helper()
	for _, tool := range []string{"bash", "curl", "grep", "cut", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	script := filepath.Join(t.TempDir(), "install.sh")
	if err := os.WriteFile(script, []byte(ixScript), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	// No proxy between curl and the test server.
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasSuffix(strings.ToLower(name), "_proxy") {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(env,
		"NO_PROXY=*",
		"AGENTBOT_API="+a.URL,
		"AGENTBOT_API_KEY="+key,
		"GATEWAY_TOKEN="+token,
		"ENDPOINT="+endpoint,
	)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("running the installer: %v\n%s", err, out)
		}
		code = exit.ExitCode()
	}
	return string(out), code
}

// ixInstallation reads an installation through GraphQL as an admin: mode
// (REST spelling), gateway token and whether it exists.
func ixInstallation(t *testing.T, a *app, userID string) (mode, token string, ok bool) {
	t.Helper()
	data := a.mustGraphql(t, a.AdminKey, `query($u: String!) { installation(userId: $u) { userId mode gatewayToken } }`, map[string]any{"u": userID})
	inst, _ := data["installation"].(map[string]any)
	if inst == nil {
		return "", "", false
	}
	mode, _ = inst["mode"].(string)
	token, _ = inst["gatewayToken"].(string)
	return strings.ToLower(mode), token, true
}

func TestInstallerScript(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		// The operator makes the key with the command line, as the README says.
		homeKey := a.createKey(t, "installer-home", "user", "collective")
		linkKey := rxUserKey(t, a, "installer-link", "label")

		t.Run("home", func(t *testing.T) {
			out, code := ixRun(t, a, homeKey, "gw-home-token", "register-home")
			want := "Validating API key...\n" +
				"Key valid: user installer-home, plan collective\n" +
				"Home installation registered\n" +
				"Dashboard: " + rxDashboard + "\n" +
				"Heartbeat at " + a.Clock.Now().UTC().Format(time.RFC3339) + "\n"
			if code != 0 || out != want {
				t.Errorf("installer exited %d with output\n%s\nwant exit 0 and\n%s", code, out, want)
			}
			mode, token, ok := ixInstallation(t, a, "installer-home")
			if !ok || mode != "home" || token != "gw-home-token" {
				t.Errorf("installation: exists %v, mode %q, token %q; want home with gw-home-token", ok, mode, token)
			}
		})

		t.Run("link", func(t *testing.T) {
			// The script sends mode home; register-link links anyway.
			out, code := ixRun(t, a, linkKey, "gw-link-token", "register-link")
			want := "Validating API key...\n" +
				"Key valid: user installer-link, plan label\n" +
				"OpenClaw instance linked\n" +
				"Dashboard: " + rxDashboard + "\n" +
				"Heartbeat at " + a.Clock.Now().UTC().Format(time.RFC3339) + "\n"
			if code != 0 || out != want {
				t.Errorf("installer exited %d with output\n%s\nwant exit 0 and\n%s", code, out, want)
			}
			mode, token, ok := ixInstallation(t, a, "installer-link")
			if !ok || mode != "link" || token != "gw-link-token" {
				t.Errorf("installation: exists %v, mode %q, token %q; want link with gw-link-token", ok, mode, token)
			}
		})

		t.Run("re-run", func(t *testing.T) {
			// Running the installer again updates the one installation;
			// an empty token keeps the stored one.
			a.Clock.Advance(time.Minute)
			out, code := ixRun(t, a, homeKey, "", "register-link")
			if code != 0 || !strings.Contains(out, "OpenClaw instance linked\n") {
				t.Errorf("re-run exited %d:\n%s", code, out)
			}
			mode, token, _ := ixInstallation(t, a, "installer-home")
			if mode != "link" || token != "gw-home-token" {
				t.Errorf("after re-run: mode %q, token %q; want link, gw-home-token", mode, token)
			}
			a.settle(t)
			list, _ := rxList(t, a, a.AdminKey)
			if len(list) != 2 {
				t.Errorf("%d installations after a re-run, want 2: %+v", len(list), list)
			}
			rxSameTime(t, "lastSeen after re-run", rxMustFind(t, list, "installer-home").LastSeen, a.Clock.Now())
		})

		revoked := rxUserKey(t, a, "installer-revoked", "solo")
		rxRevoke(t, a, revoked)
		bad := map[string]string{
			"unknown key": "agb_zzzzzzzz_" + strings.Repeat("a", 52),
			"empty key":   "",
			"revoked key": revoked,
		}
		for name, key := range bad {
			t.Run(name, func(t *testing.T) {
				out, code := ixRun(t, a, key, "gw-bad", "register-home")
				want := "Validating API key...\nInvalid API key. Get one at https://agentbot.raveculture.xyz/dashboard\n"
				if code != 1 || out != want {
					t.Errorf("installer with %s exited %d with output\n%s\nwant exit 1 and\n%s", name, code, out, want)
				}
			})
		}
		if _, _, ok := ixInstallation(t, a, "installer-revoked"); ok {
			t.Errorf("a refused installer registered an installation")
		}
		list, _ := rxList(t, a, a.AdminKey)
		if len(list) != 2 {
			t.Errorf("%d installations, want 2: %+v", len(list), list)
		}
	})
}
