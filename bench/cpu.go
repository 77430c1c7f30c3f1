package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// The machine is shared (the load generator, the server and the database
// run on the same two cores, and anything else running there steals from
// them), so each row records where the processor time went: the server,
// PostgreSQL, wrk, and everything else. A row with much "other" time was
// measured on a busy machine.

// clockTick is USER_HZ, the unit of /proc's CPU times (100 on Linux).
const clockTick = 100

// cpuSnap is the machine's busy time and every process's CPU time at one
// moment.
type cpuSnap struct {
	at    time.Time
	busy  uint64            // ticks the machine spent not idle
	procs map[int]procTicks // by pid
}

type procTicks struct {
	comm  string
	ticks uint64 // utime + stime + cutime + cstime
}

// cpuUse is where processor time went between two snapshots, in cores
// (1.0 = one core busy the whole time).
type cpuUse struct {
	Server, Postgres, Wrk, Other, Idle float64
	ok                                 bool
}

func snapCPU() cpuSnap {
	s := cpuSnap{at: time.Now(), procs: map[int]procTicks{}}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		// cpu user nice system idle iowait irq softirq steal …
		if len(f) >= 9 && f[0] == "cpu" {
			for _, i := range []int{1, 2, 3, 6, 7, 8} {
				v, _ := strconv.ParseUint(f[i], 10, 64)
				s.busy += v
			}
		}
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		open, close := strings.IndexByte(string(b), '('), strings.LastIndexByte(string(b), ')')
		if open < 0 || close < open {
			continue
		}
		rest := strings.Fields(string(b[close+1:]))
		if len(rest) < 13 {
			continue
		}
		// utime, stime, and cutime, cstime: the time of children that
		// exited and were waited for. PostgreSQL's parallel workers live for
		// one query, so their time shows in the postmaster's cutime only.
		var ticks uint64
		for _, f := range rest[11:15] {
			v, _ := strconv.ParseUint(f, 10, 64)
			ticks += v
		}
		s.procs[pid] = procTicks{comm: string(b[open+1 : close]), ticks: ticks}
	}
	return s
}

// cpuBetween attributes the time between a and b to the server (pid), the
// PostgreSQL processes, wrk (its own rusage) and the rest.
func cpuBetween(a, b cpuSnap, serverPID int, wrk time.Duration) cpuUse {
	secs := b.at.Sub(a.at).Seconds()
	if secs <= 0 || b.busy == 0 {
		return cpuUse{}
	}
	var server, pg uint64
	for pid, p := range b.procs {
		before := a.procs[pid]
		if before.comm != p.comm || before.ticks > p.ticks {
			before = procTicks{} // started during the window
		}
		d := p.ticks - before.ticks
		switch {
		case pid == serverPID:
			server += d
		case p.comm == "postgres":
			pg += d
		}
	}
	cores := func(ticks uint64) float64 { return float64(ticks) / clockTick / secs }
	u := cpuUse{Server: cores(server), Postgres: cores(pg), Wrk: wrk.Seconds() / secs, ok: true}
	busy := cores(b.busy - a.busy)
	u.Other = max(0, busy-u.Server-u.Postgres-u.Wrk)
	u.Idle = max(0, float64(numCPU())-busy)
	return u
}

func numCPU() int { return runtime.NumCPU() }

// waitQuiet waits, at most maxWait, until processes other than PostgreSQL
// and the benchmark's own children use less than threshold cores, sampling
// half a second at a time. It returns how long it waited and the last
// level seen (cores); quiet reports whether that level was reached.
func waitQuiet(maxWait time.Duration, threshold float64, ours ...int) (waited time.Duration, level float64, quiet bool) {
	start := time.Now()
	for {
		a := snapCPU()
		time.Sleep(500 * time.Millisecond)
		b := snapCPU()
		level = othersBetween(a, b, ours)
		if level < threshold {
			return time.Since(start), level, true
		}
		if time.Since(start) >= maxWait {
			return time.Since(start), level, false
		}
	}
}

// othersBetween is the cores used between a and b by processes other than
// PostgreSQL and pids.
func othersBetween(a, b cpuSnap, pids []int) float64 {
	secs := b.at.Sub(a.at).Seconds()
	if secs <= 0 {
		return 0
	}
	var known uint64
	for pid, p := range b.procs {
		before := a.procs[pid]
		if before.comm != p.comm || before.ticks > p.ticks {
			before = procTicks{}
		}
		mine := p.comm == "postgres" || pid == os.Getpid()
		for _, o := range pids {
			mine = mine || pid == o
		}
		if mine {
			known += p.ticks - before.ticks
		}
	}
	busy := float64(b.busy-a.busy) / clockTick / secs
	return max(0, busy-float64(known)/clockTick/secs)
}
