package rest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/agentbot/registry/errs"
)

// MaxBodyBytes is the largest request body the REST layer reads.
const MaxBodyBytes = 1 << 20

// decodeBody reads a JSON object of at most MaxBodyBytes and returns the
// named string fields: nil for a field that is absent or null. Field names
// match exactly ("userId", not "USERID": encoding/json alone would accept
// any case). An empty body counts as {}. Unknown fields are ignored, as
// installers of other versions may send more than this server knows.
func decodeBody(r *http.Request, names ...string) (map[string]*string, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, errs.New(errs.Invalid, "Could not read request body")
	}
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
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&object); err != nil || object == nil {
		return nil, errs.New(errs.Invalid, "Request body must be a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errs.New(errs.Invalid, "Request body must be a single JSON object")
	}
	for _, name := range names {
		raw, ok := object[name]
		if !ok || string(raw) == "null" {
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, errs.New(errs.Invalid, "%s must be a string", name)
		}
		fields[name] = &v
	}
	return fields, nil
}
