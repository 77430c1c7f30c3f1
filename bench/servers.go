package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The benchmark runs its two reference servers by starting its own binary
// again with "floor" or "naive" as the first argument, so each is a process
// of its own (measured like the registry) and not the load generator.

// floorBody is what the floor answers: about the size of a heartbeat answer.
const floorBody = `{"success":true,"timestamp":"2026-01-01T00:00:00Z"}` + "\n"

// serveFloor is the floor: a bare net/http handler returning a fixed JSON
// body, the most any Go HTTP server can do on this machine.
func serveFloor(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body := []byte(floorBody)
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	return listenUntilSignal(*addr, mux)
}

// serveNaive is the naive heartbeat server: what the registry would be if it
// wrote each heartbeat as it came, one UPDATE per request over a pgx pool
// (32 connections, as many as the registry's PostgreSQL pool).
func serveNaive(args []string) error {
	fs := flag.NewFlagSet("naive", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	dbURL := fs.String("database-url", "", "postgres://… URL of a seeded registry database")
	maxConns := fs.Int("max-conns", 32, "size of the pgx pool")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := pgxpool.ParseConfig(*dbURL)
	if err != nil {
		return err
	}
	cfg.MaxConns = int32(*maxConns)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return err
	}
	defer pool.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := pool.Ping(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("POST /api/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			UserID string `json:"userId"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil || body.UserID == "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"success":false,"error":"userId is required"}` + "\n"))
			return
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		if _, err := pool.Exec(r.Context(),
			`UPDATE installations SET last_seen = $1 WHERE user_id = $2 AND last_seen < $1`, now, body.UserID); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"success":false,"error":"Internal server error"}` + "\n"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"success":true,"timestamp":%q}`+"\n", now.Format(time.RFC3339))
	})
	return listenUntilSignal(*addr, mux)
}

// listenUntilSignal serves h on addr until SIGTERM or SIGINT.
func listenUntilSignal(addr string, h http.Handler) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
