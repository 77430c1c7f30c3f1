package main

// The OpenAPI document of the REST layer (rest/openapi.json, served at
// /openapi.json). Every request the suite sends to /api/* goes through
// app.send, which validates the request and its answer against the document
// (oaPrepare), so the document cannot drift from the handlers. The tests
// here check the document itself, that it names exactly the routes the
// server serves, and that the validation catches what it should.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/agentbot/registry/rest"
)

// oaRESTRoutes are the routes of the REST layer (CONTRACT.md section 4):
// the document must describe exactly these operations.
var oaRESTRoutes = []string{
	"POST /api/validate-key",
	"POST /api/register-home",
	"POST /api/register-link",
	"GET /api/installations",
	"POST /api/heartbeat",
}

// oaSpec is the document, loaded, validated and routed once for the suite.
type oaSpec struct {
	doc    *openapi3.T
	router routers.Router
	// notFound is the route an unknown /api path is checked against: its
	// only response is #/components/responses/NotFound.
	notFound *routers.Route
}

// oaDocument is the document exactly as rest.OpenAPI serves it.
func oaDocument() []byte {
	rec := httptest.NewRecorder()
	rest.OpenAPI().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	return rec.Body.Bytes()
}

// oaLoad parses and validates a document and builds its router.
func oaLoad(raw []byte) (*oaSpec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("rest/openapi.json does not load: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("rest/openapi.json is not a valid OpenAPI 3 document: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("rest/openapi.json: building the router: %w", err)
	}
	notFound := doc.Components.Responses["NotFound"]
	if notFound == nil {
		return nil, errors.New("rest/openapi.json has no #/components/responses/NotFound for unknown paths")
	}
	return &oaSpec{doc: doc, router: router, notFound: &routers.Route{
		Spec:      doc,
		Path:      "(any path not in the document)",
		PathItem:  &openapi3.PathItem{},
		Operation: &openapi3.Operation{Responses: openapi3.NewResponses(openapi3.WithStatus(http.StatusNotFound, notFound))},
	}}, nil
}

var oaSuiteSpec = sync.OnceValues(func() (*oaSpec, error) { return oaLoad(oaDocument()) })

// oaPrepare is the harness's hook (app.send): for a request to /api/* it
// takes a copy of the body (and gives req a fresh one to send), and returns
// the function that validates the request and the answer once it is read.
// Any other request is not checked.
func oaPrepare(t *testing.T, req *http.Request) func(res *http.Response, raw []byte) {
	t.Helper()
	if !strings.HasPrefix(req.URL.Path, "/api/") {
		return func(*http.Response, []byte) {}
	}
	spec, err := oaSuiteSpec()
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			t.Fatalf("reading the request body to validate it: %v", err)
		}
		// ContentLength is left as it is: a body of unknown length is still
		// sent chunked.
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	sent := req.Clone(context.Background())
	return func(res *http.Response, raw []byte) {
		t.Helper()
		if err := spec.check(sent, body, res.StatusCode, res.Header, raw); err != nil {
			t.Error(err)
		}
	}
}

// oaOptions are the validation options: every status must be documented;
// the bearer scheme is checked for presence only (whether the key is valid
// is the server's business, and its 401 is documented); schema errors say
// where and why without dumping the schema and the value.
var oaOptions = func() *openapi3filter.Options {
	o := &openapi3filter.Options{
		AuthenticationFunc:      oaAuthenticate,
		IncludeResponseStatus:   true,
		MultiError:              true,
		SkipSettingDefaults:     true,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()},
	}
	return o
}()

// oaAuthenticate accepts a request for the bearer scheme when it carries
// "Authorization: Bearer <token>" (scheme case-insensitive, token not empty).
func oaAuthenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	if s.Type != "http" || !strings.EqualFold(s.Scheme, "bearer") {
		return in.NewError(fmt.Errorf("security scheme %q is not http bearer", in.SecuritySchemeName))
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(in.RequestValidationInput.Request.Header.Get("Authorization")), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return in.NewError(errors.New("no bearer token in the Authorization header"))
	}
	return nil
}

// check validates one exchange: req as sent (its body is body), and the
// answer. The answer must always match the document. A request the document
// does not allow (wrong type, not JSON, no key, a method or path it does not
// have: the suite sends many on purpose) is fine, as long as the server
// refused it with a 4xx, whose body is validated like any other.
func (s *oaSpec) check(req *http.Request, body []byte, status int, header http.Header, raw []byte) error {
	what := req.Method + " " + req.URL.RequestURI()
	if len(what) > 120 {
		what = what[:120] + "…"
	}
	// The server reads every body as JSON whatever its Content-Type
	// (installers post with curl -d, i.e. application/x-www-form-urlencoded),
	// and a blank body as none: validate the body the server reads.
	vreq := req.Clone(context.Background())
	vreq.GetBody = nil
	if len(bytes.TrimSpace(body)) == 0 {
		vreq.Body, vreq.ContentLength = http.NoBody, 0
		vreq.Header.Del("Content-Type")
	} else {
		vreq.Body, vreq.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		vreq.Header.Set("Content-Type", "application/json")
	}

	var reqErr error
	route, params, err := s.router.FindRoute(vreq)
	switch {
	case err == nil:
		reqErr = openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
			Request: vreq, PathParams: params, Route: route, Options: oaOptions,
		})
	case errors.Is(err, routers.ErrMethodNotAllowed):
		// The answer is checked against the responses of the path's own
		// operation, which document the 405 given to any other method.
		route = s.pathRoute(vreq.URL.Path)
		if route == nil {
			return fmt.Errorf("OpenAPI: %s: the router found the path but the document has no operation for it", what)
		}
		reqErr = fmt.Errorf("the document has no %s operation on %s", req.Method, route.Path)
	case errors.Is(err, routers.ErrPathNotFound):
		route = s.notFound
		reqErr = errors.New("the path is not in the document")
	default:
		return fmt.Errorf("OpenAPI: %s: finding the route: %v", what, err)
	}

	resErr := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: oaOptions},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(raw)),
		Options:                oaOptions,
	})
	if resErr != nil {
		return fmt.Errorf("OpenAPI: %s (documented as %s %s): the answer %d does not match rest/openapi.json: %v\nanswer body: %s",
			what, route.Method, route.Path, status, resErr, oaShort(raw))
	}
	if reqErr != nil && (status < 400 || status > 499) {
		return fmt.Errorf("OpenAPI: %s: the request does not match rest/openapi.json (%v), yet the server answered %d, not a 4xx\nrequest body: %s\nanswer body: %s",
			what, reqErr, status, oaShort(body), oaShort(raw))
	}
	return nil
}

// pathRoute is the route of the documented operation of path, for answers
// to a method the path does not have.
func (s *oaSpec) pathRoute(path string) *routers.Route {
	item := s.doc.Paths.Find(path)
	if item == nil {
		return nil
	}
	ops := item.Operations()
	if len(ops) != 1 {
		return nil
	}
	for method, op := range ops {
		return &routers.Route{Spec: s.doc, Path: path, PathItem: item, Method: method, Operation: op}
	}
	return nil
}

func oaShort(b []byte) string {
	const max = 300
	if len(b) > max {
		return fmt.Sprintf("%q… (%d bytes)", b[:max], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// oaOperations lists "METHOD /path" of every operation in the document.
func oaOperations(doc *openapi3.T) []string {
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

// TestOpenAPIDocumentServed: GET /openapi.json serves the embedded document
// as application/json, and it is a valid OpenAPI 3 document.
func TestOpenAPIDocumentServed(t *testing.T) {
	t.Parallel()
	a := newApp(t, "sqlite:"+filepath.Join(t.TempDir(), "registry.db"), nil)
	res := a.do(t, http.MethodGet, "/openapi.json", "", "")
	if res.Status != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d %s", res.Status, oaShort([]byte(res.Raw)))
	}
	if mt, _, err := mime.ParseMediaType(res.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		t.Errorf("GET /openapi.json: Content-Type %q, want application/json", res.Header.Get("Content-Type"))
	}
	if !bytes.Equal([]byte(res.Raw), oaDocument()) {
		t.Errorf("GET /openapi.json does not serve rest/openapi.json as it is")
	}
	onDisk, err := os.ReadFile(filepath.Join("rest", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, []byte(res.Raw)) {
		t.Errorf("the served document differs from rest/openapi.json")
	}
	spec, err := oaLoad([]byte(res.Raw))
	if err != nil {
		t.Fatal(err)
	}
	if v := spec.doc.OpenAPI; !strings.HasPrefix(v, "3.") {
		t.Errorf("openapi %q, want 3.x", v)
	}
	if spec.doc.Components.SecuritySchemes["bearerAuth"] == nil {
		t.Errorf("no bearerAuth security scheme")
	}
	// The method is enforced like everywhere else; HEAD is GET without a body.
	if res := a.do(t, http.MethodPost, "/openapi.json", "", ""); res.Status != http.StatusNotFound && res.Status != http.StatusMethodNotAllowed {
		t.Errorf("POST /openapi.json: %d, want 404 or 405", res.Status)
	}
}

// TestOpenAPIRoutesMatchServer: the document has exactly the operations of
// the REST layer, routes.go registers exactly their paths, and the running
// server answers each documented method on each documented path, and
// refuses another method with 405 and an Allow header naming the
// documented one.
func TestOpenAPIRoutesMatchServer(t *testing.T) {
	t.Parallel()
	spec, err := oaSuiteSpec()
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(oaRESTRoutes))
	if got := oaOperations(spec.doc); !slices.Equal(got, want) {
		t.Errorf("the document's operations are\n  %v\nwant the REST routes\n  %v", got, want)
	}

	// Every /api path routes.go registers, and only those, is documented.
	src, err := os.ReadFile("routes.go")
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, m := range regexp.MustCompile(`"(?:[A-Z]+ )?(/api/[^"]*)"`).FindAllStringSubmatch(string(src), -1) {
		registered[m[1]] = true
	}
	documented := map[string]bool{}
	for _, r := range oaRESTRoutes {
		_, path, _ := strings.Cut(r, " ")
		documented[path] = true
	}
	if got, want := slices.Sorted(maps.Keys(registered)), slices.Sorted(maps.Keys(documented)); !slices.Equal(got, want) {
		t.Errorf("routes.go registers the /api paths\n  %v\nthe document has\n  %v", got, want)
	}

	a := newApp(t, "sqlite:"+filepath.Join(t.TempDir(), "registry.db"), nil)
	for _, r := range oaRESTRoutes {
		method, path, _ := strings.Cut(r, " ")
		// The documented method is served (without a key: 401, or the
		// heartbeat's 200), which the harness validates.
		if res := a.do(t, method, path, "", ""); res.Status == http.StatusNotFound || res.Status == http.StatusMethodNotAllowed {
			t.Errorf("%s: %d, the server does not serve it", r, res.Status)
		}
		// PATCH is no endpoint's method.
		res := a.do(t, http.MethodPatch, path, a.AdminKey, "")
		if res.Status != http.StatusMethodNotAllowed || res.Header.Get("Allow") != method {
			t.Errorf("PATCH %s: %d with Allow %q, want 405 with Allow %s", path, res.Status, res.Header.Get("Allow"), method)
		}
	}
}

// TestOpenAPIValidationCatchesMismatches: the check the harness runs on
// every exchange accepts what the server really does (JSON sent as a form,
// an empty body, a refused hostile body) and refuses drift: a missing or
// extra field, a wrong type or enum, an undocumented status, a request the
// document forbids answered with a success.
func TestOpenAPIValidationCatchesMismatches(t *testing.T) {
	t.Parallel()
	spec, err := oaSuiteSpec()
	if err != nil {
		t.Fatal(err)
	}
	const (
		errBody  = `{"success":false,"error":"userId is required"}`
		homeOK   = `{"success":true,"message":"Home installation registered","dashboardUrl":"https://agentbot.raveculture.xyz/dashboard"}`
		beatOK   = `{"success":true,"timestamp":"2026-03-21T12:00:00Z"}`
		validOK  = `{"valid":true,"userId":"u","plan":"solo","features":["dashboard"]}`
		key      = "Bearer agb_x"
		jsonType = "application/json"
		form     = "application/x-www-form-urlencoded"
	)
	type exchange struct {
		name                   string
		method, path, auth, ct string
		body                   string
		status                 int
		header                 map[string]string
		answer                 string
		wantErr                bool
	}
	cases := []exchange{
		// What the server really does.
		{name: "heartbeat posted as a form", method: "POST", path: "/api/heartbeat", ct: form, body: `{"userId":"u"}`, status: 200, answer: beatOK},
		{name: "heartbeat without a body", method: "POST", path: "/api/heartbeat", status: 200, answer: beatOK},
		{name: "heartbeat with a blank body", method: "POST", path: "/api/heartbeat", body: " \n", status: 200, answer: beatOK},
		{name: "heartbeat with unknown fields", method: "POST", path: "/api/heartbeat", ct: jsonType, body: `{"status":"ok"}`, status: 200, answer: beatOK},
		{name: "register-home as a form", method: "POST", path: "/api/register-home", auth: key, ct: form, body: `{"userId":"u","mode":"cloud"}`, status: 200, answer: homeOK},
		{name: "register-home with an empty mode refused", method: "POST", path: "/api/register-home", auth: key, ct: jsonType, body: `{"userId":"u","mode":""}`, status: 400, answer: errBody},
		{name: "hostile body refused", method: "POST", path: "/api/register-home", auth: key, ct: jsonType, body: `{"userId":42}`, status: 400, answer: errBody},
		{name: "not JSON refused", method: "POST", path: "/api/heartbeat", ct: form, body: `userId=u`, status: 400, answer: errBody},
		{name: "no key refused", method: "POST", path: "/api/register-home", ct: jsonType, body: `{"userId":"u"}`, status: 401, answer: `{"success":false,"error":"Unauthorized: missing bearer token"}`},
		{name: "validate-key refused", method: "POST", path: "/api/validate-key", auth: key, status: 401, answer: `{"valid":false,"error":"Unauthorized: invalid API key"}`},
		{name: "validate-key ignores its body", method: "POST", path: "/api/validate-key", auth: key, ct: "text/plain", body: `not json`, status: 200, answer: validOK},
		{name: "paged listing", method: "GET", path: "/api/installations?limit=1", auth: key, status: 200,
			answer: `{"success":true,"count":1,"installations":[{"userId":"u","mode":"home","registeredAt":"2026-03-21T12:00:00Z","lastSeen":"2026-03-21T12:00:00Z","status":"active"}],"nextCursor":null}`},
		{name: "limit out of range refused", method: "GET", path: "/api/installations?limit=1001", auth: key, status: 400, answer: `{"success":false,"error":"limit must be a whole number from 1 to 1000"}`},
		{name: "other method", method: "PUT", path: "/api/register-home", auth: key, status: 405, header: map[string]string{"Allow": "POST"}, answer: `{"success":false,"error":"Method not allowed"}`},
		{name: "unknown path", method: "GET", path: "/api/nope", status: 404, answer: `{"success":false,"error":"Not found"}`},
		{name: "rate limited", method: "POST", path: "/api/heartbeat", status: 429,
			header: map[string]string{"Retry-After": "7", "RateLimit-Limit": "3", "RateLimit-Remaining": "0", "RateLimit-Reset": "7"},
			answer: `{"success":false,"error":"Too many requests: the limit is 3 a minute"}`},

		// Drift the check must catch.
		{name: "missing field", method: "POST", path: "/api/heartbeat", status: 200, answer: `{"success":true}`, wantErr: true},
		{name: "timestamp not in UTC", method: "POST", path: "/api/heartbeat", status: 200, answer: `{"success":true,"timestamp":"2026-03-21T13:00:00+01:00"}`, wantErr: true},
		{name: "extra field", method: "POST", path: "/api/validate-key", auth: key, status: 200,
			answer: `{"valid":true,"userId":"u","plan":"solo","features":[],"gatewayToken":"t"}`, wantErr: true},
		{name: "plan not in the enum", method: "POST", path: "/api/validate-key", auth: key, status: 200,
			answer: `{"valid":true,"userId":"u","plan":"SOLO","features":[]}`, wantErr: true},
		{name: "validate-key error with success", method: "POST", path: "/api/validate-key", status: 401, answer: `{"success":false,"error":"Unauthorized"}`, wantErr: true},
		{name: "undocumented status", method: "POST", path: "/api/validate-key", auth: key, status: 409, answer: `{"valid":false,"error":"x"}`, wantErr: true},
		{name: "error body without a message", method: "POST", path: "/api/heartbeat", ct: jsonType, body: `{"userId":1}`, status: 400, answer: `{"success":false}`, wantErr: true},
		{name: "not JSON answered", method: "POST", path: "/api/heartbeat", status: 200, answer: `ok`, wantErr: true},
		{name: "wrong answer Content-Type", method: "POST", path: "/api/heartbeat", status: 200, header: map[string]string{"Content-Type": "text/plain"}, answer: beatOK, wantErr: true},
		{name: "hostile body accepted", method: "POST", path: "/api/register-home", auth: key, ct: jsonType, body: `{"userId":42}`, status: 200, answer: homeOK, wantErr: true},
		{name: "bad mode accepted", method: "POST", path: "/api/register-home", auth: key, ct: form, body: `{"userId":"u","mode":"bogus"}`, status: 200, answer: homeOK, wantErr: true},
		{name: "no key accepted", method: "POST", path: "/api/register-home", ct: jsonType, body: `{"userId":"u"}`, status: 200, answer: homeOK, wantErr: true},
		{name: "register-link answered as home", method: "POST", path: "/api/register-link", auth: key, body: `{"userId":"u"}`, status: 200, answer: homeOK, wantErr: true},
		{name: "other method accepted", method: "DELETE", path: "/api/heartbeat", status: 200, answer: beatOK, wantErr: true},
		{name: "405 without Allow", method: "PUT", path: "/api/register-home", auth: key, status: 405, answer: `{"success":false,"error":"Method not allowed"}`, wantErr: true},
		{name: "unknown path answered", method: "GET", path: "/api/nope", status: 200, answer: beatOK, wantErr: true},
		{name: "429 without Retry-After", method: "POST", path: "/api/heartbeat", status: 429,
			header: map[string]string{"RateLimit-Limit": "3", "RateLimit-Remaining": "0", "RateLimit-Reset": "7"},
			answer: `{"success":false,"error":"Too many requests"}`, wantErr: true},
	}
	for _, c := range cases {
		req, err := http.NewRequest(c.method, "http://registry.test"+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		if c.ct != "" {
			req.Header.Set("Content-Type", c.ct)
		}
		header := http.Header{"Content-Type": {"application/json"}}
		for k, v := range c.header {
			header.Set(k, v)
		}
		err = spec.check(req, []byte(c.body), c.status, header, []byte(c.answer+"\n"))
		if c.wantErr && err == nil {
			t.Errorf("%s: the check accepts it, want a mismatch", c.name)
		}
		if !c.wantErr && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
