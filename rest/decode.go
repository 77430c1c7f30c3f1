package rest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"unicode/utf8"

	"github.com/agentbot/registry/errs"
)

// MaxBodyBytes is the largest request body the REST layer reads.
const MaxBodyBytes = 1 << 20

// maxPooledBuffer is the largest buffer the REST layer keeps for reuse.
const maxPooledBuffer = 64 << 10

// bodyBuffers reuses request-body buffers: the heartbeat, the busiest
// route, would otherwise allocate one per request.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decodeBody reads a JSON object of at most MaxBodyBytes and returns the
// named string fields: nil for a field that is absent or null. Field names
// match exactly ("userId", not "USERID": encoding/json alone would accept
// any case). An empty body counts as {}. Unknown fields are ignored, as
// installers of other versions may send more than this server knows.
func decodeBody(r *http.Request, names ...string) (map[string]*string, error) {
	buf := bodyBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBuffer { // a rare huge body is not kept
			bodyBuffers.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, MaxBodyBytes+1)); err != nil {
		return nil, errs.New(errs.Invalid, "Could not read request body")
	}
	body := buf.Bytes()
	if len(body) > MaxBodyBytes {
		return nil, errTooLarge
	}
	fields := make(map[string]*string, len(names))
	if len(bytes.Trim(body, " \t\r\n")) == 0 { // JSON's whitespace, not Unicode's
		return fields, nil
	}
	if !utf8.Valid(body) {
		return nil, errs.New(errs.Invalid, "Request body must be valid UTF-8")
	}
	var object map[string]json.RawMessage
	if err := json.Unmarshal(body, &object); err != nil || object == nil {
		return nil, notAnObject(body)
	}
	for _, name := range names {
		raw, ok := object[name]
		if !ok || string(raw) == "null" {
			continue
		}
		v, err := jsonString(raw)
		if err != nil {
			return nil, errs.New(errs.Invalid, "%s must be a string", name)
		}
		fields[name] = &v
	}
	return fields, nil
}

// jsonString decodes a JSON value that must be a string. raw comes from a
// document already found valid, so a quoted value without a backslash is
// its own text and needs no second parse.
func jsonString(raw json.RawMessage) (string, error) {
	if len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	var v string
	err := json.Unmarshal(raw, &v)
	return v, err
}

// notAnObject says what is wrong with a body json.Unmarshal refused: one
// JSON object followed by more, or no JSON object at all.
func notAnObject(body []byte) error {
	var object map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&object); err == nil && object != nil {
		return errs.New(errs.Invalid, "Request body must be a single JSON object")
	}
	return errs.New(errs.Invalid, "Request body must be a JSON object")
}
