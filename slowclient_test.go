package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveWithLimits serves the app's handler behind the real server's limits
// (httptest's server has none) on a loopback port.
func serveWithLimits(t *testing.T, a *app, limits config) string {
	t.Helper()
	srv := newHTTPServer(limits, a.Handler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(smallSendBuffers{ln})
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// smallSendBuffers gives each accepted connection a small kernel send
// buffer, so a handler writing faster than its client reads waits on the
// client, as it does over a slow link, instead of handing megabytes to the
// loopback interface at once.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err == nil {
		err = conn.(*net.TCPConn).SetWriteBuffer(32 << 10)
	}
	return conn, err
}

// A client that sends its headers slowly is cut off, and the server goes on
// answering others; headers over 64 KiB are refused with 431.
func TestSlowClientsAndOversizedHeaders(t *testing.T) {
	t.Parallel()
	a := newApp(t, backends(t)[0].newURL(t), nil)
	addr := serveWithLimits(t, a, config{ReadHeaderTimeout: 300 * time.Millisecond})

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

// The write timeout cuts off a client that stops reading, but a streamed
// listing that takes longer than one timeout to download, because the
// client reads slowly, arrives whole: each chunk gets the timeout anew.
func TestSlowDownloadOfAStreamedListingIsNotCutOff(t *testing.T) {
	t.Parallel()
	const writeTimeout, n = time.Second, 6000
	a := newApp(t, backends(t)[0].newURL(t), func(c *config) { c.WriteTimeout = writeTimeout })
	seedInstallations(t, a, n)
	addr := serveWithLimits(t, a, config{ReadHeaderTimeout: time.Second, WriteTimeout: writeTimeout})

	// A small receive buffer, so the server cannot hand the whole body
	// to the kernel at once and has to wait for the reader.
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = conn.(*net.TCPConn).SetReadBuffer(64 << 10)
		}
		return conn, err
	}}}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/installations", nil)
	req.Header.Set("Authorization", "Bearer "+a.AdminKey)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	start := time.Now()
	var body bytes.Buffer
	chunk := make([]byte, 16<<10)
	for {
		k, err := res.Body.Read(chunk)
		body.Write(chunk[:k])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes in %v: %v", body.Len(), time.Since(start), err)
		}
		// Read at a steady 256 KiB/s: each 32 KiB chunk waits ~125 ms for the
		// reader, the whole body several write timeouts.
		time.Sleep(time.Duration(body.Len())*time.Second/(256<<10) - time.Since(start))
	}
	if took := time.Since(start); took < 2*writeTimeout {
		t.Fatalf("the download took %v, not longer than the write timeout: the test proves nothing", took)
	}
	var listing struct {
		Count         int
		Installations []json.RawMessage
	}
	if err := json.Unmarshal(body.Bytes(), &listing); err != nil || listing.Count != n || len(listing.Installations) != n {
		t.Errorf("count %d, %d installations, %v; want %d", listing.Count, len(listing.Installations), err, n)
	}
}
