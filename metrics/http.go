// Package metrics exposes the registry's Prometheus metrics: HTTP traffic,
// GraphQL operations, the database pool, the fleet, and the batched writes
// of heartbeats and key uses. Every metric is named registry_*.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors the request path updates.
type Metrics struct {
	Registry *prometheus.Registry

	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	operations *prometheus.CounterVec
	gqlErrors  *prometheus.CounterVec
	keyChecks  *prometheus.CounterVec
}

// New returns metrics registered on a fresh registry, with the Go runtime
// and process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registry_http_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "registry_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "method"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registry_graphql_operations_total",
			Help: "GraphQL operations by type (query, mutation) and outcome (ok, error).",
		}, []string{"type", "outcome"}),
		gqlErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registry_graphql_errors_total",
			Help: "GraphQL errors by extensions.code.",
		}, []string{"code"}),
		keyChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registry_key_checks_total",
			Help: "API key checks by result (valid, invalid, revoked, expired, error).",
		}, []string{"result"}),
	}
	m.Registry.MustRegister(m.requests, m.latency, m.operations, m.gqlErrors, m.keyChecks,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// Request counts and times one answered HTTP request of route.
func (m *Metrics) Request(route, method string, code int, elapsed time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route, method).Observe(elapsed.Seconds())
}

// GraphQLOperation counts one finished operation.
func (m *Metrics) GraphQLOperation(kind string, failed bool) {
	outcome := "ok"
	if failed {
		outcome = "error"
	}
	m.operations.WithLabelValues(kind, outcome).Inc()
}

// GraphQLError counts one error sent to a GraphQL client.
func (m *Metrics) GraphQLError(code string) { m.gqlErrors.WithLabelValues(code).Inc() }

// KeyCheck counts one API key check.
func (m *Metrics) KeyCheck(result string) { m.keyChecks.WithLabelValues(result).Inc() }
