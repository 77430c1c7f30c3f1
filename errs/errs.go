// Package errs is the service's one error vocabulary. Resolvers return an
// *Error with a Code; rest/ maps the code to an HTTP status in one table and
// graph/ maps it to extensions.code in one error presenter. Any other error
// is internal: its text is logged, never shown to a client.
package errs

import (
	"errors"
	"fmt"
)

// Code says what kind of failure an error is, independent of transport.
type Code string

const (
	Invalid         Code = "invalid"         // bad input: 400, BAD_USER_INPUT
	Unauthenticated Code = "unauthenticated" // missing or bad key: 401, UNAUTHENTICATED
	Forbidden       Code = "forbidden"       // valid key, not allowed: 403, FORBIDDEN
	NotFound        Code = "not_found"       // 404, NOT_FOUND
	Conflict        Code = "conflict"        // 409, CONFLICT
	Unavailable     Code = "unavailable"     // database down: 503, UNAVAILABLE
	Internal        Code = "internal"        // anything else: 500, INTERNAL_SERVER_ERROR
)

// Error is an error meant for the client: Message is safe to show.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// New returns an *Error with a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err, or Internal when err is not an *Error.
func CodeOf(err error) Code {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return Internal
}

// MessageOf returns the client-safe message of err; for an internal error it
// returns fallback, so no internal detail reaches a client.
func MessageOf(err error, fallback string) string {
	if e, ok := errors.AsType[*Error](err); ok && e.Code != Internal {
		return e.Message
	}
	return fallback
}
