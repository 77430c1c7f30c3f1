// Command bench is the registry's benchmark (issue 3, "Fleet scale"). From
// the repository root:
//
//	go run ./bench                          # 100,000 installations, 6–7 minutes
//	go run ./bench -installations 1000000   # the fleet of the targets
//
// In one run it builds the server, starts it on PostgreSQL and on SQLite,
// seeds installations straight into the database, drives every endpoint
// with wrk at the same concurrency, and prints one markdown table (also
// written to -out) with the targets of the issue. See bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"
)

type config struct {
	installations int
	duration      time.Duration
	connections   int
	threads       int
	flush         time.Duration
	out           string
	pgURL         string
	pgDB          string
	src           string
	only          *regexp.Regexp
	skipPostgres  bool
	skipSQLite    bool
	keep          bool
	installWrk    bool
	timeout       time.Duration
	serverFlags   string
	quietWait     time.Duration
	quietBelow    float64
	seenRandom    bool
}

func main() {
	if len(os.Args) > 1 {
		var err error
		switch os.Args[1] {
		case "floor":
			err = serveFloor(os.Args[2:])
		case "naive":
			err = serveNaive(os.Args[2:])
		default:
			os.Exit(benchMain())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, os.Args[1]+":", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(benchMain())
}

func benchMain() int {
	var cfg config
	var million bool
	var only string
	flag.IntVar(&cfg.installations, "installations", 100_000, "installations to seed in each database")
	flag.BoolVar(&million, "million", false, "seed 1,000,000 installations (the fleet of the targets); same as -installations 1000000")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long wrk drives each row (whole seconds)")
	flag.IntVar(&cfg.connections, "connections", 64, "wrk connections (concurrency) of every loaded row")
	flag.IntVar(&cfg.threads, "threads", 2, "wrk threads of every loaded row")
	flag.DurationVar(&cfg.flush, "heartbeat-flush", time.Second, "the server's --heartbeat-flush")
	flag.StringVar(&cfg.out, "out", "bench/RESULTS.md", "write the markdown table here (relative to the repository root); empty for none")
	flag.StringVar(&cfg.pgURL, "pg-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL URL of a role that may create databases")
	flag.StringVar(&cfg.pgDB, "pg-db", "registry_bench", "database to (re)create for the run; dropped afterwards")
	flag.StringVar(&cfg.src, "src", "", "directory of the server to build (default: the repository root)")
	flag.StringVar(&only, "only", "", "run only the rows whose id (such as pg/heartbeat, sqlite/fleetsummary-1c) matches this regexp; the floor always runs")
	flag.BoolVar(&cfg.skipPostgres, "skip-postgres", false, "leave out the PostgreSQL rows")
	flag.BoolVar(&cfg.skipSQLite, "skip-sqlite", false, "leave out the SQLite rows")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary folder (binaries, logs, wrk scripts, SQLite file) and the PostgreSQL database")
	flag.BoolVar(&cfg.installWrk, "install-wrk", true, "install wrk with apt-get when it is missing (as root)")
	flag.DurationVar(&cfg.timeout, "timeout", 40*time.Minute, "stop the whole run after this long")
	flag.DurationVar(&cfg.quietWait, "quiet-wait", 15*time.Second, "before each row, wait up to this long for other processes to use less than -quiet-below cores; 0 does not wait")
	flag.Float64Var(&cfg.quietBelow, "quiet-below", 0.25, "see -quiet-wait")
	flag.StringVar(&cfg.serverFlags, "server-flags", "", "more flags for every registry server, space-separated (such as \"--log-level warn\")")
	flag.BoolVar(&cfg.seenRandom, "seen-random", false, "seed lastSeen at random instead of in the order the heartbeat load visits the installations (the database's worst case)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected argument %q\n", flag.Arg(0))
		flag.Usage()
		return 2
	}
	if million {
		cfg.installations = 1_000_000
	}
	if cfg.installations < 1000 || cfg.connections < 1 || cfg.threads < 1 || cfg.duration < time.Second {
		fmt.Fprintln(os.Stderr, "bench: need -installations ≥ 1000, -connections ≥ 1, -threads ≥ 1, -duration ≥ 1s")
		return 2
	}
	if only != "" {
		re, err := regexp.Compile(only)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -only:", err)
			return 2
		}
		cfg.only = re
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	b := &bench{cfg: cfg, started: time.Now()}
	defer b.procs.killAll() // also on a panic
	err := b.run(ctx)
	b.procs.killAll()
	b.cleanup(err != nil)
	if err == nil && cfg.keep && b.tmp != "" {
		fmt.Fprintln(os.Stderr, "bench: kept", b.tmp, "and the database", cfg.pgDB)
	}
	if err != nil && len(b.floors) > 0 {
		// What was measured before the run stopped, for the record; -out
		// keeps the last complete run's table.
		fmt.Printf("%s\n(incomplete run: %v)\n", b.report(), err)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		if b.tmp != "" {
			fmt.Fprintln(os.Stderr, "bench: logs are in", b.tmp)
		}
		if b.pgCreated {
			fmt.Fprintf(os.Stderr, "bench: the database %s is kept; the next run recreates it\n", cfg.pgDB)
		}
		return 1
	}
	return 0
}

// logf prints progress on stderr; the table goes to stdout.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// cleanup removes the temporary folder and the database, unless asked to
// keep them or the run failed (then the logs are worth reading).
func (b *bench) cleanup(failed bool) {
	if b.cfg.keep || failed {
		return
	}
	if b.pgCreated {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dropDatabase(ctx, b.cfg.pgURL, b.cfg.pgDB); err != nil {
			logf("dropping database %s: %v", b.cfg.pgDB, err)
		}
	}
	if b.tmp != "" {
		os.RemoveAll(b.tmp)
	}
}

// path joins a name to the temporary folder.
func (b *bench) path(name string) string { return filepath.Join(b.tmp, name) }
