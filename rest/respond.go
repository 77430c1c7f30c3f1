// Package rest is the compatibility layer for the registration API that
// installers and agents already call. Each endpoint decodes its request,
// calls the same resolver the GraphQL API uses, and encodes the documented
// compact JSON. No rule of the registry lives here.
package rest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/agentbot/registry/errs"
)

// statusCodes is the one table from the error vocabulary to HTTP statuses.
var statusCodes = map[errs.Code]int{
	errs.Invalid:         http.StatusBadRequest,
	errs.Unauthenticated: http.StatusUnauthorized,
	errs.Forbidden:       http.StatusForbidden,
	errs.NotFound:        http.StatusNotFound,
	errs.Conflict:        http.StatusConflict,
	errs.Unavailable:     http.StatusServiceUnavailable,
	errs.Internal:        http.StatusInternalServerError,
}

// Transport-level failures that have no resolver behind them.
var (
	errNotFound = &httpError{http.StatusNotFound, "Not found"}
	errTooLarge = &httpError{http.StatusRequestEntityTooLarge, "Request body too large (limit 1 MiB)"}
)

// httpError is an error that only exists at the HTTP level (404, 405, 413).
type httpError struct {
	status  int
	message string
}

func (e *httpError) Error() string { return e.message }

// endpoint is one REST route: it returns the value to send with 200, or an
// error that writeError turns into the documented error body.
type endpoint struct {
	method string
	serve  func(r *http.Request) (any, error)
}

// handler adapts an endpoint to net/http: method check, then serve, then
// exactly one place that writes the answer.
func (a *API) handler(e endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != e.method {
			w.Header().Set("Allow", e.method)
			Fail(w, r, http.StatusMethodNotAllowed, "Method not allowed")
			return
		}
		body, err := e.serve(r)
		if s, ok := body.(stream); ok && err == nil {
			err = a.writeStream(w, r, s)
		} else if err == nil {
			writeJSON(w, http.StatusOK, body)
		}
		if err != nil {
			a.writeError(w, r, err)
		}
	})
}

// stream is a 200 body too large to hold in memory, written as it is read.
type stream func(w *bufio.Writer) error

// lazyHeader sends the 200 header with the first byte of the body, so a
// stream that fails before writing anything still gets a proper error.
// Each chunk gets the whole write timeout anew: a million installations
// (124 MB) take longer than one timeout over a slow link, and a client that
// stops reading is still cut off.
type lazyHeader struct {
	w        http.ResponseWriter
	deadline *http.ResponseController
	timeout  time.Duration
	started  bool
}

func (l *lazyHeader) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", "application/json")
		l.w.WriteHeader(http.StatusOK)
	}
	if l.timeout > 0 {
		// ErrNotSupported only where there is no connection (tests'
		// recorders); the server's own timeout then stays.
		_ = l.deadline.SetWriteDeadline(time.Now().Add(l.timeout))
	}
	return l.w.Write(p)
}

// streamBuffers reuses the 32 KiB write buffers of streamed answers: most
// listings are a user's one installation, and a fresh buffer each was most
// of what such a request allocated.
var streamBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// writeStream runs s. An error before the first byte is returned, for
// writeError; after it, the status is already sent, so the connection is
// cut rather than letting the client take a truncated body for a whole one.
func (a *API) writeStream(w http.ResponseWriter, r *http.Request, s stream) error {
	out := &lazyHeader{w: w, deadline: http.NewResponseController(w), timeout: a.WriteTimeout}
	buf := streamBuffers.Get().(*bufio.Writer)
	buf.Reset(out)
	defer func() { buf.Reset(nil); streamBuffers.Put(buf) }()
	err := s(buf)
	if err == nil {
		err = buf.Flush()
	}
	if err != nil && out.started {
		a.Log.ErrorContext(r.Context(), "streaming response failed", "path", r.URL.Path, "error", err)
		panic(http.ErrAbortHandler)
	}
	return err
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if he, ok := err.(*httpError); ok {
		Fail(w, r, he.status, he.message)
		return
	}
	status := statusCodes[errs.CodeOf(err)]
	// An error of the vocabulary was logged where it arose (an Internal
	// one), or needs no error line: a 503 for a client that went away, or
	// for an overload the heartbeat coalescer counts and logs itself. Only
	// an error from outside the vocabulary is news here.
	if _, known := errors.AsType[*errs.Error](err); !known {
		a.Log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "error", err)
	}
	Fail(w, r, status, errs.MessageOf(err, internalMessage(r)))
}

// ValidateKeyPath is the one endpoint whose bodies open with "valid" rather
// than "success", and whose 500 says "Internal error", as documented.
const ValidateKeyPath = "/api/validate-key"

func internalMessage(r *http.Request) string {
	if r.URL.Path == ValidateKeyPath {
		return "Internal error"
	}
	return "Internal server error"
}

// failure is the documented error body: {"success":false,"error":"…"}, or
// {"valid":false,"error":"…"} on validate-key.
type failure struct {
	Success *bool  `json:"success,omitempty"`
	Valid   *bool  `json:"valid,omitempty"`
	Error   string `json:"error"`
}

// writeJSON writes v as compact JSON: install scripts grep the body for
// `"valid":false` and `"userId":"…"`, so there must be no spaces, and
// characters such as & stay as they are.
func writeJSON(w http.ResponseWriter, status int, v any) {
	e := jsonEncoders.Get().(*jsonEncoder)
	defer func() {
		if e.buf.Cap() <= maxPooledBuffer { // a rare large answer is not kept
			jsonEncoders.Put(e)
		}
	}()
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		slog.Error("encoding response", "error", err)
		status = http.StatusInternalServerError
		e.buf.Reset()
		e.buf.WriteString(`{"success":false,"error":"Internal server error"}` + "\n")
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(e.buf.Bytes())
}

// jsonContentType is the header value of every JSON answer; net/http only
// reads it, so one slice serves all.
var jsonContentType = []string{"application/json"}

// jsonEncoder is a buffer with a compact, unescaped encoder writing to it,
// reused across answers (see jsonEncoders).
type jsonEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var jsonEncoders = sync.Pool{New: func() any {
	e := &jsonEncoder{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}}

// NotFound answers every path that is not a route with a JSON 404.
func NotFound(w http.ResponseWriter, r *http.Request) {
	Fail(w, r, errNotFound.status, errNotFound.message)
}

// Fail writes the documented error body for r: {"success":false,"error":…},
// or {"valid":false,"error":…} on validate-key. Answers given outside an
// endpoint (404, 429, a recovered panic) use it too.
func Fail(w http.ResponseWriter, r *http.Request, status int, message string) {
	no := false
	body := failure{Success: &no, Error: message}
	if r.URL.Path == ValidateKeyPath {
		body = failure{Valid: &no, Error: message}
	}
	writeJSON(w, status, body)
}
