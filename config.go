package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/agentbot/registry/clientip"
	"github.com/agentbot/registry/database"
)

// config is every setting of the server and the command line. Each one is a
// flag with an environment variable of the same name in upper snake case
// (--database-url and DATABASE_URL); a flag given on the command line wins.
type config struct {
	Addr          string
	DatabaseURL   string
	InactiveAfter time.Duration
	DashboardURL  string
	RateLimit     int
	// HeartbeatFlush is how often pending heartbeats are written.
	HeartbeatFlush time.Duration
	TrustedProxies string
	Introspection  bool
	Playground     bool
	LogLevel       slog.Level
	SecretKey      string
	// ReadHeaderTimeout cuts off clients that are slow to send their
	// headers (slowloris); tests shorten it.
	ReadHeaderTimeout time.Duration
	// WriteTimeout bounds the writing of one answer, or of one 32 KiB
	// chunk of a streamed listing; tests shorten it.
	WriteTimeout time.Duration

	// clientIP is TrustedProxies, parsed by check.
	clientIP *clientip.Resolver
}

// check validates the settings that flags cannot check by type, and
// prepares the derived ones.
func (c *config) check() error {
	ips, err := clientip.New(c.TrustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	c.clientIP = ips
	if c.InactiveAfter <= 0 {
		return fmt.Errorf("--inactive-after must be positive")
	}
	if c.HeartbeatFlush <= 0 {
		return fmt.Errorf("--heartbeat-flush must be positive")
	}
	return nil
}

// newFlagSet declares the settings on a flag set named after the command
// and applies the environment to them. Flags a command adds afterwards are
// not read from the environment (keys create's --user is not $USER).
func newFlagSet(name string, stderr io.Writer, getenv func(string) string, cfg *config) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", ":8080", "address to listen on (env ADDR, or PORT for :PORT)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", database.DefaultURL, "postgres://… or sqlite:PATH (env DATABASE_URL)")
	fs.DurationVar(&cfg.InactiveAfter, "inactive-after", 5*time.Minute, "an installation not seen for this long is inactive (env INACTIVE_AFTER)")
	fs.StringVar(&cfg.DashboardURL, "dashboard-url", "https://agentbot.raveculture.xyz/dashboard", "dashboardUrl returned by registrations (env DASHBOARD_URL)")
	fs.DurationVar(&cfg.HeartbeatFlush, "heartbeat-flush", time.Second, "how often batched heartbeats are written (env HEARTBEAT_FLUSH)")
	fs.IntVar(&cfg.RateLimit, "rate-limit", 120, "requests per minute per client IP on /api/*; 0 turns it off (env RATE_LIMIT)")
	fs.StringVar(&cfg.TrustedProxies, "trusted-proxies", "", "comma-separated addresses or CIDR ranges of proxies whose X-Forwarded-For is believed (env TRUSTED_PROXIES)")
	fs.BoolVar(&cfg.Introspection, "graphql-introspection", true, "answer GraphQL schema queries; turn off in production if wanted (env GRAPHQL_INTROSPECTION)")
	fs.BoolVar(&cfg.Playground, "playground", true, "serve the GraphQL playground at /playground (env PLAYGROUND)")
	cfg.ReadHeaderTimeout = 10 * time.Second
	cfg.WriteTimeout = 60 * time.Second
	fs.StringVar(&cfg.SecretKey, "secret-key", "", "AES-256 key sealing gateway tokens at rest: 64 hex digits or base64; required with PostgreSQL, kept in secret.key beside a SQLite database when not given (env SECRET_KEY)")
	fs.TextVar(&cfg.LogLevel, "log-level", slog.LevelInfo, "debug, info, warn or error (env LOG_LEVEL)")

	if port := getenv("PORT"); port != "" {
		cfg.Addr = ":" + port
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" && err == nil {
			if setErr := fs.Set(f.Name, v); setErr != nil {
				err = fmt.Errorf("environment variable %s=%q: %w", name, v, setErr)
			}
		}
	})
	return fs, err
}

// parseArgs parses the command line over the environment's values and
// returns the arguments that are not flags. Flags may follow them
// (`keys revoke ID --database-url …`). The flag package has already told the
// user what was wrong when it fails.
func parseArgs(fs *flag.FlagSet, args []string, cfg *config) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return positional, cfg.check()
}

// noArgs is parseArgs for commands that take flags only.
func noArgs(fs *flag.FlagSet, args []string, cfg *config) error {
	rest, err := parseArgs(fs, args, cfg)
	if err == nil && len(rest) > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), rest[0])
		return errUsage
	}
	return err
}
