package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"

	"entgo.io/contrib/entgql"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/agentbot/registry/auth"
	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/errs"
	"github.com/agentbot/registry/graph/generated"
)

// HandlerOptions are the production switches of the GraphQL endpoint.
type HandlerOptions struct {
	// Introspection allows schema queries (the playground needs them).
	Introspection bool
	// ComplexityLimit caps the cost of one operation; connections cost their
	// page size times their selection.
	ComplexityLimit int
	// MaxDepth caps how deeply fields may nest in one operation.
	MaxDepth int
	// OnOperation, when set, hears every executed operation: its type
	// ("query", "mutation") and the extensions.code of each error it sent.
	OnOperation func(kind string, errorCodes []string)
}

// NewHandler builds the GraphQL endpoint: handler.New with explicit
// transports (not the deprecated default server), a parsed-query cache and
// a complexity limit. Every operation needs a valid API key.
func NewHandler(r *Resolver, opts HandlerOptions) http.Handler {
	cfg := generated.Config{Resolvers: r}
	cfg.Complexity.Query.Installations = func(child int, _ *entgql.Cursor[string], first *int, _ *entgql.Cursor[string], last *int, _ *ent.InstallationOrder, _ *ent.InstallationWhereInput) int {
		return 1 + pageCost(first, last)*child
	}
	cfg.Complexity.Query.APIKeys = func(child int, _ *entgql.Cursor[string], first *int, _ *entgql.Cursor[string], last *int, _ *ent.APIKeyOrder, _ *ent.APIKeyWhereInput) int {
		return 1 + pageCost(first, last)*child
	}
	cfg.Complexity.Query.Nodes = func(child int, ids []string) int {
		return 1 + len(ids)*child
	}

	srv := handler.New(generated.NewExecutableSchema(cfg))
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if opts.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](100)})
	srv.Use(extension.FixedComplexityLimit(opts.ComplexityLimit))
	srv.Use(depthLimit{max: opts.MaxDepth})
	if opts.OnOperation != nil {
		srv.AroundOperations(observe(opts.OnOperation))
	}
	srv.AroundOperations(requireKey)
	srv.SetErrorPresenter(presentError)
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		r.Log.ErrorContext(ctx, "panic in resolver", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return errs.New(errs.Internal, "Internal server error")
	})
	return rejectMalformedBody(srv)
}

// rejectMalformedBody answers a POST whose JSON body is not a GraphQL
// request ({"query": string, "variables": object, ...}) with a plain 400:
// gqlgen's own answer echoes the body and the Go decoder's message.
func rejectMalformedBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeRequestError(w, http.StatusRequestEntityTooLarge, "request body too large (limit 1 MiB)")
			} else {
				writeRequestError(w, http.StatusBadRequest, "could not read the request body")
			}
			return
		}
		var params struct {
			Query         string         `json:"query"`
			OperationName string         `json:"operationName"`
			Variables     map[string]any `json:"variables"`
			Extensions    map[string]any `json:"extensions"`
		}
		if json.Unmarshal(body, &params) != nil {
			writeRequestError(w, http.StatusBadRequest, `the body must be a JSON object: {"query": string, "operationName": string, "variables": object}`)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func writeRequestError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(graphql.Response{Errors: gqlerror.List{{
		Message: message, Extensions: map[string]any{"code": "BAD_REQUEST"},
	}}})
}

// observe reports each operation and its errors once it has answered.
func observe(report func(kind string, errorCodes []string)) graphql.OperationMiddleware {
	return func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		kind := string(graphql.GetOperationContext(ctx).Operation.Operation)
		respond := next(ctx)
		return func(ctx context.Context) *graphql.Response {
			resp := respond(ctx)
			if resp != nil {
				codes := make([]string, 0, len(resp.Errors))
				for _, e := range resp.Errors {
					code, _ := e.Extensions["code"].(string)
					codes = append(codes, code)
				}
				report(kind, codes)
			}
			return resp
		}
	}
}

// requireKey refuses any operation, introspection included, made without a
// valid API key: the contract gives GraphQL no anonymous access.
func requireKey(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if _, err := auth.Require(ctx); err != nil {
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{presentError(ctx, err)}})
	}
	return next(ctx)
}
