package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newBox(t *testing.T) *Box {
	t.Helper()
	key, err := LoadOrCreateKeyFile(filepath.Join(t.TempDir(), "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	b := newBox(t)
	sealed := b.Seal("gw-token", "user-1")
	if !IsSealed(sealed) || strings.Contains(sealed, "gw-token") {
		t.Fatalf("sealed %q", sealed)
	}
	if sealed == b.Seal("gw-token", "user-1") {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	if got, err := b.Open(sealed, "user-1"); err != nil || got != "gw-token" {
		t.Errorf("open: %q, %v", got, err)
	}
	if _, err := b.Open(sealed, "user-2"); err != ErrTampered {
		t.Errorf("opened under another binding: %v", err)
	}
	if _, err := newBox(t).Open(sealed, "user-1"); err != ErrTampered {
		t.Errorf("opened with another key: %v", err)
	}
	if _, err := b.Open(sealed[:len(sealed)-2]+"AA", "user-1"); err != ErrTampered {
		t.Errorf("opened a changed value: %v", err)
	}
	if got, err := b.Open("legacy-plain", "user-1"); err != nil || got != "legacy-plain" {
		t.Errorf("plaintext row: %q, %v", got, err)
	}
}

func TestKeyFileIsPrivateAndStable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	first, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", info.Mode(), err)
	}
	again, err := LoadOrCreateKeyFile(path)
	if err != nil || string(again) != string(first) {
		t.Errorf("second load gave another key (%v)", err)
	}
}

func TestParseKey(t *testing.T) {
	for _, bad := range []string{"", "short", strings.Repeat("ab", 31)} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
	if _, err := ParseKey(strings.Repeat("ab", 32)); err != nil {
		t.Errorf("hex: %v", err)
	}
	if _, err := ParseKey("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="); err != nil {
		t.Errorf("base64: %v", err)
	}
}
