package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveWithLimits serves the app's handler behind the real server's limits
// (httptest's server has none) on a loopback port.
func serveWithLimits(t *testing.T, a *app, readHeaderTimeout time.Duration) string {
	t.Helper()
	srv := newHTTPServer(config{ReadHeaderTimeout: readHeaderTimeout}, a.Handler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// A client that sends its headers slowly is cut off, and the server goes on
// answering others; headers over 64 KiB are refused with 431.
func TestSlowClientsAndOversizedHeaders(t *testing.T) {
	t.Parallel()
	a := newApp(t, backends(t)[0].newURL(t), nil)
	addr := serveWithLimits(t, a, 300*time.Millisecond)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /api/heartbeat HTTP/1.1\r\nHost: registry\r\nContent-Type: application/json\r\n")
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("reading from the slow connection: %v", err)
	}
	if held := time.Since(start); held > 5*time.Second {
		t.Errorf("a client that never finished its headers held the connection %v", held)
	}

	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("after the slow client: %v %v", res, err)
	}
	res.Body.Close()

	conn2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	io.WriteString(conn2, "GET /healthz HTTP/1.1\r\nHost: registry\r\nX-Big: "+strings.Repeat("a", 100<<10)+"\r\n\r\n")
	status, err := bufio.NewReader(conn2).ReadString('\n')
	if err != nil || !strings.Contains(status, " 431 ") {
		t.Errorf("a 100 KiB header: %q %v, want 431", status, err)
	}
}
