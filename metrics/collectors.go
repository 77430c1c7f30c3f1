package metrics

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/agentbot/registry/heartbeat"
)

// WatchDB exports the database pool's statistics (go_sql_* with
// db_name="registry").
func (m *Metrics) WatchDB(db *sql.DB) {
	m.Registry.MustRegister(collectors.NewDBStatsCollector(db, "registry"))
}

// WatchBatches exports the counters of a heartbeat.Coalescer as
// registry_<name>_*: recorded, dropped (pending set full), rows written,
// write statements, rows failed, and the pending set's size.
func (m *Metrics) WatchBatches(name, what string, stats func() heartbeat.Stats) {
	counter := func(suffix, help string, value func(heartbeat.Stats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "registry_" + name + "_" + suffix, Help: help,
		}, func() float64 { return float64(value(stats())) })
	}
	m.Registry.MustRegister(
		counter("recorded_total", what+" accepted.", func(s heartbeat.Stats) int64 { return s.Recorded }),
		counter("dropped_total", what+" dropped because the pending set was full.", func(s heartbeat.Stats) int64 { return s.Dropped }),
		counter("rows_written_total", "Rows written from batched "+what+".", func(s heartbeat.Stats) int64 { return s.Written }),
		counter("writes_total", "Database statements or transactions that wrote batched "+what+".", func(s heartbeat.Stats) int64 { return s.Writes }),
		counter("rows_failed_total", "Rows of batched "+what+" lost after retries.", func(s heartbeat.Stats) int64 { return s.Failed }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "registry_" + name + "_pending", Help: what + " waiting to be written.",
		}, func() float64 { return float64(stats().Pending) }),
	)
}

// FleetCounts returns the number of installations by mode and status.
type FleetCounts func(ctx context.Context) (map[[2]string]int, error)

// WatchFleet exports registry_installations{mode,status}. Counting a large
// fleet takes a query, so one count serves every scrape for 10 seconds.
func (m *Metrics) WatchFleet(count FleetCounts) {
	m.Registry.MustRegister(&fleetCollector{count: count, desc: prometheus.NewDesc(
		"registry_installations", "Installations by mode and status.", []string{"mode", "status"}, nil)})
}

type fleetCollector struct {
	count FleetCounts
	desc  *prometheus.Desc

	mu     sync.Mutex
	at     time.Time
	counts map[[2]string]int
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > 10*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		counts, err := c.count(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, err)
			return
		}
		c.counts, c.at = counts, time.Now()
	}
	for key, n := range c.counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), key[0], key[1])
	}
}
