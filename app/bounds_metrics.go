package app

import "github.com/prometheus/client_golang/prometheus"

var clientCallsDesc = prometheus.NewDesc("elara_upstream_client_calls",
	"Client calls of the chain at its nodes (state in_flight, at most max_upstream_calls) and waiting their turn (state queued); together at most max_pending_calls.",
	[]string{"chain", "state"}, nil)

// boundsCollector reports, at scrape time, how full each chain's call
// bounds are.
type boundsCollector struct{ a *App }

func (c boundsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- clientCallsDesc }

func (c boundsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, name := range c.a.ChainNames() {
		inflight, queued := c.a.chains[name].Upstream.Scheduler().Stats()
		ch <- prometheus.MustNewConstMetric(clientCallsDesc, prometheus.GaugeValue, float64(inflight), name, "in_flight")
		ch <- prometheus.MustNewConstMetric(clientCallsDesc, prometheus.GaugeValue, float64(queued), name, "queued")
	}
}

// Interface guard
var _ prometheus.Collector = boundsCollector{}
