package rest

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI 3 description of this REST layer, written
// by hand. The root package's tests validate every /api request of the suite
// and its answer against it, so it cannot drift from the handlers.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI serves the OpenAPI 3 document of the REST layer as
// application/json (GET /openapi.json).
func OpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPIDocument)
	})
}
