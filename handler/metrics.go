package handler

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/elara-gateway/elara/jsonrpc"
)

// Client-side metrics. The collectors are process-wide, like the sessions
// they count across config reloads, and registered in every config's
// registry. Every label is bounded: chains come from the config, methods
// from knownMethods (otherMethod for the rest), transports and outcomes
// from the fixed lists below.
type clientMetrics struct {
	calls    *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	sessions *prometheus.GaugeVec
	subs     *prometheus.GaugeVec
}

var defaultClientMetrics = sync.OnceValue(func() *clientMetrics {
	const ns = "elara"
	return &clientMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "calls_total",
			Help: "JSON-RPC calls from clients (batch entries one by one), by outcome."},
			[]string{"chain", "method", "transport", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "call_duration_seconds",
			Help:    "Time from a client's call being read to its answer being ready.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
			[]string{"chain", "transport", "method"}),
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "client_websocket_sessions",
			Help: "Open client WebSocket connections."}, []string{"chain"}),
		subs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "client_subscriptions",
			Help: "Subscriptions clients hold open on their WebSocket connections."}, []string{"chain"}),
	}
})

// register adds the collectors to reg; registering twice is fine.
func (m *clientMetrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.calls, m.latency, m.sessions, m.subs} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// Transports, the values of the transport label.
const (
	transportHTTP = iota
	transportWS
	numTransports
)

var transportNames = [numTransports]string{"http", "ws"}

// Outcomes, the values of the outcome label: what the client got.
const (
	outOK       = iota
	outDenied   // the method policy refused the method
	outTimeout  // no node answered within request_timeout (-32001)
	outNoNode   // no node could take the call (-32000)
	outLimited  // a gateway or plan limit was reached (-32005, -32029)
	outRefused  // the project refused the call: unknown, not active, not allowed
	outCanceled // the client left before its answer
	outParse    // -32700
	outInvalid  // -32600
	outNotFound // -32601 from a node
	outParams   // -32602
	outInternal // -32603
	outHTTPSubs // -32090: subscription over HTTP
	outError    // any other error a node answered
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "denied", "timeout", "no_node", "limited", "refused", "canceled",
	"-32700", "-32600", "-32601", "-32602", "-32603", "-32090", "error"}

// outcomeOf names the outcome of answering e (nil: a result).
func outcomeOf(e *jsonrpc.Error) uint8 {
	if e == nil {
		return outOK
	}
	switch e.Code {
	case jsonrpc.CodeUpstreamTimeout:
		return outTimeout
	case jsonrpc.CodeUpstreamUnavailable:
		return outNoNode
	case jsonrpc.CodeLimitExceeded:
		return outLimited
	case jsonrpc.CodeParseError:
		return outParse
	case jsonrpc.CodeInvalidRequest:
		return outInvalid
	case jsonrpc.CodeMethodNotFound:
		return outNotFound
	case jsonrpc.CodeInvalidParams:
		return outParams
	case jsonrpc.CodeInternalError:
		return outInternal
	case jsonrpc.CodeSubscriptionsUnavailable:
		return outHTTPSubs
	}
	return outError
}

// chainStats are one chain's children of the client collectors, resolved
// on first use and kept, so a call's labels cost no allocation and no
// lookup in the collectors' maps.
type chainStats struct {
	name     string
	m        *clientMetrics
	sessions prometheus.Gauge
	subs     prometheus.Gauge
	// per transport, per method index
	methods [numTransports][]methodStats
}

type methodStats struct {
	latency  atomic.Pointer[observerRef]
	outcomes [numOutcomes]atomic.Pointer[counterRef]
}

type observerRef struct{ prometheus.Observer }
type counterRef struct{ prometheus.Counter }

var (
	statsMu sync.Mutex
	stats   = map[string]*chainStats{}
)

// statsFor returns the process-wide stats of the named chain: handlers of
// every config count into the same children.
func statsFor(m *clientMetrics, chain string) *chainStats {
	statsMu.Lock()
	defer statsMu.Unlock()
	if s := stats[chain]; s != nil {
		return s
	}
	s := &chainStats{
		name:     chain,
		m:        m,
		sessions: m.sessions.WithLabelValues(chain),
		subs:     m.subs.WithLabelValues(chain),
	}
	for t := range s.methods {
		s.methods[t] = make([]methodStats, len(knownMethods))
	}
	stats[chain] = s
	return s
}

// record counts one call. method is "" when the call had none.
func (s *chainStats) record(ctx context.Context, transport int, method string, outcome uint8, took time.Duration) {
	if s == nil {
		return
	}
	if outcome == outNoNode && ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
		outcome = outCanceled
	}
	slot := methodSlot(method)
	ms := &s.methods[transport][slot]
	c := ms.outcomes[outcome].Load()
	if c == nil {
		c = &counterRef{s.m.calls.WithLabelValues(s.name, knownMethods[slot], transportNames[transport], outcomeNames[outcome])}
		ms.outcomes[outcome].Store(c)
	}
	c.Inc()
	o := ms.latency.Load()
	if o == nil {
		o = &observerRef{s.m.latency.WithLabelValues(s.name, transportNames[transport], knownMethods[slot])}
		ms.latency.Store(o)
	}
	o.Observe(took.Seconds())
}

// transportOf is the transport label of a call: sess is nil over HTTP.
func transportOf(sess *wsSession) int {
	if sess == nil {
		return transportHTTP
	}
	return transportWS
}

func (s *chainStats) sessionOpened() {
	if s != nil {
		s.sessions.Inc()
	}
}

func (s *chainStats) sessionClosed() {
	if s != nil {
		s.sessions.Dec()
	}
}

// subscriptions moves the client subscription gauge by delta.
func (s *chainStats) subscriptions(delta int) {
	if s != nil && delta != 0 {
		s.subs.Add(float64(delta))
	}
}
