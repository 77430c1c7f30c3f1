package main

import (
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// The per-request cost of the busiest routes inside the process, without
// sockets: run with `go test -run '^$' -bench . -benchmem`. The fleet-scale
// figures (throughput against a floor, over real connections) are bench/'s.

// discard is a ResponseWriter that keeps only the header map, so the
// benchmark measures the server and not a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

func benchRequest(b *testing.B, a *app, method, path, key, body string) {
	b.Helper()
	w := &discard{h: http.Header{}}
	for b.Loop() {
		r, _ := http.NewRequest(method, path, strings.NewReader(body))
		r.RemoteAddr = "127.0.0.1:1234"
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		clear(w.h)
		a.Handler.ServeHTTP(w, r)
	}
}

func benchApp(b *testing.B) *app {
	a := startApp(b, "sqlite:"+filepath.Join(b.TempDir(), "registry.db"), slog.LevelInfo, nil)
	r, _ := http.NewRequest(http.MethodPost, "/api/register-home", strings.NewReader(`{"userId":"user-1","mode":"home"}`))
	r.Header.Set("Authorization", "Bearer "+a.AdminKey)
	w := &discard{h: http.Header{}}
	a.Handler.ServeHTTP(w, r)
	return a
}

func BenchmarkHeartbeatRequest(b *testing.B) {
	benchRequest(b, benchApp(b), http.MethodPost, "/api/heartbeat", "", `{"userId":"user-1"}`)
}

func BenchmarkValidateKeyRequest(b *testing.B) {
	a := benchApp(b)
	benchRequest(b, a, http.MethodPost, "/api/validate-key", a.AdminKey, "")
}

func BenchmarkUserListingRequest(b *testing.B) {
	a := benchApp(b)
	key := a.createKey(b, "user-1", "user", "solo")
	benchRequest(b, a, http.MethodGet, "/api/installations", key, "")
}
