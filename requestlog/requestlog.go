// Package requestlog gives every request an ID that follows it into every
// log line, and writes one access log line per request. It never logs
// headers: the Authorization header carries raw keys.
package requestlog

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"time"
)

type idKey struct{}

// validID is what an incoming X-Request-ID must look like to be kept
// (a proxy's ID); anything else is replaced, so logs stay clean.
var validID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// WithID gives the request an ID (the caller's X-Request-ID when it is
// sane), returns it in the X-Request-ID response header and puts it in the
// request's context for the logger.
func WithID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id") // canonical: Get would allocate to canonicalize
		if !validID.MatchString(id) {
			id = newID()
		}
		w.Header()["X-Request-Id"] = []string{id} // canonical already: Set would allocate the key again
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), idKey{}, id)))
	})
}

// newID returns 16 random hex digits. Request IDs only tell requests apart
// in logs, so they come from math/rand/v2's generator (per CPU, seeded by
// the runtime) rather than a read of the operating system's randomness per
// request.
func newID() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// ID returns the request ID in ctx, or "".
func ID(ctx context.Context) string {
	id, _ := ctx.Value(idKey{}).(string)
	return id
}

// NewLogger returns a JSON logger whose records carry the requestId of the
// context they are logged with.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(contextHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := ID(ctx); id != "" {
		r.AddAttrs(slog.String("requestId", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

// Access logs the answer to one request of route: method, path, status,
// duration and client address. Successful requests of a quiet route (the
// heartbeat, probes, metrics) are logged at debug level, so the busiest
// routes do not flood the log.
// The client address is only worked out for lines that are written.
func Access(log *slog.Logger, r *http.Request, route string, quiet bool, client func(*http.Request) string, status int, elapsed time.Duration) {
	level := slog.LevelInfo
	if quiet && status < 400 {
		level = slog.LevelDebug
	}
	if !log.Enabled(r.Context(), level) {
		return
	}
	log.LogAttrs(r.Context(), level, "request",
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Float64("ms", float64(elapsed.Microseconds())/1000),
		slog.String("client", client(r)),
	)
}
