// Agentbot Registry: the service AI-agent installations register with and
// report to. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/agentbot/registry/database"
	"github.com/agentbot/registry/graph"
	"github.com/agentbot/registry/heartbeat"
	"github.com/agentbot/registry/metrics"
	"github.com/agentbot/registry/requestlog"
	"github.com/agentbot/registry/secrets"
)

func main() {
	// A soft memory limit makes the garbage collector work harder before the
	// process grows, so bursts of GraphQL or listings do not balloon RSS.
	// Under it the collector can run half as often as Go's default: a
	// request leaves little live data behind, and at 30,000 heartbeats a
	// second the collections themselves were what the extra room saves
	// (3–15% more heartbeats a second; the heartbeat load's peak RSS rose
	// from about 45 to 61 MB, still below that of the GraphQL loads).
	// GOMEMLIMIT and GOGC, the Go runtime's own settings, override them.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		switch {
		case errors.Is(err, errHelp):
			return
		case !errors.Is(err, errUsage):
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(2)
	}
}

// defaultMemoryLimit is the soft heap limit when GOMEMLIMIT is not set;
// defaultGCPercent the heap growth between collections when GOGC is not.
const (
	defaultMemoryLimit = 40 << 20
	defaultGCPercent   = 200
)

// errUsage is returned after a usage message has been printed; errHelp
// after help was asked for and printed.
var (
	errUsage = errors.New("usage")
	errHelp  = errors.New("help")
)

const usage = `Agentbot Registry

Usage:
  registry [serve]          run the server (the default)
  registry keys create --user USER [--plan solo] [--role user|admin] [--label TEXT] [--expires 720h]
  registry keys list
  registry keys revoke ID_OR_PREFIX
  registry migrate          bring the database schema up to date and exit
  registry version

Every command takes the settings below; each has an environment variable
of the same name (--database-url and DATABASE_URL).
`

// run is the whole program, with its inputs and outputs passed in so tests
// can run it in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	command := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		command, args = args[0], args[1:]
	}
	switch command {
	case "serve":
		return serve(ctx, args, getenv, stderr)
	case "migrate":
		return migrate(ctx, args, getenv, stderr)
	case "keys":
		return keys(ctx, args, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version())
		return nil
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n%s", command, usage)
	return errUsage
}

// openDatabase opens the configured database and brings its schema up to date.
func openDatabase(ctx context.Context, cfg config) (*database.Database, error) {
	db, err := database.Open(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// openSecrets returns the box that seals gateway tokens: under --secret-key,
// or, for the embedded SQLite default, under a key file kept beside the
// database (created on first use, mode 0600). PostgreSQL needs the key
// given: replicas must share it, and a database server is no place to
// generate it.
func openSecrets(cfg config, db *database.Database) (*secrets.Box, error) {
	var key []byte
	var err error
	switch {
	case cfg.SecretKey != "":
		key, err = secrets.ParseKey(cfg.SecretKey)
	case db.Path != "":
		key, err = secrets.LoadOrCreateKeyFile(filepath.Join(filepath.Dir(db.Path), "secret.key"))
	default:
		return nil, errors.New("PostgreSQL needs --secret-key (or SECRET_KEY) to seal gateway tokens; make one with: openssl rand -hex 32")
	}
	if err != nil {
		return nil, fmt.Errorf("--secret-key: %w", err)
	}
	return secrets.NewBox(key)
}

// prepare makes the database ready for the server: the schema up to date,
// and every gateway token sealed.
func prepare(ctx context.Context, cfg config, db *database.Database, r *graph.Resolver, log *slog.Logger) error {
	box, err := openSecrets(cfg, db)
	if err != nil {
		return err
	}
	r.Secrets = box
	n, err := r.SealPlaintextTokens(ctx)
	if n > 0 {
		log.Info("sealed plaintext gateway tokens", "count", n)
	}
	return err
}

// newResolver wires the resolvers to the database, with heartbeats and key
// uses written in batches every --heartbeat-flush, and registers their
// metrics on m. Call its Run.
func newResolver(cfg config, db *database.Database, m *metrics.Metrics, log *slog.Logger) *graph.Resolver {
	batched := func(name string, write heartbeat.WriteFunc) *heartbeat.Coalescer {
		return heartbeat.New(write, heartbeat.Options{
			Name:       name,
			FlushEvery: cfg.HeartbeatFlush,
			BatchSize:  1000,
			MaxPending: 1_000_000,
			Retryable:  database.Retryable,
			Log:        log,
		})
	}
	var r *graph.Resolver
	touchInstallations := func(ctx context.Context, batch []heartbeat.Seen) error {
		err := db.TouchInstallations(ctx, batch)
		if err == nil {
			r.ForgetFleetCounts() // written heartbeats may turn installations active
		}
		return err
	}
	r = graph.New(db.Client,
		batched("heartbeats", touchInstallations),
		batched("key uses", db.TouchAPIKeys),
		cfg.InactiveAfter, log)
	r.Retryable = database.Retryable
	r.OnKeyCheck = m.KeyCheck
	m.WatchDB(db.DB)
	m.WatchFleet(r.FleetCounts)
	m.WatchBatches("heartbeats", "Heartbeats", r.Heartbeats.Stats)
	m.WatchBatches("key_uses", "Key uses", r.KeyUses.Stats)
	return r
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var cfg config
	fs, err := newFlagSet("serve", stderr, getenv, &cfg)
	if err != nil {
		return err
	}
	if err := noArgs(fs, args, &cfg); err != nil {
		return err
	}
	log := requestlog.NewLogger(stderr, cfg.LogLevel)
	db, err := openDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()

	m := metrics.New()
	resolver := newResolver(cfg, db, m, log)
	if err := prepare(ctx, cfg, db, resolver, log); err != nil {
		return err
	}
	// The background work stops only after the last request is answered,
	// so its final flush includes every acknowledged heartbeat.
	background, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	backgroundDone := make(chan struct{})
	go func() { resolver.Run(background); close(backgroundDone) }()
	defer func() { stopBackground(); <-backgroundDone }()

	srv := newHTTPServer(cfg, NewServer(cfg, db, resolver, m, log))
	srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String(), "database", db.Dialect, "version", version())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	log.Info("stopped")
	return nil
}

// newHTTPServer bounds what one client can hold: a slow client that has not
// sent its headers within cfg.ReadHeaderTimeout is cut off, one that does
// not take its answer within cfg.WriteTimeout too, headers are at most
// 64 KiB (larger ones get 431), and idle connections are closed.
func newHTTPServer(cfg config, handler http.Handler) *http.Server {
	return &http.Server{
		Addr:              cfg.Addr,
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var cfg config
	fs, err := newFlagSet("migrate", stderr, getenv, &cfg)
	if err != nil {
		return err
	}
	if err := noArgs(fs, args, &cfg); err != nil {
		return err
	}
	db, err := openDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	log := requestlog.NewLogger(stderr, cfg.LogLevel)
	if err := prepare(ctx, cfg, db, newResolver(cfg, db, metrics.New(), log), log); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "schema is up to date; gateway tokens are sealed")
	return nil
}
