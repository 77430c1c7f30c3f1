package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/go-chi/httprate"

	"github.com/agentbot/registry/auth"
	"github.com/agentbot/registry/database"
	"github.com/agentbot/registry/graph"
	"github.com/agentbot/registry/rest"
)

// NewServer is the whole HTTP surface of the registry, every route in one
// place.
func NewServer(cfg config, db *database.Database, resolver *graph.Resolver, log *slog.Logger) http.Handler {
	api := &rest.API{Resolver: resolver, DashboardURL: cfg.DashboardURL, Log: log}
	gql := graph.NewHandler(resolver, graph.HandlerOptions{Introspection: true, ComplexityLimit: 10000})

	mux := http.NewServeMux()
	mux.Handle("/api/", rateLimit(cfg.RateLimit, apiMux(api)))
	mux.Handle("/graphql", http.MaxBytesHandler(gql, rest.MaxBodyBytes))
	mux.Handle("GET /playground", playground.Handler("Agentbot Registry", "/graphql"))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.Ping(ctx); err != nil {
			writeStatus(w, http.StatusServiceUnavailable, "database unavailable")
			return
		}
		writeStatus(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("/", rest.NotFound)

	return recoverPanics(log, auth.Middleware(resolver.Authenticate)(mux))
}

func apiMux(api *rest.API) http.Handler {
	mux := http.NewServeMux()
	api.Routes(mux)
	return mux
}

func writeStatus(w http.ResponseWriter, code int, status string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, "{\"status\":%q}\n", status)
}

// rateLimit allows perMinute requests a minute per client IP, answering
// the rest with a 429 JSON error and RateLimit-* headers; 0 turns it off.
func rateLimit(perMinute int, next http.Handler) http.Handler {
	if perMinute <= 0 {
		return next
	}
	limiter := httprate.NewRateLimiter(perMinute, time.Minute,
		httprate.WithKeyFuncs(clientIP),
		httprate.WithResponseHeaders(httprate.ResponseHeaders{
			Limit:      "RateLimit-Limit",
			Remaining:  "RateLimit-Remaining",
			Reset:      "RateLimit-Reset",
			RetryAfter: "Retry-After",
		}),
		httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
			rest.Fail(w, http.StatusTooManyRequests, "Too many requests")
		}),
	)
	return limiter.Handler(next)
}

// clientIP is the address the connection comes from.
func clientIP(r *http.Request) (string, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return httprate.CanonicalizeIP(host), nil
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
				rest.Fail(w, http.StatusInternalServerError, "Internal server error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}
