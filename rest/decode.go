package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/agentbot/registry/errs"
)

// MaxBodyBytes is the largest request body the REST layer reads.
const MaxBodyBytes = 1 << 20

// registration is the body of register-home and register-link. Pointers
// tell an absent or null field from an empty one.
type registration struct {
	UserID       *string `json:"userId"`
	Mode         *string `json:"mode"`
	GatewayToken *string `json:"gatewayToken"`
}

// heartbeat is the body of the heartbeat; it may be empty.
type heartbeat struct {
	UserID *string `json:"userId"`
}

// decodeBody reads a JSON object of at most MaxBodyBytes into dst. An empty
// body counts as {}. Unknown fields are ignored, as installers of other
// versions may send more than this server knows.
func decodeBody(r *http.Request, dst any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return errs.New(errs.Invalid, "Could not read request body")
	}
	if len(body) > MaxBodyBytes {
		return errTooLarge
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if !utf8.Valid(body) {
		return errs.New(errs.Invalid, "Request body must be valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return errs.New(errs.Invalid, "%s must be a string", typeErr.Field)
		}
		return errs.New(errs.Invalid, "Request body must be a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errs.New(errs.Invalid, "Request body must be a single JSON object")
	}
	return nil
}
