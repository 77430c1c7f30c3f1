package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs tracks every child process the benchmark starts, so that all of them
// are stopped however the run ends (an error, a signal, a panic).
type procs struct {
	mu   sync.Mutex
	list map[*exec.Cmd]*child
}

// child is a long-running process: a registry server, the floor, the naive
// server.
type child struct {
	name    string
	cmd     *exec.Cmd
	log     string // path of the file that holds its stdout and stderr
	done    chan struct{}
	waitErr error
	p       *procs
}

// start runs name with args as a child whose output goes to logPath.
func (p *procs) start(name, logPath string, argv ...string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = childEnv()
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{}), p: p}
	p.mu.Lock()
	if p.list == nil {
		p.list = map[*exec.Cmd]*child{}
	}
	p.list[cmd] = c
	p.mu.Unlock()
	go func() {
		c.waitErr = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	return c, nil
}

// childEnv is the environment of the children, without the settings the
// registry would read from it: every setting is given as a flag instead.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "ADDR", "PORT", "DATABASE_URL", "INACTIVE_AFTER", "DASHBOARD_URL", "HEARTBEAT_FLUSH", "RATE_LIMIT",
			"TRUSTED_PROXIES", "GRAPHQL_INTROSPECTION", "PLAYGROUND", "LOG_LEVEL", "SECRET_KEY":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// stop asks the child to stop (SIGTERM: the registry flushes what is
// pending) and kills it when it has not stopped within grace.
func (c *child) stop(grace time.Duration) {
	if c == nil {
		return
	}
	select {
	case <-c.done:
	default:
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(grace):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	c.p.mu.Lock()
	delete(c.p.list, c.cmd)
	c.p.mu.Unlock()
}

// exited reports whether the child has stopped, and how.
func (c *child) exited() (bool, error) {
	select {
	case <-c.done:
		return true, c.waitErr
	default:
		return false, nil
	}
}

// killAll stops every child still running.
func (p *procs) killAll() {
	p.mu.Lock()
	var all []*child
	for _, c := range p.list {
		all = append(all, c)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range all {
		wg.Go(func() { c.stop(5 * time.Second) })
	}
	wg.Wait()
}

// waitReady polls url until it answers 200, the child exits, or timeout.
func (c *child) waitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		if done, err := c.exited(); done {
			return fmt.Errorf("%s exited before it was ready (%v); its log: %s\n%s", c.name, err, c.log, tail(c.log, 20))
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s after %s (last error %v); its log: %s", c.name, url, timeout, err, c.log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// memory is what /proc/PID/status says of a process's resident memory.
type memory struct {
	RSS, HWM int64 // bytes: VmRSS now, VmHWM (the peak since the process started)
}

// readMemory reads VmRSS and VmHWM of pid.
func readMemory(pid int) (memory, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var m memory
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, value, ok := strings.Cut(s.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		fields := strings.Fields(value) // "12345 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		if name == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
	}
	if m.HWM == 0 {
		return m, errors.New("no VmHWM in /proc/" + strconv.Itoa(pid) + "/status")
	}
	return m, s.Err()
}

func (c *child) memory() (memory, error) { return readMemory(c.cmd.Process.Pid) }

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
