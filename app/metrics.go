package app

import (
	"context"
	"errors"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/elara-gateway/elara/suber"
)

// Upstream metrics. Calls and their latency are counted as they happen,
// by process-wide collectors (nodes outlive config reloads); readiness and
// subscriptions are read from this config's chains when /metrics is
// scraped. Labels are bounded: chain names from the config, node labels
// from nodeLabel, outcomes from upstreamOutcomes.
type upstreamMetrics struct {
	calls   *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

// Outcomes of an upstream request, the values of its outcome label.
var upstreamOutcomes = [...]string{"ok", "error", "timeout", "canceled", "failed", "unavailable"}

const (
	upOK          = iota // the node answered a result
	upError              // the node answered a JSON-RPC error
	upTimeout            // the call's deadline passed first
	upCanceled           // the caller gave up first
	upFailed             // the connection was lost, or the reply was unreadable
	upUnavailable        // no connection to send it on
)

var defaultUpstreamMetrics = sync.OnceValue(func() *upstreamMetrics {
	const ns, sub = "elara", "upstream"
	return &upstreamMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "calls_total",
			Help: "Requests sent to each node (client calls, subscribes, unsubscribes, cache refreshes, health checks), by outcome."},
			[]string{"chain", "node", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "call_duration_seconds",
			Help:    "Time from a request being sent to a node to its answer (or failure).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
			[]string{"chain", "node"}),
	}
})

var (
	readyDesc = prometheus.NewDesc("elara_upstream_ready",
		"1 when the node may serve users (connected, synced, within max_lag and head_timeout), else 0.",
		[]string{"chain", "node"}, nil)
	upstreamSubsDesc = prometheus.NewDesc("elara_upstream_subscriptions",
		"Subscriptions the gateway holds on the node: shared client subscriptions once each, sticky ones, and its own head subscriptions.",
		[]string{"chain", "node"}, nil)
)

// registerMetrics adds the upstream collectors to this config's registry;
// registering twice is fine.
func (a *App) registerMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	m := defaultUpstreamMetrics()
	for _, c := range []prometheus.Collector{m.calls, m.latency, chainCollector{a}, boundsCollector{a}} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// nodeObserver counts one node's requests, its label children resolved
// once.
type nodeObserver struct {
	counters [len(upstreamOutcomes)]prometheus.Counter
	latency  prometheus.Observer
}

func (m *upstreamMetrics) observer(chain, node string) *nodeObserver {
	o := &nodeObserver{latency: m.latency.WithLabelValues(chain, node)}
	for i, name := range upstreamOutcomes {
		o.counters[i] = m.calls.WithLabelValues(chain, node, name)
	}
	return o
}

// Observe implements suber.Observer.
func (o *nodeObserver) Observe(took time.Duration, err error) {
	out := upstreamOutcome(err)
	o.counters[out].Inc()
	if out != upUnavailable {
		o.latency.Observe(took.Seconds())
	}
}

func upstreamOutcome(err error) int {
	switch {
	case err == nil:
		return upOK
	case errors.Is(err, context.DeadlineExceeded):
		return upTimeout
	case errors.Is(err, context.Canceled):
		return upCanceled
	case errors.Is(err, suber.ErrUnavailable), errors.Is(err, suber.ErrClosed):
		return upUnavailable
	}
	if _, ok := suber.IsUpstreamError(err); ok {
		return upError
	}
	return upFailed
}

// chainCollector reports what this config's nodes are doing at scrape
// time, so nothing is counted on the hot path.
type chainCollector struct{ a *App }

func (c chainCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- readyDesc
	ch <- upstreamSubsDesc
}

func (c chainCollector) Collect(ch chan<- prometheus.Metric) {
	for _, name := range c.a.ChainNames() {
		x := c.a.applies[name]
		if x == nil {
			continue // cleaned up
		}
		labels := c.a.nodeLabels[name]
		// The chain's nodes are the config's in force: a config being
		// replaced reports those of its nodes that are still in the group.
		nodes, hs := c.a.chains[name].Upstream.NodeHealth()
		for k, n := range x.nodes {
			i := slices.Index(nodes, n)
			if i < 0 || k >= len(labels) {
				continue
			}
			h := hs[i]
			ready := 0.0
			if h.Ready {
				ready = 1
			}
			ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, ready, name, labels[k])
			ch <- prometheus.MustNewConstMetric(upstreamSubsDesc, prometheus.GaugeValue, float64(n.Subscriptions()), name, labels[k])
		}
	}
}

// nodeLabels names a chain's nodes for metrics: host:port, never the
// credentials, path or query of the URL (they often hold API keys). Nodes
// of one chain on the same host:port are told apart by their position in
// the config (host:port#2 is the chain's third node).
func nodeLabels(urls []string) []string {
	labels := make([]string, len(urls))
	seen := make(map[string]int, len(urls))
	for i, raw := range urls {
		labels[i] = hostPort(raw)
		seen[labels[i]]++
	}
	for i, l := range labels {
		if seen[l] > 1 {
			labels[i] = l + "#" + strconv.Itoa(i)
		}
	}
	return labels
}

// hostPort is the URL's host and port, the scheme's default port when it
// names none.
func hostPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return "invalid"
	}
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "wss", "https":
			port = "443"
		default:
			port = "80"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// Interface guards
var (
	_ suber.Observer       = (*nodeObserver)(nil)
	_ prometheus.Collector = chainCollector{}
)
