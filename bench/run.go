package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// bench is one run.
type bench struct {
	cfg       config
	started   time.Time
	root      string // repository root
	tmp       string
	bin       string // the registry binary
	self      string // this program, for the floor and naive servers
	procs     procs
	pgCreated bool
	logSeq    int
	secretKey string                            // --secret-key of every registry command, "" when it has none
	seal      func(token, userID string) string // seals seeded gateway tokens as the server does

	rows     []*row
	floors   []*row
	checks   []heartbeatCheck
	listings []listing
	notes    []string
	env      map[string]string
}

// row is one line of the table.
type row struct {
	ID      string // pg/heartbeat
	Label   string // what was driven
	DB      string // PostgreSQL, SQLite, or "" for the floor and naive servers
	Conns   int
	Result  wrkResult
	PeakRSS int64 // VmHWM of the server process, which was started for this row
	// StmtsPerHB is database transactions per heartbeat (PostgreSQL), -1
	// when not measured.
	StmtsPerHB float64
	RowsPerHB  float64 // rows updated per heartbeat, -1 when not measured
	CPU        cpuUse  // where processor time went during the load
	LogIssues  string
	// QuietWait is how long the row waited for the machine to be quiet;
	// NotQuiet is the other processes' load (cores) when it gave up.
	QuietWait time.Duration
	NotQuiet  float64
	quieted   bool
	// SrvWritesPerHB is the server's own count of heartbeat batch writes
	// per heartbeat recorded (from its /metrics, when it has them), -1
	// when not available; SrvDropped the heartbeats it dropped.
	SrvWritesPerHB float64
	SrvDropped     float64
	SrvCounted     bool
	// Failed says why the row could not be measured.
	Failed string
}

// heartbeatCheck is what the benchmark found of the heartbeats it sent.
type heartbeatCheck struct {
	DB             string
	Sample         int           // final heartbeats sent with a known time
	ReflectedAt    int           // of which reflected after Waited
	Waited         time.Duration // flush interval + margin
	ConvergedAfter time.Duration // when not all were reflected at once: how long it took (0: never within the limit)
	LowerBound     int64         // userIds certainly acknowledged during the load
	UpperBound     int64         // userIds possibly sent during the load
	RowsSince      int64         // rows whose lastSeen moved during the load
	Pass           bool
	Detail         string
}

// listing is the admin REST listing of every installation.
type listing struct {
	DB                   string
	Count                int64
	Bytes                int64
	Took                 time.Duration
	RSSBefore, HWMBefore int64
	RSSAfter, HWMAfter   int64
	Err                  string
}

// store is one database the registry runs on.
type store struct {
	Name     string // PostgreSQL or SQLite
	Short    string // pg or sqlite
	URL      string // the server's --database-url
	db       *sql.DB
	dollar   bool // PostgreSQL placeholders
	adminKey string
	userKey  string
	// xacts returns committed plus rolled-back transactions and rows
	// updated of the database so far; nil where it cannot be counted.
	xacts func(ctx context.Context) (xacts, tupUpdated int64, err error)
	// Queries the benchmark itself sends to db, subtracted from xacts.
	ownQueries int64
}

func (b *bench) run(ctx context.Context) error {
	var err error
	if b.root, err = moduleRoot(); err != nil {
		return err
	}
	src := b.cfg.src
	if src == "" {
		src = b.root
	}
	if b.self, err = os.Executable(); err != nil {
		return err
	}
	if err := ensureWrk(b.cfg.installWrk); err != nil {
		return err
	}
	if b.tmp, err = os.MkdirTemp("", "registry-bench-"); err != nil {
		return err
	}
	b.bin = b.path("registry")
	logf("building the server: go build -o %s . (in %s)", b.bin, src)
	build := exec.CommandContext(ctx, "go", "build", "-o", b.bin, ".")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the server: %w\n%s", err, out)
	}
	b.env = machineFacts(ctx, src)
	if err := b.setupSecrets(ctx); err != nil {
		return err
	}

	if err := b.floor(ctx, "floor-1"); err != nil {
		return err
	}
	if !b.cfg.skipPostgres {
		st, err := b.setupPostgres(ctx)
		if err != nil {
			return fmt.Errorf("PostgreSQL: %w", err)
		}
		if b.want("pg/naive-heartbeat") {
			if err := b.naive(ctx, st); err != nil {
				if err := b.failed(ctx, "pg/naive-heartbeat", "naive heartbeat server", st, b.cfg.connections, err); err != nil {
					return err
				}
			}
		}
		if err := b.registryRows(ctx, st); err != nil {
			return fmt.Errorf("PostgreSQL: %w", err)
		}
		st.db.Close()
	}
	if !b.cfg.skipSQLite {
		st, err := b.setupSQLite(ctx)
		if err != nil {
			return fmt.Errorf("SQLite: %w", err)
		}
		if err := b.registryRows(ctx, st); err != nil {
			return fmt.Errorf("SQLite: %w", err)
		}
		st.db.Close()
	}
	if err := b.floor(ctx, "floor-2"); err != nil {
		return err
	}

	report := b.report()
	fmt.Print(report)
	if b.cfg.out != "" {
		out := b.cfg.out
		if !filepath.IsAbs(out) {
			out = filepath.Join(b.root, out)
		}
		if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			return err
		}
		logf("wrote %s", out)
	}
	return nil
}

func (b *bench) want(id string) bool { return b.cfg.only == nil || b.cfg.only.MatchString(id) }

// logFile names a new log file in the temporary folder.
func (b *bench) logFile(name string) string {
	b.logSeq++
	return b.path(fmt.Sprintf("%02d-%s.log", b.logSeq, strings.ReplaceAll(name, "/", "-")))
}

// moduleRoot is the folder of the go.mod the benchmark is run from.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the benchmark from the repository: go run ./bench")
	}
	return filepath.Dir(gomod), nil
}

// ---- reference servers ----

// floor drives the bare net/http handler with the heartbeat load (the
// heaviest script, so the floor is not flattered).
func (b *bench) floor(ctx context.Context, id string) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	c, err := b.procs.start(id, b.logFile(id), b.self, "floor", "-addr", addr)
	if err != nil {
		return err
	}
	defer c.stop(5 * time.Second)
	base := "http://" + addr
	if err := c.waitReady(ctx, base+"/", 20*time.Second); err != nil {
		return err
	}
	l := load{Method: "POST", Path: "/api/heartbeat", Body: bodyHeartbeat, Installations: b.cfg.installations}
	r := &row{ID: id, Label: "floor: bare net/http, fixed JSON body", Conns: b.cfg.connections, StmtsPerHB: -1, RowsPerHB: -1}
	if err := b.drive(ctx, c, base, l, r); err != nil {
		return err
	}
	b.floors = append(b.floors, r)
	return nil
}

// naive drives the one-UPDATE-per-heartbeat server on the seeded
// PostgreSQL database.
func (b *bench) naive(ctx context.Context, st *store) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	c, err := b.procs.start("naive", b.logFile("naive"), b.self, "naive", "-addr", addr, "-database-url", st.URL)
	if err != nil {
		return err
	}
	defer c.stop(5 * time.Second)
	base := "http://" + addr
	if err := c.waitReady(ctx, base+"/readyz", 20*time.Second); err != nil {
		return err
	}
	if err := probe(ctx, "POST", base+"/api/heartbeat", "", `{"userId":"user-0"}`, `"success":true`); err != nil {
		return fmt.Errorf("naive server: %w", err)
	}
	l := load{Method: "POST", Path: "/api/heartbeat", Body: bodyHeartbeat, Installations: b.cfg.installations}
	r := &row{ID: "pg/naive-heartbeat", Label: "naive heartbeat server: one UPDATE per request (pgx pool)", DB: st.Name,
		Conns: b.cfg.connections, StmtsPerHB: -1, RowsPerHB: -1}
	b.quiet(c, r)
	x0, u0, err := st.xacts(ctx)
	if err != nil {
		return err
	}
	if err := b.drive(ctx, c, base, l, r); err != nil {
		return err
	}
	time.Sleep(1500 * time.Millisecond) // PostgreSQL reports a backend's counters about once a second
	x1, u1, err := st.xacts(ctx)
	if err != nil {
		return err
	}
	if n := r.Result.Requests; n > 0 {
		r.StmtsPerHB = float64(x1-x0) / float64(n)
		r.RowsPerHB = float64(u1-u0) / float64(n)
	}
	b.rows = append(b.rows, r)
	return nil
}

// drive runs wrk against base with l and fills in r, including the peak RSS
// of c.
func (b *bench) drive(ctx context.Context, c *child, base string, l load, r *row) error {
	threads := b.cfg.threads
	if r.Conns == 1 {
		threads = 1
	}
	b.quiet(c, r)
	before := snapCPU()
	res, err := runWrk(ctx, l, base, r.Conns, threads, b.cfg.duration, b.tmp, strings.ReplaceAll(r.ID, "/", "-"), b.logFile("wrk-"+r.ID))
	if err != nil {
		return err
	}
	r.CPU = cpuBetween(before, snapCPU(), c.cmd.Process.Pid, res.CPU)
	r.Result = res
	if m, err := c.memory(); err == nil {
		r.PeakRSS = m.HWM
	} else {
		logf("%s: reading memory: %v", r.ID, err)
	}
	ratio := ""
	if len(b.floors) > 0 && b.floors[0].Result.rps() > 0 {
		ratio = fmt.Sprintf("  %.2f× floor", res.rps()/b.floors[0].Result.rps())
	}
	errs := ""
	if res.errors() > 0 {
		errs = "  ERRORS: " + res.errorText()
	}
	if res.Requests == 0 {
		errs += "  NO ANSWER within the run"
	}
	logf("%-32s c=%-3d %9.0f req/s  p50 %s  p99 %s  peak RSS %s%s  CPU %s%s", r.ID, r.Conns, res.rps(),
		fmtLatency(res.P50), fmtLatency(res.P99), fmtMB(r.PeakRSS), ratio, r.CPU, errs)
	return nil
}

// quiet waits (once per row) for the machine to be quiet before a load.
func (b *bench) quiet(c *child, r *row) {
	if b.cfg.quietWait <= 0 || r.quieted {
		return
	}
	r.quieted = true
	waited, level, quiet := waitQuiet(b.cfg.quietWait, b.cfg.quietBelow, c.cmd.Process.Pid)
	r.QuietWait = waited
	if !quiet {
		r.NotQuiet = level
		logf("%-32s the machine is busy (%.2f cores used by other processes); measuring anyway", r.ID, level)
	}
}

// ---- the registry ----

// startRegistry starts the server on st and waits until it is ready.
func (b *bench) startRegistry(ctx context.Context, st *store, id string) (*child, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	args := append([]string{b.bin, "serve", "--addr", addr, "--rate-limit", "0",
		"--heartbeat-flush", b.cfg.flush.String()}, b.dbFlags(st)...)
	args = append(args, strings.Fields(b.cfg.serverFlags)...)
	c, err := b.procs.start("registry "+id, b.logFile("registry-"+id), args...)
	if err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	if err := c.waitReady(ctx, base+"/readyz", 120*time.Second); err != nil {
		c.stop(5 * time.Second)
		return nil, "", err
	}
	return c, base, nil
}

const (
	gqlFirst50      = `{ installations(first: 50) { edges { node { id userId mode status registeredAt lastSeen } } pageInfo { hasNextPage endCursor } } }`
	gqlFirst50Total = `{ installations(first: 50) { totalCount edges { node { id userId mode status registeredAt lastSeen } } pageInfo { hasNextPage endCursor } } }`
	gqlFleetSummary = `{ fleetSummary { total active inactive home link cloud } }`
	// Without pageInfo: entgql's Paginate counts the whole selection when
	// pageInfo is asked for, not only for totalCount; this row shows what
	// the page costs without that count.
	gqlFirst50Edges = `{ installations(first: 50) { edges { node { id userId mode status registeredAt lastSeen } } } }`
)

func gqlBody(query string) string {
	b, _ := json.Marshal(map[string]string{"query": query})
	return string(b)
}

// registryRows runs every row of this server on st.
func (b *bench) registryRows(ctx context.Context, st *store) error {
	type spec struct {
		id, label string
		conns     int
		load      load
		expect    string // a piece of the probe's answer
	}
	n, c := b.cfg.installations, b.cfg.connections
	specs := []spec{
		{"validate-key", "POST /api/validate-key (admin key)", c,
			load{Method: "POST", Path: "/api/validate-key", Key: st.adminKey}, `"valid":true`},
		{"rest-installations-user", "GET /api/installations (user key)", c,
			load{Method: "GET", Path: "/api/installations", Key: st.userKey}, `"count":1,`},
		{"gql-first50", "GraphQL installations(first: 50)", c,
			load{Method: "POST", Path: "/graphql", Key: st.adminKey, Body: gqlBody(gqlFirst50)}, `"endCursor"`},
		{"gql-first50-totalcount", "GraphQL installations(first: 50) + totalCount", c,
			load{Method: "POST", Path: "/graphql", Key: st.adminKey, Body: gqlBody(gqlFirst50Total)}, `"totalCount"`},
		{"fleetsummary", "GraphQL fleetSummary", c,
			load{Method: "POST", Path: "/graphql", Key: st.adminKey, Body: gqlBody(gqlFleetSummary)}, `"total"`},
		{"gql-first50-1c", "GraphQL installations(first: 50), one client", 1,
			load{Method: "POST", Path: "/graphql", Key: st.adminKey, Body: gqlBody(gqlFirst50)}, `"endCursor"`},
		{"gql-first50-totalcount-1c", "GraphQL installations(first: 50) + totalCount, one client", 1,
			load{Method: "POST", Path: "/graphql", Key: st.adminKey, Body: gqlBody(gqlFirst50Total)}, `"totalCount"`},
		{"gql-first50-edges-1c", "GraphQL installations(first: 50), edges only (no pageInfo), one client", 1,
			load{Method: "POST", Path: "/graphql", Key: st.adminKey, Body: gqlBody(gqlFirst50Edges)}, `"lastSeen"`},
		{"fleetsummary-1c", "GraphQL fleetSummary, one client", 1,
			load{Method: "POST", Path: "/graphql", Key: st.adminKey, Body: gqlBody(gqlFleetSummary)}, `"total"`},
	}

	// Heartbeats first, while lastSeen holds only seeded times.
	if id := st.Short + "/heartbeat"; b.want(id) {
		if err := b.heartbeatRow(ctx, st, id); err != nil {
			if err := b.failed(ctx, id, "POST /api/heartbeat", st, c, err); err != nil {
				return err
			}
		}
	}
	for _, s := range specs {
		id := st.Short + "/" + s.id
		if !b.want(id) {
			continue
		}
		s.load.Installations = n
		err := b.loadRow(ctx, st, &row{ID: id, Label: s.label, DB: st.Name, Conns: s.conns}, s.load,
			s.load.Body, s.expect)
		if err != nil {
			if err := b.failed(ctx, id, s.label, st, s.conns, err); err != nil {
				return err
			}
		}
	}
	if id := st.Short + "/listing-admin"; b.want(id) {
		if err := b.listingRow(ctx, st, id); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			logf("%-32s FAILED: %v", id, err)
			b.listings = append(b.listings, listing{DB: st.Name, Err: err.Error()})
		}
	}
	// Registrations last: they add installations, which the reads above
	// should not see.
	if id := st.Short + "/register-home"; b.want(id) {
		label := "POST /api/register-home (admin key, new userIds)"
		l := load{Method: "POST", Path: "/api/register-home", Key: st.adminKey, Body: bodyRegister,
			Installations: n, Nonce: fmt.Sprintf("%x", time.Now().UnixNano())}
		err := b.loadRow(ctx, st, &row{ID: id, Label: label, DB: st.Name, Conns: c}, l,
			`{"userId":"reg-probe-`+l.Nonce+`","mode":"home"}`, `"success":true`)
		if err != nil {
			if err := b.failed(ctx, id, label, st, c, err); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadRow runs one row on a fresh server: a probe request (probeBody), then
// the load. The row is kept when it ran.
func (b *bench) loadRow(ctx context.Context, st *store, r *row, l load, probeBody, expect string) error {
	r.StmtsPerHB, r.RowsPerHB = -1, -1
	srv, base, err := b.startRegistry(ctx, st, strings.TrimPrefix(r.ID, st.Short+"/"))
	if err != nil {
		return err
	}
	defer srv.stop(30 * time.Second)
	if err := probe(ctx, l.Method, base+l.Path, l.Key, probeBody, expect); err != nil {
		return err
	}
	if err := b.drive(ctx, srv, base, l, r); err != nil {
		return err
	}
	srv.stop(30 * time.Second)
	r.LogIssues = logIssues(srv.log)
	b.rows = append(b.rows, r)
	return nil
}

// failed records a row that could not be measured, so the run goes on and
// the table shows why. It returns an error only when the run is over
// (interrupted or out of time).
func (b *bench) failed(ctx context.Context, id, label string, st *store, conns int, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	logf("%-32s FAILED: %v", id, err)
	b.rows = append(b.rows, &row{ID: id, Label: label, DB: st.Name, Conns: conns, StmtsPerHB: -1, RowsPerHB: -1, Failed: err.Error()})
	return nil
}

// heartbeatRow drives POST /api/heartbeat, then checks that what was
// acknowledged reached lastSeen after one flush interval, and counts the
// database statements it took.
func (b *bench) heartbeatRow(ctx context.Context, st *store, id string) error {
	srv, base, err := b.startRegistry(ctx, st, "heartbeat")
	if err != nil {
		return err
	}
	defer srv.stop(30 * time.Second)
	if err := probe(ctx, "POST", base+"/api/heartbeat", "", `{"userId":"user-0"}`, `"success":true`); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	time.Sleep(b.cfg.flush + 500*time.Millisecond) // the probe's flush is not the load's
	r := &row{ID: id, Label: "POST /api/heartbeat", DB: st.Name, Conns: b.cfg.connections, StmtsPerHB: -1, RowsPerHB: -1}
	b.quiet(srv, r)
	m0 := scrapeMetrics(ctx, base)
	var x0, u0 int64
	if st.xacts != nil {
		if x0, u0, err = st.xacts(ctx); err != nil {
			return err
		}
	}
	own0 := st.ownQueries
	loadStart := time.Now().UTC().Truncate(time.Microsecond)
	l := load{Method: "POST", Path: "/api/heartbeat", Body: bodyHeartbeat, Installations: b.cfg.installations}
	if err := b.drive(ctx, srv, base, l, r); err != nil {
		return err
	}

	check, sampled, err := b.checkHeartbeats(ctx, st, base, r.Result, loadStart)
	if err != nil {
		return fmt.Errorf("%s: checking lastSeen: %w", id, err)
	}
	b.checks = append(b.checks, check)
	status := "PASS"
	if !check.Pass {
		status = "FAIL"
	}
	logf("%-32s lastSeen check: %s — %s", id, status, check.Detail)

	if st.xacts != nil {
		time.Sleep(1500 * time.Millisecond) // PostgreSQL reports a backend's counters about once a second
		x1, u1, err := st.xacts(ctx)
		if err != nil {
			return err
		}
		beats := r.Result.Requests + int64(sampled)
		own := st.ownQueries - own0
		r.StmtsPerHB = float64(x1-x0-own) / float64(beats)
		r.RowsPerHB = float64(u1-u0) / float64(beats)
		logf("%-32s %d transactions, %d rows updated for %d heartbeats: %.4f statements, %.3f rows per heartbeat",
			id, x1-x0-own, u1-u0, beats, r.StmtsPerHB, r.RowsPerHB)
	}
	m1 := scrapeMetrics(ctx, base)
	const recorded, writes, dropped = "registry_heartbeats_recorded_total", "registry_heartbeats_writes_total", "registry_heartbeats_dropped_total"
	if _, ok := m0[writes]; ok {
		if n := m1[recorded] - m0[recorded]; n > 0 {
			r.SrvCounted = true
			r.SrvWritesPerHB = (m1[writes] - m0[writes]) / n
			r.SrvDropped = m1[dropped] - m0[dropped]
			logf("%-32s the server counts %.0f heartbeats recorded, %.0f batch writes (%.4f per heartbeat), %.0f dropped",
				id, n, m1[writes]-m0[writes], r.SrvWritesPerHB, r.SrvDropped)
		}
	}
	if m, err := srv.memory(); err == nil && m.HWM > r.PeakRSS {
		r.PeakRSS = m.HWM
	}
	r.LogIssues = logIssues(srv.log)
	b.rows = append(b.rows, r)
	return nil
}

// checkHeartbeats verifies that heartbeats reach lastSeen within a flush
// interval: it sends one last heartbeat at a known time T to a sample of
// userIds the load acknowledged, waits one flush interval and a half second,
// and reads them back: each must show lastSeen ≥ T. It also counts the rows
// whose lastSeen moved during the load against the userIds wrk sent.
func (b *bench) checkHeartbeats(ctx context.Context, st *store, base string, res wrkResult, loadStart time.Time) (heartbeatCheck, int, error) {
	check := heartbeatCheck{DB: st.Name, Waited: b.cfg.flush + 500*time.Millisecond}
	// Each wrk thread t walks userIds t·span … t·span+span-1 in order; sent
	// counts the requests it made, of which at most `unanswered` (in flight
	// when the run stopped) got no answer.
	unanswered := max(0, sum(res.Sent)-res.Requests) + res.Status
	var acked []int64
	for t, sent := range res.Sent {
		check.UpperBound += min(sent, res.Span)
		sure := min(max(sent-unanswered, 0), res.Span)
		check.LowerBound += sure
		for j := range sure {
			acked = append(acked, int64(t)*res.Span+j)
		}
	}
	// A sample of 1000 acknowledged userIds, spread over all of them.
	var sample []string
	if len(acked) > 0 {
		step := max(1, len(acked)/1000)
		for i := 0; i < len(acked) && len(sample) < 1000; i += step {
			sample = append(sample, fmt.Sprintf("user-%d", acked[i]))
		}
	}
	check.Sample = len(sample)

	T := time.Now().UTC().Truncate(time.Microsecond)
	if err := sendHeartbeats(ctx, base, sample); err != nil {
		return check, len(sample), err
	}
	time.Sleep(check.Waited)

	var err error
	if check.ReflectedAt, err = st.seenSince(ctx, sample, T); err != nil {
		return check, len(sample), err
	}
	if check.RowsSince, err = st.countSince(ctx, loadStart); err != nil {
		return check, len(sample), err
	}
	sampleOK := check.ReflectedAt == check.Sample
	rowsOK := check.RowsSince >= check.LowerBound && check.RowsSince <= check.UpperBound
	if !sampleOK {
		// How long until they are? (At most 30 s more.)
		start := time.Now()
		for time.Since(start) < 30*time.Second {
			time.Sleep(250 * time.Millisecond)
			n, err := st.seenSince(ctx, sample, T)
			if err != nil {
				return check, len(sample), err
			}
			if n == check.Sample {
				check.ConvergedAfter = check.Waited + time.Since(start)
				break
			}
		}
	}
	check.Pass = sampleOK && rowsOK && check.Sample > 0
	check.Detail = fmt.Sprintf("%d/%d sampled userIds show the heartbeat sent at T after %s", check.ReflectedAt, check.Sample, check.Waited)
	if !sampleOK {
		if check.ConvergedAfter > 0 {
			check.Detail += fmt.Sprintf(" (all of them after %.1f s)", check.ConvergedAfter.Seconds())
		} else {
			check.Detail += " (not all of them within 30 s more)"
		}
	}
	check.Detail += fmt.Sprintf("; %d rows got a newer lastSeen during the load, for %d to %d userIds acknowledged",
		check.RowsSince, check.LowerBound, check.UpperBound)
	if !rowsOK {
		check.Detail += " (outside that range)"
	}
	if check.Sample == 0 {
		check.Detail += "; no userId was certainly acknowledged, so nothing was checked"
	}
	return check, len(sample), nil
}

// scrapeMetrics reads the unlabelled samples of the server's /metrics, if
// it has one; an empty map if not.
func scrapeMetrics(ctx context.Context, base string) map[string]float64 {
	m := map[string]float64{}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	if err != nil {
		return m
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return m
	}
	for line := range strings.Lines(string(body)) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			m[name] = v
		}
	}
	return m
}

func sum(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}

// sendHeartbeats posts one heartbeat for each userId, 16 at a time, each
// answered 200.
func sendHeartbeats(ctx context.Context, base string, userIDs []string) error {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	work := make(chan string)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for u := range work {
				err := post(ctx, client, base+"/api/heartbeat", "", `{"userId":"`+u+`"}`, `"success":true`)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, u := range userIDs {
		work <- u
	}
	close(work)
	wg.Wait()
	return firstErr
}

// listingRow fetches GET /api/installations with the admin key (every
// installation) from a fresh server and measures how its memory grows.
func (b *bench) listingRow(ctx context.Context, st *store, id string) error {
	srv, base, err := b.startRegistry(ctx, st, "listing-admin")
	if err != nil {
		return err
	}
	defer srv.stop(30 * time.Second)
	// One small authenticated request first, so the key check is cached
	// and the baseline is a server that has answered something.
	if err := probe(ctx, "POST", base+"/api/validate-key", st.adminKey, "", `"valid":true`); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	time.Sleep(200 * time.Millisecond)
	l := listing{DB: st.Name}
	before, err := srv.memory()
	if err != nil {
		return err
	}
	l.RSSBefore, l.HWMBefore = before.RSS, before.HWM
	start := time.Now()
	l.Count, l.Bytes, err = fetchListing(ctx, base+"/api/installations", st.adminKey)
	l.Took = time.Since(start)
	if err != nil {
		l.Err = err.Error()
	}
	after, merr := srv.memory()
	if merr != nil {
		return merr
	}
	l.RSSAfter, l.HWMAfter = after.RSS, after.HWM
	if l.Err == "" {
		want, err := st.count(ctx)
		if err != nil {
			return err
		}
		if l.Count != want {
			l.Err = fmt.Sprintf("listed %d installations, the database holds %d", l.Count, want)
		}
	}
	b.listings = append(b.listings, l)
	msg := fmt.Sprintf("%-32s %d installations, %s in %.1f s; RSS %s before, peak %s after: growth %s",
		id, l.Count, fmtMB(l.Bytes), l.Took.Seconds(), fmtMB(l.RSSBefore), fmtMB(l.HWMAfter), fmtMB(l.HWMAfter-l.RSSBefore))
	if l.Err != "" {
		msg += "  ERROR: " + l.Err
	}
	logf("%s", msg)
	return nil
}

// fetchListing reads the listing as a stream, checking that it is the
// documented JSON and that count matches the installations it holds.
func fetchListing(ctx context.Context, url, key string) (count, size int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	counter := &countingReader{r: resp.Body}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(counter, 1000))
		return 0, counter.n, fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	dec := json.NewDecoder(counter)
	declared := int64(-1)
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, counter.n, fmt.Errorf("not a JSON object (%v)", err)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return count, counter.n, err
		}
		switch t {
		case "count":
			if err := dec.Decode(&declared); err != nil {
				return count, counter.n, err
			}
		case "installations":
			if t, err := dec.Token(); err != nil || t != json.Delim('[') {
				return count, counter.n, fmt.Errorf("installations is not an array (%v)", err)
			}
			for dec.More() {
				var item struct {
					UserID string `json:"userId"`
				}
				if err := dec.Decode(&item); err != nil {
					return count, counter.n, err
				}
				if item.UserID == "" {
					return count, counter.n, errors.New("an installation without userId")
				}
				count++
			}
			if _, err := dec.Token(); err != nil {
				return count, counter.n, err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return count, counter.n, err
			}
		}
	}
	if _, err := io.Copy(io.Discard, counter); err != nil {
		return count, counter.n, err
	}
	if declared != count {
		return count, counter.n, fmt.Errorf("count says %d, the list holds %d", declared, count)
	}
	return count, counter.n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// probe sends one request as the load will, and checks that it is
// answered 200 with a body containing expect, so a row never measures a
// stream of errors.
func probe(ctx context.Context, method, url, key, body, expect string) error {
	client := &http.Client{Timeout: 60 * time.Second}
	if method == "GET" {
		return get(ctx, client, url, key, expect)
	}
	return post(ctx, client, url, key, body, expect)
}

func post(ctx context.Context, client *http.Client, url, key, body, expect string) error {
	return do(ctx, client, "POST", url, key, body, expect)
}

func get(ctx context.Context, client *http.Client, url, key, expect string) error {
	return do(ctx, client, "GET", url, key, "", expect)
}

func do(ctx context.Context, client *http.Client, method, url, key, body, expect string) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(got, []byte(expect)) || bytes.Contains(got, []byte(`"errors"`)) {
		return fmt.Errorf("%s %s answered %d: %.300s", method, url, resp.StatusCode, got)
	}
	return nil
}

// logIssues summarises the warnings and errors a server logged.
func logIssues(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var warns, errs int
	var first string
	for line := range strings.Lines(string(b)) {
		isErr := strings.Contains(line, `"level":"ERROR"`)
		isWarn := strings.Contains(line, `"level":"WARN"`)
		if isErr {
			errs++
		}
		if isWarn {
			warns++
		}
		if (isErr || isWarn) && first == "" {
			first = strings.TrimSpace(line)
			if len(first) > 300 {
				first = first[:300] + "…"
			}
		}
	}
	if errs+warns == 0 {
		return ""
	}
	return fmt.Sprintf("%d errors, %d warnings logged; first: %s", errs, warns, first)
}
