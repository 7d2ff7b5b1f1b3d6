package handler

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/limits"
)

// Defaults of the per-IP bounds, the floor under every project's limits.
// They are generous because many users may share one address (NAT,
// office, mobile carrier) and because tests and benchmarks run from
// loopback, which is not exempt.
const (
	DefaultMaxConnectionsPerIP   = 1024
	DefaultMaxSubscriptionsPerIP = 2048
)

// Names of the per-IP bounds in refusals (limits.ExceededData.Limit).
// logIPBound is the rate-limited warning of a per-IP refusal.
const logIPBound = "client_ip_bound"

const (
	limitConnectionsPerIP   = "max_connections_per_ip"
	limitSubscriptionsPerIP = "max_subscriptions_per_ip"
)

// ipBounds counts, per client IP (IPv6 by /64), the open WebSocket
// connections and the sessions whose subscriptions count against the IP.
// It is shared by every handler instance, so a reload does not hand an
// IP a fresh allowance while its old connections are still open.
type ipBounds struct {
	mu  sync.Mutex
	ips map[string]*ipEntry
}

type ipEntry struct {
	conns int
	// smu serialises the subscription checks of the IP's sessions, so
	// concurrent subscribes cannot together pass the bound.
	smu      sync.Mutex
	sessions map[*wsSession]struct{}
	// admitting counts subscribes that passed the check and are not yet
	// reserved on their session (counted twice meanwhile: never under).
	admitting int
}

var perIP = &ipBounds{ips: make(map[string]*ipEntry)}

// acquireConn counts one more connection of ip unless limit is reached.
func (b *ipBounds) acquireConn(ip string, limit int) (e *ipEntry, release func(), used int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e = b.ips[ip]
	if e == nil {
		e = &ipEntry{sessions: make(map[*wsSession]struct{})}
		b.ips[ip] = e
	}
	if e.conns >= limit {
		return nil, nil, e.conns
	}
	e.conns++
	var once sync.Once
	return e, func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if e.conns--; e.conns == 0 {
				delete(b.ips, ip) // memory follows open connections only
			}
		})
	}, 0
}

// admitIPConnection counts a WebSocket upgrade against its client IP. A
// connection over max_connections_per_ip is refused with 429, Retry-After
// and a -32029 body, as a project's connections limit is; ok is false
// then and the client has its answer.
func (h *Handler) admitIPConnection(w http.ResponseWriter, rt *route) (release func(), ok bool, err error) {
	ip := ipLimitKey(hostOnly(rt.clientIP))
	e, release, used := perIP.acquireConn(ip, h.MaxConnectionsPerIP)
	if e == nil {
		ex := &limits.Exceeded{Limit: limitConnectionsPerIP, Scope: limits.ScopeIP,
			Value: float64(h.MaxConnectionsPerIP), Used: int64(used), RetryAfter: time.Second}
		h.rlog.warn(logIPBound, "websocket refused: client IP at max_connections_per_ip", rt.logFields()...)
		w.Header().Set("Retry-After", strconv.FormatInt(ex.RetryAfterSeconds(), 10))
		return nil, false, writeError(w, http.StatusTooManyRequests, overLimitError(ex))
	}
	rt.ip = e
	return release, true, nil
}

// joinIP makes the session's subscriptions count against its IP until
// the returned function is called.
func (s *wsSession) joinIP() func() {
	e := s.route().ip
	if e == nil {
		return func() {}
	}
	e.smu.Lock()
	e.sessions[s] = struct{}{}
	e.smu.Unlock()
	return func() {
		e.smu.Lock()
		delete(e.sessions, s)
		e.smu.Unlock()
	}
}

// admitIPSubscription checks a subscribe against the subscriptions the
// client's IP holds or is opening on all its connections. On success
// the caller calls done once the subscribe is reserved on the session
// (or has failed); refused is the answer otherwise.
func (s *wsSession) admitIPSubscription(req *jsonrpc.Request) (done func(), refused *answer) {
	e := s.route().ip
	if e == nil {
		return func() {}, nil
	}
	limit := s.handler().MaxSubscriptionsPerIP
	e.smu.Lock()
	n := e.admitting
	for o := range e.sessions {
		n += o.subscriptionCount()
	}
	if n >= limit {
		e.smu.Unlock()
		ex := &limits.Exceeded{Limit: limitSubscriptionsPerIP, Scope: limits.ScopeIP,
			Value: float64(limit), Used: int64(n), RetryAfter: time.Second}
		s.handler().rlog.warn(logIPBound, "subscribe refused: client IP at max_subscriptions_per_ip", s.route().logFields()...)
		a := refusal(req, http.StatusTooManyRequests, ex.RetryAfterSeconds(), overLimitError(ex))
		return nil, &a
	}
	e.admitting++
	e.smu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			e.smu.Lock()
			e.admitting--
			e.smu.Unlock()
		})
	}, nil
}
