package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// machineFacts is what the report says of the machine and the tools.
func machineFacts(ctx context.Context, src string) map[string]string {
	facts := map[string]string{"cores": fmt.Sprint(runtime.NumCPU()), "go": runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if name, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
				facts["cpu"] = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	facts["source"] = "(not a git checkout)"
	git := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = src
		return cmd.Output()
	}
	if out, err := git("rev-parse", "--short", "HEAD"); err == nil {
		facts["source"] = "commit " + strings.TrimSpace(string(out))
		// Uncommitted changes outside bench/ are part of what was measured.
		if st, err := git("status", "--porcelain", "--", ".", ":(exclude)bench"); err == nil {
			if n := len(strings.Split(strings.TrimSpace(string(st)), "\n")); strings.TrimSpace(string(st)) != "" {
				facts["source"] += fmt.Sprintf(" with %d uncommitted files", n)
			}
		}
	}
	if out, err := exec.CommandContext(ctx, "wrk", "--version").CombinedOutput(); len(out) > 0 {
		_ = err // wrk --version exits 1
		v := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		v, _, _ = strings.Cut(v, " [") // drop "[epoll] Copyright …"
		facts["wrk"] = v
	}
	return facts
}

// postgresVersion asks the server, for the report.
func postgresVersion(ctx context.Context, url string) string {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return ""
	}
	defer conn.Close(ctx)
	var v string
	if conn.QueryRow(ctx, "SHOW server_version").Scan(&v) != nil {
		return ""
	}
	return v
}

func fmtLatency(us int64) string {
	ms := float64(us) / 1000
	switch {
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}

func (u cpuUse) String() string {
	if !u.ok {
		return "—"
	}
	return fmt.Sprintf("%.2f / %.2f / %.2f / %.2f", u.Server, u.Postgres, u.Wrk, u.Other)
}

func fmtMB(b int64) string {
	return fmt.Sprintf("%.1f MB", float64(b)/(1<<20))
}

func fmtRate(r float64) string {
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f", r)
	case r >= 10:
		return fmt.Sprintf("%.1f", r)
	}
	return fmt.Sprintf("%.2f", r)
}

// floorRate is the divisor of every ratio: the mean of the floor runs.
func (b *bench) floorRate() float64 {
	var s float64
	for _, f := range b.floors {
		s += f.Result.rps()
	}
	if len(b.floors) == 0 {
		return 0
	}
	return s / float64(len(b.floors))
}

func (b *bench) find(id string) *row {
	for _, r := range b.rows {
		if r.ID == id && r.Failed == "" {
			return r
		}
	}
	return nil
}

// target is one line of the issue's Targets table.
type target struct {
	figure   string
	want     string
	measured string
	ratio    string // measured ÷ target, oriented so that ≥ 1 meets it
	met      string
}

// targets evaluates the issue's Targets table (PostgreSQL, 64 connections).
func (b *bench) targets() []target {
	floor := b.floorRate()
	var ts []target
	atLeast := func(figure string, measured, want float64, how string) {
		t := target{figure: figure, want: fmt.Sprintf("≥ %.1f", want)}
		if measured < 0 {
			t.measured, t.ratio, t.met = "not measured", "", ""
		} else {
			t.measured = fmt.Sprintf("%.2f%s", measured, how)
			t.ratio = fmt.Sprintf("%.2f", measured/want)
			t.met = metText(measured >= want)
		}
		ts = append(ts, t)
	}
	atMost := func(figure string, measured, want float64, unit, wantText string) {
		t := target{figure: figure, want: wantText}
		if measured < 0 {
			t.measured = "not measured"
		} else {
			t.measured = strings.TrimSpace(fmt.Sprintf("%.4g %s", measured, unit))
			if measured > 0 {
				t.ratio = fmt.Sprintf("%.2f", want/measured)
			} else {
				t.ratio = "∞"
			}
			t.met = metText(measured <= want)
		}
		ts = append(ts, t)
	}
	rate := func(id string) float64 {
		if r := b.find(id); r != nil && floor > 0 {
			return r.Result.rps() / floor
		}
		return -1
	}
	rateNote := func(id string) string {
		if r := b.find(id); r != nil {
			return fmt.Sprintf(" (%s req/s)", fmtRate(r.Result.rps()))
		}
		return ""
	}
	atLeast("heartbeat requests/s ÷ floor", rate("pg/heartbeat"), 0.6, rateNote("pg/heartbeat"))
	stmts := -1.0
	if r := b.find("pg/heartbeat"); r != nil && r.StmtsPerHB >= 0 {
		stmts = r.StmtsPerHB
	}
	atMost("database statements per heartbeat", stmts, 0.01, "", "≤ 0.01")
	for _, c := range b.checks {
		if c.DB != "PostgreSQL" {
			continue
		}
		t := target{figure: "every heartbeat reflected in lastSeen after one flush interval", want: "all", met: metText(c.Pass)}
		t.measured = fmt.Sprintf("%d/%d after %s", c.ReflectedAt, c.Sample, c.Waited)
		if c.ConvergedAfter > 0 {
			t.measured += fmt.Sprintf(" (all after %.1f s)", c.ConvergedAfter.Seconds())
		}
		ts = append(ts, t)
	}
	atLeast("validate-key requests/s ÷ floor", rate("pg/validate-key"), 0.6, rateNote("pg/validate-key"))
	reg := -1.0
	if r, n := b.find("pg/register-home"), b.find("pg/naive-heartbeat"); r != nil && n != nil && n.Result.rps() > 0 {
		reg = r.Result.rps() / n.Result.rps()
	}
	atLeast("register-home requests/s ÷ naive heartbeat server", reg, 1.0, rateNote("pg/register-home"))
	atLeast("REST installations (user key) requests/s ÷ floor", rate("pg/rest-installations-user"), 0.4, rateNote("pg/rest-installations-user"))
	rows := fmt.Sprintf("%d", b.cfg.installations)
	p50 := func(id string) float64 {
		if r := b.find(id); r != nil {
			return float64(r.Result.P50) / 1000
		}
		return -1
	}
	atMost("GraphQL installations(first: 50), "+rows+" rows, one client: p50", p50("pg/gql-first50-1c"), 10, "ms", "≤ 10 ms")
	atMost("the same with totalCount: p50", p50("pg/gql-first50-totalcount-1c"), 50, "ms", "≤ 50 ms")
	atMost("fleetSummary over "+rows+" rows, one client: p50", p50("pg/fleetsummary-1c"), 50, "ms", "≤ 50 ms")
	growth, listingErr := -1.0, ""
	for _, l := range b.listings {
		if l.DB == "PostgreSQL" {
			if l.HWMAfter > 0 {
				growth = float64(l.HWMAfter-l.RSSBefore) / (1 << 20)
			}
			listingErr = l.Err
		}
	}
	atMost("REST listing of "+rows+" installations (admin): RSS growth", growth, 32, "MB", "≤ 32 MB")
	if listingErr != "" {
		ts[len(ts)-1].measured += " (the listing failed: " + mdEscape(listingErr, 200) + ")"
		ts[len(ts)-1].met = metText(false)
	}
	peak := -1.0
	for _, r := range b.rows {
		if r.DB == "PostgreSQL" && !strings.HasPrefix(r.ID, "pg/naive") {
			peak = max(peak, float64(r.PeakRSS)/(1<<20))
		}
	}
	for _, l := range b.listings {
		if l.DB == "PostgreSQL" {
			peak = max(peak, float64(l.HWMAfter)/(1<<20))
		}
	}
	atMost("peak RSS of this server under any of the loads", peak, 64, "MB", "≤ 64 MB")
	return ts
}

// mdEscape makes s fit in a table cell: one line, no pipes, at most n bytes.
func mdEscape(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

func extraFlags(f string) string {
	if strings.TrimSpace(f) == "" {
		return ""
	}
	return " and `" + strings.TrimSpace(f) + "`"
}

func dbOrDash(db string) string {
	if db == "" {
		return "—"
	}
	return db
}

func metText(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// report is the markdown the run prints and writes to -out.
func (b *bench) report() string {
	var w strings.Builder
	floor := b.floorRate()
	fmt.Fprintf(&w, "# Benchmark results\n\n")
	seenFlag, seenText := "", "in the order the heartbeat load visits them (a fleet in steady state: the one seen longest ago heartbeats next)"
	if b.cfg.seenRandom {
		seenFlag, seenText = " -seen-random", "at random (every heartbeat moves an index entry from a random place: the worst case)"
	}
	fmt.Fprintf(&w, "`go run ./bench -installations %d -duration %s -connections %d%s` on %s; %s cores (%s), %s, %s",
		b.cfg.installations, b.cfg.duration, b.cfg.connections, seenFlag, b.started.UTC().Format("2006-01-02 15:04 UTC"),
		b.env["cores"], b.env["cpu"], b.env["go"], b.env["wrk"])
	if !b.cfg.skipPostgres {
		if v := postgresVersion(context.Background(), b.cfg.pgURL); v != "" {
			fmt.Fprintf(&w, ", PostgreSQL %s", v)
		}
	}
	fmt.Fprintf(&w, ". Server: %s. The load generator, the server and the database share the machine. "+
		"The seeded installations were last seen over the last 10 minutes, %s.\n\n", b.env["source"], seenText)
	fmt.Fprintf(&w, "Every loaded row: wrk -t%d -c%d -d%s --latency with a Lua request() per request; one-client rows use -t1 -c1. "+
		"Each registry row runs a freshly started server (`--rate-limit 0 --heartbeat-flush %s`%s, other settings at their defaults) on the same seeded database, "+
		"so its peak RSS (VmHWM) is that row's own. Ratios divide by the mean of the two floor runs (%s req/s). \"CPU cores\" is where processor time went during the load: "+
		"the server process (SQLite runs inside it), all PostgreSQL processes, wrk, and everything else on the machine.\n\n",
		b.cfg.threads, b.cfg.connections, b.cfg.duration, b.cfg.flush, extraFlags(b.cfg.serverFlags), fmtRate(floor))

	fmt.Fprintf(&w, "| row | database | conns | req/s | p50 | p99 | errors | peak RSS | ÷ floor | statements / heartbeat | CPU cores: server / postgres / wrk / other |\n")
	fmt.Fprintf(&w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	all := append([]*row{}, b.floors[:1]...)
	all = append(all, b.rows...)
	all = append(all, b.floors[1:]...)
	for _, r := range all {
		db := r.DB
		if db == "" {
			db = "—"
		}
		if r.Failed != "" {
			fmt.Fprintf(&w, "| %s | %s | %d | — | — | — | **failed: %s** | — | — | — | — |\n", r.Label, db, r.Conns, mdEscape(r.Failed, 300))
			continue
		}
		errs := "0"
		if r.Result.errors() > 0 {
			errs = "**" + r.Result.errorText() + "**"
		}
		if r.Result.Requests == 0 {
			errs = "**no answer within the run**"
		}
		ratio := "—"
		if floor > 0 {
			ratio = fmt.Sprintf("%.2f", r.Result.rps()/floor)
		}
		stmts := "—"
		switch {
		case r.StmtsPerHB >= 0:
			stmts = fmt.Sprintf("%.4f (%.3f rows)", r.StmtsPerHB, r.RowsPerHB)
		case r.SrvCounted:
			stmts = fmt.Sprintf("%.4f batch writes (server's count)", r.SrvWritesPerHB)
		case strings.HasSuffix(r.ID, "/heartbeat"):
			stmts = "n/a"
		}
		if r.SrvDropped > 0 {
			stmts += fmt.Sprintf("; **%.0f dropped**", r.SrvDropped)
		}
		fmt.Fprintf(&w, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Label, db, r.Conns, fmtRate(r.Result.rps()), fmtLatency(r.Result.P50), fmtLatency(r.Result.P99),
			errs, fmtMB(r.PeakRSS), ratio, stmts, r.CPU)
	}

	if len(b.listings) > 0 {
		fmt.Fprintf(&w, "\nAdmin REST listing of every installation (`GET /api/installations`, one request to a fresh server):\n\n")
		fmt.Fprintf(&w, "| database | installations | body | time | RSS before | peak RSS after | RSS growth | result |\n")
		fmt.Fprintf(&w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
		for _, l := range b.listings {
			result := "ok"
			if l.Err != "" {
				result = "**" + l.Err + "**"
			}
			fmt.Fprintf(&w, "| %s | %d | %s | %.1f s | %s | %s | %s | %s |\n", l.DB, l.Count, fmtMB(l.Bytes), l.Took.Seconds(),
				fmtMB(l.RSSBefore), fmtMB(l.HWMAfter), fmtMB(l.HWMAfter-l.RSSBefore), result)
		}
	}

	if len(b.checks) > 0 {
		fmt.Fprintf(&w, "\nHeartbeats reflected in lastSeen (after the load, one heartbeat at a known time T to a sample of acknowledged userIds, then one flush interval and 0.5 s):\n\n")
		for _, c := range b.checks {
			status := "PASS"
			if !c.Pass {
				status = "**FAIL**"
			}
			fmt.Fprintf(&w, "- %s: %s — %s.\n", c.DB, status, c.Detail)
		}
	}

	if !b.cfg.skipPostgres {
		fmt.Fprintf(&w, "\n## Targets (PostgreSQL, %d connections, ratios from this run)\n\n", b.cfg.connections)
		fmt.Fprintf(&w, "| figure | target | measured | measured ÷ target (≥ 1 meets it) | met |\n| --- | --- | --- | ---: | --- |\n")
		for _, t := range b.targets() {
			fmt.Fprintf(&w, "| %s | %s | %s | %s | %s |\n", t.figure, t.want, t.measured, t.ratio, t.met)
		}
		if b.cfg.installations != 1_000_000 {
			fmt.Fprintf(&w, "\nThe issue states the one-client and listing targets for 1,000,000 rows; this run seeded %d (`-installations 1000000` for those).\n", b.cfg.installations)
		}
	}

	fmt.Fprintf(&w, "\n## Noise\n\n")
	if len(b.floors) == 2 {
		f1, f2 := b.floors[0].Result.rps(), b.floors[1].Result.rps()
		fmt.Fprintf(&w, "The floor ran at the start (%s req/s) and at the end (%s req/s): %+.1f%%. Differences of that size between rows are noise.\n",
			fmtRate(f1), fmtRate(f2), 100*(f2-f1)/((f1+f2)/2))
	}
	var busiest *row
	var otherSum float64
	var measured int
	for _, r := range all {
		if !r.CPU.ok {
			continue
		}
		measured++
		otherSum += r.CPU.Other
		if busiest == nil || r.CPU.Other > busiest.CPU.Other {
			busiest = r
		}
	}
	if measured > 0 {
		fmt.Fprintf(&w, "Processes other than the server, PostgreSQL and wrk used %.2f cores on average during the loads (of %s), "+
			"at most %.2f during \"%s\" (%s); the CPU column of each row says how busy the machine was besides.\n",
			otherSum/float64(measured), b.env["cores"], busiest.CPU.Other, busiest.Label, dbOrDash(busiest.DB))
	}
	var waited time.Duration
	var busyRows []string
	for _, r := range all {
		waited += r.QuietWait
		if r.NotQuiet > 0 {
			busyRows = append(busyRows, fmt.Sprintf("%s (%.1f)", r.ID, r.NotQuiet))
		}
	}
	if b.cfg.quietWait > 0 {
		fmt.Fprintf(&w, "Before each row the run waited up to %s for other processes to use less than %.2f cores (%s in all).",
			b.cfg.quietWait, b.cfg.quietBelow, waited.Round(time.Second))
		if len(busyRows) > 0 {
			fmt.Fprintf(&w, " %d of %d rows started on a busy machine all the same (cores used by others): %s.",
				len(busyRows), len(all), strings.Join(busyRows, ", "))
		}
		fmt.Fprintln(&w)
	}
	var issues []string
	for _, r := range b.rows {
		if r.LogIssues != "" {
			issues = append(issues, fmt.Sprintf("- %s (%s): %s", r.Label, r.DB, r.LogIssues))
		}
	}
	if len(issues) > 0 {
		fmt.Fprintf(&w, "\nThe server logged warnings or errors during these rows:\n\n%s\n", strings.Join(issues, "\n"))
	}
	fmt.Fprintf(&w, "\nRun took %s.\n", time.Since(b.started).Round(time.Second))
	return w.String()
}
