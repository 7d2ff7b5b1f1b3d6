package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/limits"
	"github.com/elara-gateway/elara/matcher"
	"github.com/elara-gateway/elara/methods"
	"github.com/elara-gateway/elara/projects"
)

// JSON-RPC error codes of access refusals.
const (
	// CodeOverLimit is a call over a limit; data says which limit and
	// when to come back (limits.ExceededData).
	CodeOverLimit = -32029
	// CodeUnknownProject is a project id the gateway does not know.
	CodeUnknownProject = -32002
	// CodeForbidden is a project that is disabled or suspended, or a
	// call its restrictions (chains, origins, networks) do not allow, or
	// a path without a project where public access is off.
	CodeForbidden = -32003
	// CodeLimitsUnavailable is a call refused because the limits cannot
	// be checked (Redis down with redis_down closed).
	CodeLimitsUnavailable = -32004
)

// Transports a call arrives on, as CallInfo reports them.
const (
	TransportHTTP = "http"
	TransportWS   = "ws"
)

// CallInfo is one client call as the per-call hook sees it on its way
// in and out. Limits use it now; statistics records are built from it.
type CallInfo struct {
	Chain     string
	Project   string // empty for public access
	ClientIP  string
	Method    string
	Transport string
	BytesIn   int
	BytesOut  int
	// Outcome is "ok", "error" (a JSON-RPC error answer) or "refused".
	Outcome string
	Latency time.Duration
	// CacheHit is a call the cache answered; no node saw it.
	CacheHit bool
	// Node is the node that answered (its address without credentials),
	// or the one that failed to; empty for cache hits, refusals, calls
	// the gateway answers itself, subscriptions, and runtime constants
	// the cache fetched by trying several nodes.
	Node string
}

// grant is what the access checks decided for one request (for a
// WebSocket, its whole connection).
type grant struct {
	x       *app.Access
	project string // "" for public access
	subject limits.Subject
	policy  *Policy // the project's allow/deny, or nil
	// rules are the project's restrictions as admitted (restrictionsKey):
	// a connection admitted under other rules is closed (watchProjects).
	rules   string
	release func() // gives back the connection slot
}

// admitRequest checks a request's project (or public access) before any
// call is read. It answers the client itself and returns false when the
// request is refused.
func (h *Handler) admitRequest(w http.ResponseWriter, r *http.Request, rt *route) (bool, error) {
	x := h.app.Access()
	if x == nil {
		return true, nil
	}
	ip := rt.clientIP
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	g := &grant{x: x, project: rt.project}
	if rt.project == "" {
		if x.PublicOff {
			x.Refused(app.RefusedPublic, limits.Subject{IP: ip}, nil)
			return false, writeError(w, http.StatusForbidden, jsonrpc.NewError(CodeForbidden,
				"This gateway serves projects only: use /"+rt.chain.Name+"/{project id}"))
		}
		g.subject = x.Subject(nil, ipLimitKey(ip))
	} else {
		ph, ok := x.Project(rt.project)
		if !ok {
			x.Refused(app.RefusedUnknownProject, limits.Subject{IP: ip}, nil)
			return false, writeError(w, http.StatusNotFound, jsonrpc.NewError(CodeUnknownProject, "Unknown project "+rt.project))
		}
		p := &ph.Project
		if e, reason := refuseProject(p, rt.chain.Name, r.Header.Get("Origin"), ip); e != nil {
			x.Refused(reason, limits.Subject{Project: p.ID}, nil)
			return false, writeError(w, http.StatusForbidden, e)
		}
		if len(p.Allow)+len(p.Deny) > 0 {
			pol, err := NewPolicy(p.Allow, p.Deny)
			if err != nil {
				return false, writeError(w, http.StatusInternalServerError, jsonrpc.NewError(jsonrpc.CodeInternalError, "The project's method rules are invalid"))
			}
			g.policy = pol
		}
		g.subject = ph.Subject
		g.subject.IP = ip
		if isWebSocketUpgrade(r) {
			// Only a connection outlives a change of the rules.
			g.rules = restrictionsKey(p)
		}
	}
	if isWebSocketUpgrade(r) {
		scope, id := limits.ScopeIP, ipLimitKey(ip)
		if g.project != "" {
			scope, id = limits.ScopeProject, g.project
		}
		release, ex := x.Conns().Acquire(scope, id, g.subject.Limits.Connections)
		if ex != nil {
			x.Refused(app.RefusedConnections, g.subject, ex)
			w.Header().Set("Retry-After", strconv.FormatInt(ex.RetryAfterSeconds(), 10))
			return false, writeError(w, http.StatusTooManyRequests, overLimitError(ex))
		}
		g.release = release
	}
	rt.acc = g
	return true, nil
}

// refuseProject checks a project's status and restrictions; it returns
// the error to answer and the refusal reason, or nil.
func refuseProject(p *projects.Project, chain, origin, ip string) (*jsonrpc.Error, string) {
	st := p.Status
	if st != projects.Active {
		st = p.StatusAt(time.Now()) // a suspension may have lapsed
	}
	switch st {
	case projects.Disabled:
		return jsonrpc.NewError(CodeForbidden, "Project "+p.ID+" is disabled"), app.RefusedDisabled
	case projects.Suspended:
		msg := "Project " + p.ID + " is suspended: it reached a daily limit"
		if p.SuspendedUntil != nil {
			msg += "; it is active again at " + p.SuspendedUntil.UTC().Format(time.RFC3339)
		}
		return jsonrpc.NewError(CodeForbidden, msg), app.RefusedSuspended
	}
	if !p.AllowsChain(chain) {
		return jsonrpc.NewError(CodeForbidden, "Project "+p.ID+" may not use chain "+chain), app.RefusedChain
	}
	if !p.AllowsOrigin(origin) {
		return jsonrpc.NewError(CodeForbidden, "This origin is not allowed to use project "+p.ID), app.RefusedOrigin
	}
	if len(p.Networks) > 0 {
		if addr, err := netip.ParseAddr(ip); err != nil || !p.AllowsIP(addr) {
			return jsonrpc.NewError(CodeForbidden, "This client network is not allowed to use project "+p.ID), app.RefusedNetwork
		}
	}
	return nil, ""
}

// overLimitError is the JSON-RPC error of a refusal by a limit.
func overLimitError(ex *limits.Exceeded) *jsonrpc.Error {
	e := jsonrpc.NewError(CodeOverLimit, "Over the limit: "+ex.Error())
	e.Data, _ = json.Marshal(ex.Data())
	return e
}

// serve is the per-call hook: every client call passes here on its way
// in and out (HTTP calls, batch entries, WebSocket frames, subscribe and
// unsubscribe, calls bound to one node), so limits are checked before
// the cache and the nodes, and every call is seen once: by the metrics
// and, with projects, by the project's counts.
func (h *Handler) serve(ctx context.Context, rt route, sess *wsSession, c jsonrpc.Call) answer {
	start := time.Now()
	var a answer
	refused := false
	if rt.acc != nil {
		a, refused = h.admitCall(ctx, rt, sess, c)
	}
	if !refused {
		a = h.dispatch(ctx, rt, sess, c)
	}
	latency := time.Since(start)
	method := ""
	if c.Err == nil {
		method = c.Request.Method
	}
	rt.stats.record(ctx, transportOf(sess), method, a.outcome, latency)
	if rec := h.app.Recorder(); rec != nil {
		h.recordCall(ctx, rec, &rt, sess, c, &a, method, start, latency)
	}
	if rt.acc == nil {
		return a
	}
	info := CallInfo{Chain: rt.chain.Name, Project: rt.project, ClientIP: rt.acc.subject.IP, Transport: TransportHTTP,
		Method: method, Latency: latency, BytesOut: len(a.reply), CacheHit: a.cacheHit, Node: a.node}
	if sess != nil {
		info.Transport = TransportWS
	}
	id := c.ID
	if c.Request != nil {
		info.BytesIn = len(c.Request.Params)
		id = c.Request.ID
	}
	switch {
	case refused:
		info.Outcome = "refused"
	case a.reply != nil && isErrorReply(a.reply, id):
		info.Outcome = "error"
	default:
		info.Outcome = "ok"
	}
	h.observeCall(rt, sess, &info)
	return a
}

// observeCall is the hook's way out: HTTP answers count toward the
// daily bytes (WebSocket frames are counted as they are queued, with
// notifications).
func (h *Handler) observeCall(rt route, sess *wsSession, info *CallInfo) {
	if f := callObserver.Load(); f != nil {
		(*f)(info)
	}
	if sess == nil && info.BytesOut > 0 && app.Counted(rt.acc.subject) {
		rt.acc.x.AddBytes(rt.acc.subject, int64(info.BytesOut))
	}
}

// callObserver, when set, sees every CallInfo: the seam tests use (and
// statistics may), without a cost per call when unset.
var callObserver atomic.Pointer[func(*CallInfo)]

// countSent counts a frame queued for a WebSocket client toward the
// daily bytes; it returns the daily bytes limit when this frame reached
// it (see wsSession.overBytes).
func (g *grant) countSent(n int) *limits.Exceeded {
	if g != nil && app.Counted(g.subject) {
		return g.x.AddBytes(g.subject, int64(n))
	}
	return nil
}

// admitCall checks one call against the project's current status, its
// method rules and the limits, and counts it. refused is true with the
// answer to send when the call must not go on.
func (h *Handler) admitCall(ctx context.Context, rt route, sess *wsSession, c jsonrpc.Call) (a answer, refused bool) {
	if c.Err != nil {
		return answer{}, false
	}
	g, req := rt.acc, c.Request
	subject := g.subject
	var lim *limits.Handle // the project's counters, resolved once per project
	// Ending what this client holds is exempt from daily limits and
	// suspension, never from the rate; ending anything else is a call
	// like any other, answered by the gateway (see holdsEnded).
	_, ender := methods.Ender(req.Method)
	holds := ender && sess.holdsEnded(req)
	if g.project != "" {
		// The project's status as it is now (an in-memory read): a
		// suspension made on any gateway applies to open connections;
		// changed restrictions close them (watchProjects).
		ph, ok := g.x.Project(g.project)
		if !ok {
			return refusal(req, http.StatusNotFound, 0, jsonrpc.NewError(CodeUnknownProject, "Unknown project "+g.project)), true
		}
		p := &ph.Project
		// An active project needs no clock reading (time.Now is not cheap
		// on every virtual machine); a suspension may have lapsed, and a
		// suspended project may still end what its client holds.
		refuse := false
		if p.Status != projects.Active {
			st := p.StatusAt(time.Now())
			refuse = st != projects.Active && !(holds && st == projects.Suspended)
		}
		if refuse {
			e, reason := refuseProject(p, rt.chain.Name, "", "")
			g.x.Refused(reason, subject, nil)
			return refusal(req, http.StatusForbidden, 0, e), true
		}
		ip := subject.IP
		subject, lim = ph.Subject, ph.Limits
		subject.IP = ip
	}
	if g.policy != nil && !g.policy.Allowed(req.Method) {
		return reply(req, nil, jsonrpc.ErrMethodNotFound), true
	}
	// A first look, so a subscribe over the limit is not counted; the
	// check that holds is made with the reservation (wsSession.subscribe).
	if sess != nil && !ender && subject.Limits.Subscriptions > 0 && matcher.IsSubscriptionMethod(req.Method) &&
		!methods.IsUnsubscribeName(req.Method) {
		if n := sess.subscriptionCount(); int64(n) >= subject.Limits.Subscriptions {
			return sess.overSubscriptions(req, subject, n), true
		}
	}
	if !app.Counted(subject) {
		return answer{}, false
	}
	if holds {
		if ex := g.x.Enforcer.AdmitEnding(ctx, subject); ex != nil {
			g.x.Refused(app.RefusedRate, subject, ex)
			return refusal(req, http.StatusTooManyRequests, ex.RetryAfterSeconds(), overLimitError(ex)), true
		}
		return answer{}, false
	}
	var ex *limits.Exceeded
	var err error
	if lim != nil {
		ex, err = g.x.Enforcer.AdmitHandle(ctx, lim)
	} else {
		ex, err = g.x.Enforcer.Admit(ctx, subject)
	}
	if errors.Is(err, limits.ErrUnavailable) {
		g.x.Refused(app.RefusedUnavailable, subject, nil)
		return refusal(req, http.StatusServiceUnavailable, 1, jsonrpc.NewError(CodeLimitsUnavailable,
			"Limits cannot be checked right now (their store is down); retry shortly")), true
	}
	if err != nil {
		h.rlog.warn(logLimitsFailed, "checking limits failed", append(rt.logFields(), zap.Error(err))...)
		return answer{}, false
	}
	if ex == nil {
		return answer{}, false
	}
	reason := app.RefusedRate
	a = refusal(req, http.StatusTooManyRequests, ex.RetryAfterSeconds(), overLimitError(ex))
	if ex.Daily() {
		reason = app.RefusedDaily
		if ex.Scope == limits.ScopeProject {
			if ph, ok := g.x.Project(g.project); ok {
				// Once the refusal is sent: the suspension closes the
				// project's WebSockets, and the client must first learn
				// why its call was refused.
				p := ph.Project
				a.after = func() { g.x.Suspend(p, ex) }
			}
		}
	}
	g.x.Refused(reason, subject, ex)
	return a, true
}

func scopeOf(s limits.Subject) string {
	if s.Project != "" {
		return limits.ScopeProject
	}
	return limits.ScopeIP
}

// refusal is the answer to a refused call, with the HTTP status and
// Retry-After a single HTTP call gets.
func refusal(req *jsonrpc.Request, status int, retryAfter int64, e *jsonrpc.Error) answer {
	a := reply(req, nil, e)
	a.status, a.retryAfter = status, retryAfter
	a.outcome = outRefused
	if status == http.StatusTooManyRequests {
		a.outcome = outLimited
	}
	return a
}

// refusalStatus is the HTTP status of a POST whose every answered call
// was refused (the highest Retry-After with it), or 0 when any was
// served: a batch with served calls is a 200.
func refusalStatus(answers []answer) (status int, retryAfter int64) {
	for _, a := range answers {
		if a.reply == nil {
			continue
		}
		if a.status == 0 {
			return 0, 0
		}
		if status == 0 || a.status == http.StatusTooManyRequests {
			status = a.status
		}
		retryAfter = max(retryAfter, a.retryAfter)
	}
	return status, retryAfter
}

// writeRefusal answers a POST whose calls were all refused.
func writeRefusal(w http.ResponseWriter, status int, retryAfter int64, body []byte) error {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	if retryAfter > 0 {
		hdr.Set("Retry-After", strconv.FormatInt(retryAfter, 10))
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}

// subscriptionCount is how many subscriptions the client holds or is
// opening.
func (s *wsSession) subscriptionCount() int { return int(s.held.Load()) }

// noteHeldLocked mirrors the count in held, which the per-IP bound sums
// over every connection of an IP on each subscribe without taking each
// session's lock. The caller holds s.mu.
func (s *wsSession) noteHeldLocked() { s.held.Store(int32(len(s.subs) + s.reserved)) }

// watchProjects closes the WebSocket connections of a project that is
// disabled, suspended or deleted, on whichever gateway the change was
// made: the store tells every instance within a second.
func (h *Handler) watchProjects() {
	x := h.app.Access()
	if x == nil {
		return
	}
	h.unwatch = x.Store().Watch(func(c projects.Change) {
		h.projectCORS.forget(c.ID)
		if c.Project != nil && c.Project.StatusAt(time.Now()) == projects.Active {
			// Connections admitted under other chains, origins, networks or
			// method rules end: reconnecting applies the new ones.
			rules := restrictionsKey(c.Project)
			go h.closeSessions(c.ID, "project restrictions changed", func(g *grant) bool { return g.rules != rules })
			return
		}
		reason := "project deleted"
		if c.Project != nil {
			reason = "project " + string(c.Project.StatusAt(time.Now()))
		}
		// Watch callbacks must not block: closing takes locks.
		go h.closeSessions(c.ID, reason, nil)
	})
}

// closeSessions closes the WebSockets of project id (those whose grant
// match selects, or all when match is nil) with 1008 and reason.
func (h *Handler) closeSessions(id, reason string, match func(*grant) bool) {
	registry.mu.Lock()
	var victims []*wsSession
	for s := range h.sessions.all {
		if rt := s.route(); rt.project == id && (match == nil || rt.acc != nil && match(rt.acc)) {
			victims = append(victims, s)
		}
	}
	registry.mu.Unlock()
	for _, s := range victims {
		s.closeWith(closeSlowConsumer, reason) // 1008, policy violation
	}
	if len(victims) > 0 {
		if ce := h.log.Check(zap.InfoLevel, "closed the websockets of a project"); ce != nil {
			ce.Write(zap.String("project", id), zap.String("reason", reason), zap.Int("connections", len(victims)))
		}
	}
}

// isErrorReply reports whether a reply built by jsonrpc.AppendError or
// AppendResult for id is an error: the member right after the id says,
// without scanning the (possibly large) result.
func isErrorReply(b []byte, id []byte) bool {
	rest, ok := bytes.CutPrefix(b, []byte(`{"jsonrpc":"2.0","id":`))
	if !ok {
		return false
	}
	if len(id) == 0 {
		id = []byte("null")
	}
	rest, ok = bytes.CutPrefix(rest, id)
	return ok && bytes.HasPrefix(rest, []byte(`,"error":`))
}

// ipLimitKey is what per-IP limits count a client address under: an IPv4
// address as it is, an IPv6 address by its /64, which one subscriber
// usually holds whole (a client hopping addresses inside it would
// otherwise get a fresh allowance each time).
func ipLimitKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a = a.Unmap(); a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

// restrictionsKey sums up what a project restricts its clients to: two
// versions of a project with the same key admit the same connections.
func restrictionsKey(p *projects.Project) string {
	var b strings.Builder
	for _, list := range [][]string{p.Chains, p.Origins, p.Networks, p.Allow, p.Deny} {
		b.WriteString(strings.Join(list, "\x00"))
		b.WriteByte('\x01')
	}
	return b.String()
}
