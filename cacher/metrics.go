package cacher

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the cache's Prometheus collectors. They are process-wide,
// like the state they count, and registered in every config's registry.
// Label values are bounded: chains come from the config and methods from
// the rules table (OtherMethod for the rest).
//
// Hits, misses and hit bytes count calls, whatever the store. Entries and
// bytes count what this process holds in memory: the memory store's
// entries and the suducer's latest-block entries (kept in memory with
// either store). Entries in Redis are not counted: Redis is shared by
// several gateways and expires and evicts entries on its own, so only
// Redis knows them (INFO keyspace, INFO memory).
type Metrics struct {
	hits     *prometheus.CounterVec
	misses   *prometheus.CounterVec
	hitBytes *prometheus.CounterVec
	entries  *prometheus.GaugeVec
	bytes    *prometheus.GaugeVec
	redisErr prometheus.Counter
}

var (
	metricsOnce sync.Once
	metrics     *Metrics
)

// DefaultMetrics returns the process-wide collectors.
func DefaultMetrics() *Metrics {
	metricsOnce.Do(func() {
		const ns, sub = "elara", "cache"
		labels := []string{"chain", "method"}
		metrics = &Metrics{
			hits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "hits_total",
				Help: "Calls answered from the cache."}, labels),
			misses: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "misses_total",
				Help: "Cacheable calls that went to a node."}, labels),
			hitBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "hit_bytes_total",
				Help: "Bytes of results answered from the cache."}, labels),
			entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "entries",
				Help: "Entries held in this process's memory: the memory store's and the suducer's latest-block entries. Entries in Redis are not counted."}, labels),
			bytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "bytes",
				Help: "Bytes held in this process's memory: the memory store's and the suducer's latest-block entries. Entries in Redis are not counted."}, labels),
			redisErr: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "redis_errors_total",
				Help: "Redis calls that failed or timed out (each answered from a node instead)."}),
		}
	})
	return metrics
}

// Register adds the collectors to reg; registering twice is fine.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	if m == nil || reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.hits, m.misses, m.hitBytes, m.entries, m.bytes, m.redisErr} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

func (m *Metrics) hit(chain, method string, size int) {
	if m == nil {
		return
	}
	m.hits.WithLabelValues(chain, method).Inc()
	m.hitBytes.WithLabelValues(chain, method).Add(float64(size))
}

func (m *Metrics) miss(chain, method string) {
	if m == nil {
		return
	}
	m.misses.WithLabelValues(chain, method).Inc()
}

func (m *Metrics) stored(chain, method string, entries int, bytes int64) {
	if m == nil {
		return
	}
	m.entries.WithLabelValues(chain, method).Add(float64(entries))
	m.bytes.WithLabelValues(chain, method).Add(float64(bytes))
}

func (m *Metrics) redisError() {
	if m == nil {
		return
	}
	m.redisErr.Inc()
}
