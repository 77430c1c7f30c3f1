package graph

import (
	"context"
	"errors"
	"regexp"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/agentbot/registry/errs"
)

// extensionCodes is the one table from the error vocabulary to GraphQL's
// extensions.code.
var extensionCodes = map[errs.Code]string{
	errs.Invalid:         "BAD_USER_INPUT",
	errs.Unauthenticated: "UNAUTHENTICATED",
	errs.Forbidden:       "FORBIDDEN",
	errs.NotFound:        "NOT_FOUND",
	errs.Conflict:        "CONFLICT",
	errs.Unavailable:     "UNAVAILABLE",
	errs.Internal:        "INTERNAL_SERVER_ERROR",
}

// goDetail matches what gqlgen's input coercion errors say about Go
// itself ("map[string]interface {} is not a string", "json.Number …",
// "msgpack: …"): not for clients.
var goDetail = regexp.MustCompile(`interface \{\}|map\[|json[.:]|msgpack|\*?\b[a-z]+\.[A-Z]\w*`)

// presentError gives every error of the vocabulary its extensions.code and
// hides the text of internal ones. Errors gqlgen raises itself (parse,
// validation, input coercion) keep gqlgen's message and code, unless the
// message speaks of Go types: then it becomes a plain BAD_USER_INPUT.
func presentError(ctx context.Context, err error) *gqlerror.Error {
	gqlErr := graphql.DefaultErrorPresenter(ctx, err)
	var e *errs.Error
	if !errors.As(err, &e) {
		if goDetail.MatchString(gqlErr.Message) {
			e = errs.New(errs.Invalid, "invalid value")
		} else {
			return gqlErr
		}
	}
	gqlErr.Message = e.Message
	if gqlErr.Extensions == nil {
		gqlErr.Extensions = map[string]any{}
	}
	gqlErr.Extensions["code"] = extensionCodes[e.Code]
	return gqlErr
}
