package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/go-chi/httprate"

	"github.com/agentbot/registry/auth"
	"github.com/agentbot/registry/clientip"
	"github.com/agentbot/registry/database"
	"github.com/agentbot/registry/graph"
	"github.com/agentbot/registry/metrics"
	"github.com/agentbot/registry/requestlog"
	"github.com/agentbot/registry/rest"
)

// NewServer is the whole HTTP surface of the registry, every route in one
// place.
func NewServer(cfg config, db *database.Database, resolver *graph.Resolver, m *metrics.Metrics, log *slog.Logger) http.Handler {
	api := &rest.API{Resolver: resolver, DashboardURL: cfg.DashboardURL, Log: log, WriteTimeout: cfg.WriteTimeout}
	gql := graph.NewHandler(resolver, graph.HandlerOptions{
		Introspection:   cfg.Introspection,
		ComplexityLimit: 10000,
		MaxDepth:        12,
		OnOperation: func(kind string, codes []string) {
			m.GraphQLOperation(kind, len(codes) > 0)
			for _, code := range codes {
				m.GraphQLError(code)
			}
		},
	})
	limit := rateLimiter(cfg.RateLimit, cfg.clientIP)

	mux := http.NewServeMux()
	// handle registers one route, measured and logged under its name. Quiet
	// routes (the ones agents and probes call constantly) log their
	// successes at debug level only; writes and GraphQL always at info.
	handle := func(pattern, route string, quiet bool, h http.Handler) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			answer := &statusWriter{ResponseWriter: w}
			h.ServeHTTP(answer, r)
			elapsed := time.Since(start)
			m.Request(route, r.Method, answer.Status(), elapsed)
			requestlog.Access(log, r, route, quiet, cfg.clientIP.IP, answer.Status(), elapsed)
		})
	}

	handle("/api/validate-key", "validate-key", true, limit(api.ValidateKey()))
	handle("/api/register-home", "register-home", false, limit(api.RegisterHome()))
	handle("/api/register-link", "register-link", false, limit(api.RegisterLink()))
	handle("/api/installations", "installations", true, limit(api.Installations()))
	handle("/api/heartbeat", "heartbeat", true, limit(api.Heartbeat()))
	handle("GET /openapi.json", "openapi", false, rest.OpenAPI())
	handle("/graphql", "graphql", false, http.MaxBytesHandler(gql, rest.MaxBodyBytes))
	if cfg.Playground {
		handle("GET /playground", "playground", false, playground.Handler("Agentbot Registry", "/graphql"))
	}
	handle("GET /metrics", "metrics", true, m.Handler())
	handle("GET /healthz", "healthz", true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, "ok")
	}))
	handle("GET /readyz", "readyz", true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.Ping(ctx); err != nil {
			writeStatus(w, http.StatusServiceUnavailable, "database unavailable")
			return
		}
		writeStatus(w, http.StatusOK, "ok")
	}))
	handle("/", "unmatched", false, http.HandlerFunc(rest.NotFound))

	return requestlog.WithID(recoverPanics(log, auth.Middleware(resolver.Authenticate)(mux)))
}

// statusWriter remembers the status a handler answered with, for metrics
// and the access log. Unwrap lets http.ResponseController reach the
// connection's own writer for anything more (flushing, deadlines).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Status is the status sent: 200 when the handler wrote nothing at all.
func (s *statusWriter) Status() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

func writeStatus(w http.ResponseWriter, code int, status string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, "{\"status\":%q}\n", status)
}

// rateLimiter allows perMinute requests a minute per client IP, answering
// the rest with a 429 JSON error; every answer carries RateLimit-* headers.
// 0 turns it off.
func rateLimiter(perMinute int, ips *clientip.Resolver) func(http.Handler) http.Handler {
	if perMinute <= 0 {
		return func(h http.Handler) http.Handler { return h }
	}
	limiter := httprate.NewRateLimiter(perMinute, time.Minute,
		httprate.WithKeyFuncs(func(r *http.Request) (string, error) { return ips.IP(r), nil }),
		httprate.WithResponseHeaders(httprate.ResponseHeaders{
			Limit:      "RateLimit-Limit",
			Remaining:  "RateLimit-Remaining",
			Reset:      "X-RateLimit-Reset", // httprate's Unix time of the reset
			RetryAfter: "Retry-After",
		}),
		httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
			rest.Fail(w, r, http.StatusTooManyRequests, "Too many requests: the limit is "+fmt.Sprint(perMinute)+" a minute")
		}),
	)
	return func(next http.Handler) http.Handler {
		limited := limiter.Handler(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// RateLimit-Reset is the seconds until the window resets; httprate
			// windows are aligned to the minute.
			now := time.Now()
			reset := now.Truncate(time.Minute).Add(time.Minute).Sub(now)
			w.Header().Set("RateLimit-Reset", fmt.Sprint(int(math.Ceil(reset.Seconds()))))
			limited.ServeHTTP(w, r)
		})
	}
}

// recoverPanics turns a panic in a handler into a 500 JSON error and a log
// line, instead of a dropped connection.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(r.Context(), "panic", "panic", fmt.Sprint(p), "path", r.URL.Path, "stack", string(debug.Stack()))
				rest.Fail(w, r, http.StatusInternalServerError, "Internal server error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}
