package main

// Fault tests (issue 4, item 5; CONTRACT.md §7):
//
//   - TestFaultDatabaseOutage stops a private PostgreSQL while clients keep
//     calling, expects clean 5xx JSON and /readyz 503 meanwhile, starts it
//     again and expects the same process to recover by itself, with no
//     acknowledged registration and no acknowledged heartbeat lost.
//   - TestFaultSIGTERMUnderLoad sends SIGTERM to the real binary during heavy
//     heartbeat load and checks that every heartbeat acknowledged before it
//     exited is in the database afterwards.
//
// Helpers of this file start with fx.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentbot/registry/database"
	"github.com/agentbot/registry/ent/installation"
)

// ------------------------------------------------------------ HTTP client

// fxResult is one answer, or the transport error that stopped it.
type fxResult struct {
	Status int
	Header http.Header
	Raw    string
	JSON   map[string]any
	Err    error
}

// fxDo sends one request and never fails the test itself: the fault tests
// call it from many goroutines and judge the result afterwards.
func fxDo(client *http.Client, method, url, key, body string) fxResult {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return fxResult{Err: err}
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Do(req)
	if err != nil {
		return fxResult{Err: err}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return fxResult{Status: res.StatusCode, Err: fmt.Errorf("reading the body: %w", err)}
	}
	r := fxResult{Status: res.StatusCode, Header: res.Header, Raw: string(raw)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.JSON); err != nil {
			r.JSON = nil
		}
	}
	return r
}

func fxClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

// fxLeakWords are fragments of SQL, driver and network errors: none may
// reach a client.
var fxLeakWords = []string{
	"sql", "pgx", "pgconn", "postgres", "driver", "dial", "connect", "refused",
	"closed", "terminat", "shutdown", "57p01", "ent:", "goroutine", ".go:",
	"127.0.0.1", "unexpected eof", "broken pipe", "reset by peer",
}

func fxLeak(body string) string {
	low := strings.ToLower(body)
	for _, w := range fxLeakWords {
		if strings.Contains(low, w) {
			return w
		}
	}
	return ""
}

// fxCleanFailure describes what is wrong with a failed REST answer, or ""
// when it is the clean 5xx JSON error the contract asks for during an
// outage: {"<okField>":false,"error":"<a message with no internals>"}.
func fxCleanFailure(r fxResult, okField string) string {
	switch {
	case r.Err != nil:
		return "transport error: " + r.Err.Error()
	case r.Status < 500 || r.Status > 599:
		return fmt.Sprintf("status %d, want 200 or a 5xx", r.Status)
	case r.JSON == nil:
		return fmt.Sprintf("status %d with a body that is not JSON", r.Status)
	case r.JSON[okField] != false:
		return fmt.Sprintf("status %d without %q:false", r.Status, okField)
	}
	if msg, _ := r.JSON["error"].(string); msg == "" {
		return fmt.Sprintf("status %d without an error message", r.Status)
	}
	if w := fxLeak(r.Raw); w != "" {
		return fmt.Sprintf("status %d shows internal details (%q)", r.Status, w)
	}
	return ""
}

// fxGraphQLOutcome judges a GraphQL answer: ok when it has data and no
// errors; otherwise problem is "" when the failure is clean (a 5xx JSON, or
// errors coded INTERNAL_SERVER_ERROR or UNAVAILABLE with no internals).
func fxGraphQLOutcome(r fxResult) (ok bool, problem string) {
	if r.Err != nil {
		return false, "transport error: " + r.Err.Error()
	}
	var out gqlResult
	if err := json.Unmarshal([]byte(r.Raw), &out); err != nil {
		return false, fmt.Sprintf("status %d, body is not JSON: %.200s", r.Status, r.Raw)
	}
	if r.Status == http.StatusOK && len(out.Errors) == 0 && out.Data != nil {
		return true, ""
	}
	if r.Status != http.StatusOK && (r.Status < 500 || r.Status > 599) {
		return false, fmt.Sprintf("status %d, want 200 or a 5xx", r.Status)
	}
	if len(out.Errors) == 0 {
		return false, fmt.Sprintf("status %d with neither data nor errors", r.Status)
	}
	for _, e := range out.Errors {
		if c, _ := e.Extensions["code"].(string); c != "INTERNAL_SERVER_ERROR" && c != "UNAVAILABLE" {
			return false, fmt.Sprintf("error code %q, want INTERNAL_SERVER_ERROR or UNAVAILABLE", c)
		}
		if w := fxLeak(e.Message); w != "" {
			return false, fmt.Sprintf("error message shows internal details (%q): %s", w, e.Message)
		}
	}
	if w := fxLeak(r.Raw); w != "" {
		return false, fmt.Sprintf("body shows internal details (%q)", w)
	}
	return false, ""
}

// fxAckTime is the timestamp of an acknowledged heartbeat (RFC 3339, to
// the second).
func fxAckTime(r fxResult) (time.Time, error) {
	s, _ := r.JSON["timestamp"].(string)
	return time.Parse(time.RFC3339, s)
}

// ------------------------------------------------------- private PostgreSQL

// fxPostgres is a PostgreSQL server of one test's own: its data folder in
// the test's temporary folder, on a free loopback port, with trust auth.
// The machine's shared server is never touched.
type fxPostgres struct {
	t   *testing.T
	bin string // folder of initdb, pg_ctl
	// asUser turns a command line into one run as the postgres user, when
	// the test runs as root; nil otherwise.
	asUser  func(argv []string) []string
	dir     string
	data    string
	logFile string
	Port    int
	URL     string
}

// fxPostgresBin finds the newest PostgreSQL server binaries.
func fxPostgresBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if fxExecutable(filepath.Join(d, "initdb")) && fxExecutable(filepath.Join(d, "pg_ctl")) {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && fxExecutable(filepath.Join(filepath.Dir(p), "pg_ctl")) {
		return filepath.Dir(p)
	}
	return ""
}

func fxExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// fxFreePort returns a loopback TCP port that was free a moment ago.
func fxFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// fxStartPostgres initialises and starts a private PostgreSQL. It is stopped
// (immediately) when the test ends. The test is skipped when no server
// binaries are installed.
func fxStartPostgres(t *testing.T) *fxPostgres {
	t.Helper()
	bin := fxPostgresBin()
	if bin == "" {
		t.Skip("no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH: " +
			"the outage test needs a private PostgreSQL (apt-get install postgresql)")
	}
	dir := t.TempDir() // removed after the server is stopped (cleanups run last-in first-out)
	pg := &fxPostgres{t: t, bin: bin, dir: dir, data: filepath.Join(dir, "data"), logFile: filepath.Join(dir, "postgres.log")}

	if os.Geteuid() == 0 {
		// initdb refuses to run as root: run the server as postgres, in a
		// folder it owns, reachable through the test's temporary folders.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root and there is no postgres user to run initdb and pg_ctl as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		for p := filepath.Dir(dir); p != filepath.Dir(p) && p != filepath.Clean(os.TempDir()); p = filepath.Dir(p) {
			if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
				if err := os.Chmod(p, fi.Mode().Perm()|0o011); err != nil {
					t.Fatal(err)
				}
			}
		}
		if runuser, err := exec.LookPath("runuser"); err == nil {
			pg.asUser = func(argv []string) []string {
				return append([]string{runuser, "-u", "postgres", "--"}, argv...)
			}
		} else if su, err := exec.LookPath("su"); err == nil {
			// su takes one command string, run by the shell.
			pg.asUser = func(argv []string) []string {
				quoted := make([]string, len(argv))
				for i, arg := range argv {
					quoted[i] = "'" + strings.ReplaceAll(arg, "'", `'\''`) + "'"
				}
				return []string{su, "postgres", "-s", "/bin/sh", "-c", "exec " + strings.Join(quoted, " ")}
			}
		} else {
			t.Skip("running as root with neither runuser nor su to run PostgreSQL as postgres")
		}
	}

	if out, err := pg.run("initdb", "-D", pg.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "-N"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	pg.Port = fxFreePort(t)
	conf := fmt.Sprintf("\n# the fault test's private server\nport = %d\nlisten_addresses = '127.0.0.1'\n"+
		"unix_socket_directories = '%s'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"+
		"max_connections = 100\nlog_min_messages = warning\n", pg.Port, dir)
	f, err := os.OpenFile(filepath.Join(pg.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(conf); err != nil {
		t.Fatal(err)
	}
	f.Close()
	pg.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.Port)

	t.Cleanup(func() { pg.run("pg_ctl", "-D", pg.data, "-m", "immediate", "-w", "-t", "30", "stop") })
	pg.Start()
	return pg
}

// run runs one of the server binaries, as postgres when the test is root.
func (pg *fxPostgres) run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	argv := append([]string{filepath.Join(pg.bin, name)}, args...)
	if pg.asUser != nil {
		argv = pg.asUser(argv)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = pg.dir // the postgres user may not enter the test's working folder
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Start starts the server and waits until it accepts connections.
func (pg *fxPostgres) Start() {
	pg.t.Helper()
	if out, err := pg.run("pg_ctl", "-D", pg.data, "-l", pg.logFile, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(pg.logFile)
		pg.t.Fatalf("pg_ctl start: %v\n%s\nserver log:\n%s", err, out, log)
	}
}

// Stop stops the server the way an operator restarting it would (-m fast:
// sessions are terminated, in-flight queries fail).
func (pg *fxPostgres) Stop() {
	pg.t.Helper()
	if out, err := pg.run("pg_ctl", "-D", pg.data, "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		pg.t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

// ---------------------------------------------------------- database outage

// The phases of the outage test. A request is judged by the phase it began
// and ended in.
const (
	fxUp         int32 = iota // the database runs
	fxStopping                // pg_ctl stop is running
	fxDown                    // the database is stopped
	fxRestarting              // pg_ctl start is running
	fxRecovering              // the database runs again; the service has not yet answered a request from it
	fxRecovered               // the service has answered from the restarted database
)

var fxPhaseNames = []string{"up", "stopping", "down", "restarting", "recovering", "recovered"}

// fxOutageLog collects what the outage test's clients saw.
type fxOutageLog struct {
	mu sync.Mutex
	// registered are the userIds whose register-home got 200.
	registered []string
	// acked is the latest acknowledged heartbeat timestamp of each userId.
	acked map[string]time.Time
	// outageAcks counts heartbeats acknowledged while the database was down.
	outageAcks int
	// outageErrors counts failed requests that began and ended while the
	// database was down, by endpoint.
	outageErrors map[string]int
	// outageRegistered counts register-home 200s while the database was down.
	outageRegistered int
	// requests counts every request, by the phase it began in.
	requests [6]int
	// problems are the answers that broke the contract (at most a few kept).
	problems []string
	// problemCount is how many there were.
	problemCount int
	// firstSuccess is when a database-backed request (register-home or a
	// GraphQL query) first succeeded after the restart.
	firstSuccess time.Time
}

func (l *fxOutageLog) problem(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.problemCount++
	if len(l.problems) < 20 {
		l.problems = append(l.problems, fmt.Sprintf(format, args...))
	}
}

// TestFaultDatabaseOutage stops PostgreSQL under a running registry and
// starts it again, while clients keep calling.
//
// It fails when: a request gets a 4xx, a transport error, a non-JSON body or
// a body showing SQL, driver or network text while the database is down; a
// registration is acknowledged while the database is down; /readyz is not
// 503 during the outage or not 200 after it; the service does not answer
// from the restarted database within 20s (for example if the pool kept dead
// connections, or the server had to be restarted); any request fails once
// the service has recovered; a registration that got 200 is missing from the
// database afterwards; or a heartbeat acknowledged during the outage (held in
// memory) never reaches the database after it.
func TestFaultDatabaseOutage(t *testing.T) {
	t0 := time.Now()
	pg := fxStartPostgres(t)

	a := newApp(t, pg.URL, func(c *config) {
		// Heartbeats are written by the background flush, as in production,
		// so failed flushes during the outage and the retry after it are
		// exercised; the test waits for them rather than calling Settle.
		c.HeartbeatFlush = 200 * time.Millisecond
	})
	client := fxClient(16)
	defer client.CloseIdleConnections()

	// Installations the heartbeats are for: hb-* are beaten whenever the
	// database is not down; out-* only while it is down, so their lastSeen
	// can only reach the outage's timestamp through the in-memory batch
	// written after the restart.
	const workers = 4
	const perWorker = 5
	for w := range workers {
		for k := range perWorker {
			a.register(t, a.AdminKey, fmt.Sprintf("hb-%d-%d", w, k), "home")
			a.register(t, a.AdminKey, fmt.Sprintf("out-%d-%d", w, k), "home")
		}
	}
	// The injected clock tells the phases apart in what is stored: T0 while
	// the database is up, T1 while it is down, T2 from the restart on.
	start := a.Clock.Now()
	tOutage := start.Add(time.Hour)

	var phase atomic.Int32
	log := &fxOutageLog{acked: map[string]time.Time{}, outageErrors: map[string]int{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup

	// judge records one answer: ok says whether it succeeded, problem what
	// makes it break the contract ("" when nothing does).
	judge := func(endpoint string, began int32, ok bool, problem string, r fxResult) {
		ended := phase.Load()
		stable := began == ended
		log.mu.Lock()
		log.requests[began]++
		if !ok && stable && began == fxDown {
			log.outageErrors[endpoint]++
		}
		log.mu.Unlock()
		switch {
		case problem != "":
			log.problem("%s (%s→%s): %s; body %.300s", endpoint, fxPhaseNames[began], fxPhaseNames[ended], problem, r.Raw)
		case !ok && stable && (began == fxUp || began == fxRecovered):
			log.problem("%s failed with the database up (%s): %d %.300s", endpoint, fxPhaseNames[began], r.Status, r.Raw)
		}
	}

	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}

				// register-home: needs the database.
				userID := fmt.Sprintf("reg-%d-%d", w, i)
				began := phase.Load()
				r := fxDo(client, http.MethodPost, a.URL+"/api/register-home", a.AdminKey,
					fmt.Sprintf(`{"userId":%q,"mode":"home"}`, userID))
				ok := r.Err == nil && r.Status == http.StatusOK && r.JSON != nil && r.JSON["success"] == true
				problem := ""
				if !ok {
					problem = fxCleanFailure(r, "success")
				}
				if ok {
					log.mu.Lock()
					log.registered = append(log.registered, userID)
					if began == fxDown && phase.Load() == fxDown {
						log.outageRegistered++
					}
					if began >= fxRecovering && log.firstSuccess.IsZero() {
						log.firstSuccess = time.Now()
					}
					log.mu.Unlock()
				}
				judge("register-home", began, ok, problem, r)

				// heartbeat: acknowledged from memory.
				began = phase.Load()
				hbUser := fmt.Sprintf("hb-%d-%d", w, i%perWorker)
				if began == fxDown {
					hbUser = fmt.Sprintf("out-%d-%d", w, i%perWorker)
				}
				r = fxDo(client, http.MethodPost, a.URL+"/api/heartbeat", "", fmt.Sprintf(`{"userId":%q}`, hbUser))
				ok = r.Err == nil && r.Status == http.StatusOK && r.JSON != nil && r.JSON["success"] == true
				problem = ""
				if ok {
					at, err := fxAckTime(r)
					if err != nil {
						problem = "acknowledged heartbeat without a timestamp: " + err.Error()
					} else {
						log.mu.Lock()
						if at.After(log.acked[hbUser]) {
							log.acked[hbUser] = at
						}
						if at.Equal(tOutage) {
							log.outageAcks++
						}
						log.mu.Unlock()
					}
				} else {
					problem = fxCleanFailure(r, "success")
				}
				judge("heartbeat", began, ok, problem, r)

				// validate-key: the admin key's check is cached, so it may
				// succeed during the outage; a failure must be clean.
				began = phase.Load()
				r = fxDo(client, http.MethodPost, a.URL+"/api/validate-key", a.AdminKey, "")
				ok = r.Err == nil && r.Status == http.StatusOK && r.JSON != nil && r.JSON["valid"] == true
				problem = ""
				if !ok {
					problem = fxCleanFailure(r, "valid")
				}
				judge("validate-key", began, ok, problem, r)

				// GraphQL: a query that reads the database.
				began = phase.Load()
				r = fxDo(client, http.MethodPost, a.URL+"/graphql", a.AdminKey,
					`{"query":"{ installations(first: 3) { totalCount edges { node { userId } } } }"}`)
				ok, problem = fxGraphQLOutcome(r)
				if ok && began >= fxRecovering {
					log.mu.Lock()
					if log.firstSuccess.IsZero() {
						log.firstSuccess = time.Now()
					}
					log.mu.Unlock()
				}
				judge("graphql", began, ok, problem, r)

				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	stopWorkers := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWorkers()

	// waitFor polls until cond holds, failing the test at the deadline.
	waitFor := func(what string, timeout time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s", what, timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	requestsIn := func(p int32) int {
		log.mu.Lock()
		defer log.mu.Unlock()
		return log.requests[p]
	}

	// Up: the clients run against a healthy database for a moment.
	time.Sleep(time.Second)
	waitFor("requests before the outage", 10*time.Second, func() bool { return requestsIn(fxUp) >= 40 })

	// Down.
	phase.Store(fxStopping)
	pg.Stop()
	a.Clock.Advance(time.Hour)
	phase.Store(fxDown)
	outageStart := time.Now()

	readyDown := 0
	for time.Since(outageStart) < 2500*time.Millisecond || requestsIn(fxDown) < 40 {
		if time.Since(outageStart) > 15*time.Second {
			t.Fatalf("only %d requests were made in 15s of outage", requestsIn(fxDown))
		}
		r := fxDo(client, http.MethodGet, a.URL+"/readyz", "", "")
		if r.Err != nil || r.Status != http.StatusServiceUnavailable || r.JSON == nil || fxLeak(r.Raw) != "" {
			t.Errorf("/readyz with the database stopped: %d %v %.200s, want a 503 JSON with no internals", r.Status, r.Err, r.Raw)
		} else {
			readyDown++
		}
		if r := fxDo(client, http.MethodGet, a.URL+"/healthz", "", ""); r.Status != http.StatusOK {
			t.Errorf("/healthz with the database stopped: %d %v, want 200 (the process runs)", r.Status, r.Err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	outageSeconds := time.Since(outageStart).Seconds()

	// Up again. The clock moves first, so every heartbeat stamped with the
	// outage's time was recorded while the database was stopped.
	a.Clock.Advance(time.Hour)
	phase.Store(fxRestarting)
	restartBegan := time.Now()
	pg.Start()
	restarted := time.Now()
	phase.Store(fxRecovering)

	// Recovery: a probe registration and /readyz until both succeed; the
	// workers keep calling meanwhile.
	var readySeconds float64
	probeN := 0
	waitFor("recovery after the restart (register-home 200 and /readyz 200)", 20*time.Second, func() bool {
		probe := fmt.Sprintf("probe-%d", probeN)
		probeN++
		r := fxDo(client, http.MethodPost, a.URL+"/api/register-home", a.AdminKey, fmt.Sprintf(`{"userId":%q}`, probe))
		if r.Status == http.StatusOK {
			log.mu.Lock()
			log.registered = append(log.registered, probe)
			if log.firstSuccess.IsZero() {
				log.firstSuccess = time.Now()
			}
			log.mu.Unlock()
		} else if p := fxCleanFailure(r, "success"); p != "" {
			log.problem("register-home probe while recovering: %s; body %.300s", p, r.Raw)
		}
		ready := fxDo(client, http.MethodGet, a.URL+"/readyz", "", "")
		if ready.Status == http.StatusOK && readySeconds == 0 {
			readySeconds = time.Since(restarted).Seconds()
		}
		return r.Status == http.StatusOK && ready.Status == http.StatusOK
	})
	phase.Store(fxRecovered)

	// Recovered: everything must work again, in the same process.
	time.Sleep(time.Second)
	waitFor("requests after recovery", 10*time.Second, func() bool { return requestsIn(fxRecovered) >= 40 })
	stopWorkers()
	if r := fxDo(client, http.MethodGet, a.URL+"/readyz", "", ""); r.Status != http.StatusOK {
		t.Errorf("/readyz after recovery: %d %v %s", r.Status, r.Err, r.Raw)
	}

	log.mu.Lock()
	defer log.mu.Unlock()
	for _, p := range log.problems {
		t.Errorf("contract broken: %s", p)
	}
	if log.problemCount > len(log.problems) {
		t.Errorf("… and %d more", log.problemCount-len(log.problems))
	}
	outageErrors := 0
	for _, n := range log.outageErrors {
		outageErrors += n
	}
	if log.outageErrors["register-home"] == 0 {
		t.Errorf("no register-home failed while the database was stopped (%d requests in the outage): was it really down?", log.requests[fxDown])
	}
	if log.outageRegistered > 0 {
		t.Errorf("%d registrations were acknowledged while the database was stopped", log.outageRegistered)
	}
	if readyDown == 0 {
		t.Errorf("/readyz never answered 503 during the outage")
	}
	if log.outageAcks == 0 {
		t.Errorf("no heartbeat was acknowledged during the outage (they are held in memory): nothing to check")
	}

	// No acknowledged registration lost. The database is read through a
	// connection of its own, not the service's.
	check, err := database.Open(pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stored := map[string]time.Time{}
	readAll := func() {
		rows, err := check.Client.Installation.Query().All(ctx)
		if err != nil {
			t.Fatalf("reading installations back: %v", err)
		}
		clear(stored)
		for _, row := range rows {
			stored[row.UserID] = row.LastSeen
		}
	}
	readAll()
	var lost []string
	for _, u := range log.registered {
		if _, ok := stored[u]; !ok {
			lost = append(lost, u)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged registrations are not in the database: %v", len(lost), len(log.registered), lost[:min(len(lost), 10)])
	}

	// Every acknowledged heartbeat lands, those of the outage included: the
	// background flush retries them after the restart. Wait for it.
	behind := func() []string {
		var out []string
		for u, at := range log.acked {
			if seen, ok := stored[u]; !ok || seen.Before(at) {
				out = append(out, fmt.Sprintf("%s lastSeen %s < acknowledged %s", u, seen.UTC().Format(time.RFC3339), at.Format(time.RFC3339)))
			}
		}
		slices.Sort(out)
		return out
	}
	flushDeadline := time.Now().Add(15 * time.Second)
	for len(behind()) > 0 && time.Now().Before(flushDeadline) {
		time.Sleep(100 * time.Millisecond)
		readAll()
	}
	heartbeatsLost := behind()
	if len(heartbeatsLost) > 0 {
		t.Errorf("%d installations are behind their last acknowledged heartbeat 15s after recovery (stats %+v): %v",
			len(heartbeatsLost), a.Resolver.Heartbeats.Stats(), heartbeatsLost[:min(len(heartbeatsLost), 10)])
	}
	outageUsersLanded := 0
	for u, seen := range stored {
		if strings.HasPrefix(u, "out-") && !seen.Before(tOutage) {
			outageUsersLanded++
		}
	}

	var recoverySeconds float64
	if !log.firstSuccess.IsZero() {
		recoverySeconds = log.firstSuccess.Sub(restarted).Seconds()
	}
	t.Logf("outage of %.1fs: %d requests, %d errors (%v), all clean 5xx JSON; /readyz 503 %d times",
		outageSeconds, log.requests[fxDown], outageErrors, log.outageErrors, readyDown)
	t.Logf("restart: pg_ctl start took %.2fs; first successful request %.3fs after the database accepted connections; /readyz 200 after %.3fs",
		restarted.Sub(restartBegan).Seconds(), recoverySeconds, readySeconds)
	t.Logf("registrations acknowledged: %d, rows lost: %d", len(log.registered), len(lost))
	t.Logf("heartbeats acknowledged during the outage: %d (for %d installations, %d of them stored with the outage's time after recovery); installations behind an acknowledged heartbeat: %d",
		log.outageAcks, workers*perWorker, outageUsersLanded, len(heartbeatsLost))
	t.Logf("requests by phase %v; whole test %.1fs", log.requests, time.Since(t0).Seconds())
}

// ------------------------------------------------------- SIGTERM under load

// fxBinary is the registry binary built from this repository, shared by the
// tests running at the same time and removed when the last of them ends.
var fxBinary struct {
	mu    sync.Mutex
	path  string
	dir   string
	users int
}

// fxBuildBinary builds the real binary once for every test using it at the
// same time (go build's cache makes a later rebuild cheap). It is built with
// -race when the tests are, so the server is checked for races too and the
// build reuses the test build's cache.
func fxBuildBinary(t *testing.T) string {
	t.Helper()
	fxBinary.mu.Lock()
	defer fxBinary.mu.Unlock()
	if fxBinary.users == 0 {
		dir, err := os.MkdirTemp("", "registry-fault-bin-")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "registry")
		args := []string{"build", "-o", path}
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "-race" && s.Value == "true" {
					args = append(args, "-race")
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", append(args, ".")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			os.RemoveAll(dir)
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		fxBinary.path, fxBinary.dir = path, dir
	}
	fxBinary.users++
	t.Cleanup(func() {
		fxBinary.mu.Lock()
		defer fxBinary.mu.Unlock()
		if fxBinary.users--; fxBinary.users == 0 {
			os.RemoveAll(fxBinary.dir)
			fxBinary.path, fxBinary.dir = "", ""
		}
	})
	return fxBinary.path
}

// fxProcess is the registry running as a subprocess.
type fxProcess struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error // of Wait, once done is closed
	URL    string
}

// fxServe starts the binary's serve command and waits until it is ready.
func fxServe(t *testing.T, bin string, args ...string) *fxProcess {
	t.Helper()
	p := &fxProcess{stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"serve"}, args...)...)
	// Only what the flags say: no DATABASE_URL, SECRET_KEY or PORT of the
	// environment the tests run in.
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})

	deadline := time.Now().Add(60 * time.Second)
	for p.URL == "" {
		if addr := cliListeningAddr(p.stderr.String()); addr != "" {
			p.URL = "http://" + addr
			break
		}
		select {
		case <-p.done:
			t.Fatalf("the server exited before listening: %v\n%s", p.err, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not listen within 60s\n%s", p.stderr.String())
		}
	}
	client := fxClient(1)
	defer client.CloseIdleConnections()
	for {
		if r := fxDo(client, http.MethodGet, p.URL+"/readyz", "", ""); r.Status == http.StatusOK {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server was not ready within 60s\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFaultSIGTERMUnderLoad hammers /api/heartbeat of the real binary from
// many goroutines, sends SIGTERM in the middle, and checks that the process
// exits 0 and that every acknowledged heartbeat is in the database.
//
// It fails when: the process does not exit, or exits non-zero (a crash, a
// shutdown error, a race found by -race); a heartbeat gets an answer other
// than 200 before or during shutdown; a request fails before SIGTERM; or any
// installation's stored lastSeen is older than the second of its last
// acknowledged heartbeat, which is what happens when the final flush is
// skipped or runs before the last request is answered (heartbeats since the
// last 1s flush are then lost).
func TestFaultSIGTERMUnderLoad(t *testing.T) {
	t.Parallel()
	bin := fxBuildBinary(t)
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fxSIGTERMUnderLoad(t, bin, b.name, b.newURL(t))
		})
	}
}

func fxSIGTERMUnderLoad(t *testing.T, bin, backendName, dbURL string) {
	const installations = 300
	const goroutines = 32
	t0 := time.Now()

	// The admin key, made with the command line as an operator would; it
	// also creates the schema.
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"keys", "create", "--database-url", dbURL, "--user", "ops", "--role", "admin", "--plan", "network"},
		noEnv, &stdout, &stderr); err != nil {
		t.Fatalf("keys create: %v\n%s", err, stderr.String())
	}
	adminKey := strings.TrimSpace(stdout.String())

	args := []string{"--addr", "127.0.0.1:0", "--database-url", dbURL, "--rate-limit", "0", "--heartbeat-flush", "1s"}
	if backendName == "postgres" {
		args = append(args, "--secret-key", randomHex(32))
	}
	srv := fxServe(t, bin, args...)
	client := fxClient(goroutines)
	defer client.CloseIdleConnections()

	userIDs := make([]string, installations)
	for i := range userIDs {
		userIDs[i] = fmt.Sprintf("sig-%03d", i)
	}
	var regWG sync.WaitGroup
	var regFailed atomic.Int32
	for g := range 8 {
		regWG.Go(func() {
			for i := g; i < installations; i += 8 {
				r := fxDo(client, http.MethodPost, srv.URL+"/api/register-home", adminKey, fmt.Sprintf(`{"userId":%q}`, userIDs[i]))
				if r.Err != nil || r.Status != http.StatusOK {
					if regFailed.Add(1) <= 5 {
						t.Errorf("register %s: %d %v %.300s", userIDs[i], r.Status, r.Err, r.Raw)
					}
				}
			}
		})
	}
	regWG.Wait()
	if regFailed.Load() > 0 {
		t.Fatalf("%d registrations failed", regFailed.Load())
	}

	// The load: each goroutine owns some userIds and remembers, for each,
	// the timestamp of its last acknowledged heartbeat.
	var (
		signalled   atomic.Bool
		acked       atomic.Int64
		ackedAfter  atomic.Int64 // acknowledged for requests sent after SIGTERM
		unexpected  atomic.Int64
		wg          sync.WaitGroup
		lastAck     = make([]map[string]fxAck, goroutines)
		stoppedWith = make([]string, goroutines)
	)
	for g := range goroutines {
		lastAck[g] = map[string]fxAck{}
		wg.Go(func() {
			for round := 0; ; round++ {
				for i := g; i < installations; i += goroutines {
					after := signalled.Load()
					sent := time.Now()
					r := fxDo(client, http.MethodPost, srv.URL+"/api/heartbeat", "", fmt.Sprintf(`{"userId":%q}`, userIDs[i]))
					if r.Err != nil {
						// The server has closed the connection or stopped
						// listening: expected once SIGTERM is sent.
						if !signalled.Load() {
							unexpected.Add(1)
							t.Errorf("heartbeat before SIGTERM: %v", r.Err)
						}
						stoppedWith[g] = r.Err.Error()
						return
					}
					if r.Status != http.StatusOK || r.JSON == nil || r.JSON["success"] != true {
						unexpected.Add(1)
						t.Errorf("heartbeat of %s (SIGTERM sent: %v): %d %.300s", userIDs[i], signalled.Load(), r.Status, r.Raw)
						return
					}
					at, err := fxAckTime(r)
					if err != nil {
						unexpected.Add(1)
						t.Errorf("acknowledged heartbeat without a timestamp: %v: %s", err, r.Raw)
						return
					}
					lastAck[g][userIDs[i]] = fxAck{at: at, sent: sent}
					acked.Add(1)
					if after {
						ackedAfter.Add(1)
					}
				}
			}
		})
	}

	// SIGTERM in the middle of the load: after a couple of periodic flushes,
	// with heartbeats in flight.
	loadStart := time.Now()
	deadline := loadStart.Add(20 * time.Second)
	for time.Since(loadStart) < 2500*time.Millisecond || acked.Load() < 1000 {
		if time.Now().After(deadline) || unexpected.Load() > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	ackedBefore := acked.Load()
	signalled.Store(true)
	sigAt := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("sending SIGTERM: %v", err)
	}

	select {
	case <-srv.done:
	case <-time.After(45 * time.Second):
		srv.cmd.Process.Kill()
		<-srv.done
		t.Fatalf("the server did not exit within 45s of SIGTERM\n%s", srv.stderr.String())
	}
	exitSeconds := time.Since(sigAt).Seconds()
	if srv.err != nil {
		t.Errorf("exit after SIGTERM: %v (code %d), want 0\n%s", srv.err, srv.cmd.ProcessState.ExitCode(), fxTail(srv.stderr.String(), 4000))
	}
	// Every goroutine stops by itself once the server is gone.
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(60 * time.Second):
		t.Fatalf("load goroutines still running 60s after the server exited")
	}

	// Every acknowledged heartbeat is stored: lastSeen is at least the
	// second its acknowledgement was stamped with.
	db, err := database.Open(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.Client.Installation.Query().Where(installation.UserIDHasPrefix("sig-")).All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]time.Time{}
	for _, row := range rows {
		stored[row.UserID] = row.LastSeen
	}
	var lost, lostPrecise []string
	tracked := 0
	for g := range goroutines {
		for u, ack := range lastAck[g] {
			tracked++
			seen, ok := stored[u]
			if !ok || seen.Before(ack.at) {
				lost = append(lost, fmt.Sprintf("%s: lastSeen %s, last acknowledged %s", u, seen.UTC().Format(time.RFC3339Nano), ack.at.Format(time.RFC3339)))
			} else if seen.Before(ack.sent.Truncate(time.Microsecond)) {
				lostPrecise = append(lostPrecise, fmt.Sprintf("%s: lastSeen %s, last acknowledged heartbeat sent at %s",
					u, seen.UTC().Format(time.RFC3339Nano), ack.sent.UTC().Format(time.RFC3339Nano)))
			}
		}
	}
	slices.Sort(lost)
	slices.Sort(lostPrecise)
	if len(stored) != installations {
		t.Errorf("%d installations stored, want %d", len(stored), installations)
	}
	if tracked != installations {
		t.Errorf("only %d of %d installations got an acknowledged heartbeat: the load was too light to test anything", tracked, installations)
	}
	if len(lost) > 0 {
		t.Errorf("%d installations lost their last acknowledged heartbeat at SIGTERM: %v\nserver log:\n%s",
			len(lost), lost[:min(len(lost), 10)], fxTail(srv.stderr.String(), 4000))
	}
	// The same check to the microsecond: the server stamps a heartbeat after
	// it arrives, so its lastSeen can be no earlier than the moment the
	// client sent it (both processes read this machine's one clock). This
	// catches a heartbeat lost within the same second as the one before it.
	if len(lostPrecise) > 0 {
		t.Errorf("%d installations have a lastSeen older than the sending of their last acknowledged heartbeat: %v",
			len(lostPrecise), lostPrecise[:min(len(lostPrecise), 10)])
	}
	var reasons []string
	for _, s := range stoppedWith {
		if s != "" && !slices.Contains(reasons, s) && len(reasons) < 3 {
			reasons = append(reasons, s)
		}
	}
	t.Logf("%s: %d heartbeats acknowledged (%d before SIGTERM, %d for requests sent after it) for %d installations by %d goroutines; "+
		"lost: %d (to the second), %d (to the microsecond); exit %.2fs after SIGTERM with code %d; clients then saw e.g. %q; whole test %.1fs",
		backendName, acked.Load(), ackedBefore, ackedAfter.Load(), tracked, goroutines, len(lost), len(lostPrecise), exitSeconds,
		srv.cmd.ProcessState.ExitCode(), reasons, time.Since(t0).Seconds())
}

// fxAck is a heartbeat's acknowledgement: the timestamp it carried (to the
// second) and when the client sent the request.
type fxAck struct{ at, sent time.Time }

// fxTail is the end of a long log.
func fxTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
