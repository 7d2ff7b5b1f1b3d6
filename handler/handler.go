// Package handler is the client side of the gateway: the `elara_rpc` HTTP
// handler. It routes `/{chain}` and `/{chain}/{project}`, applies the
// method policy, and serves JSON-RPC over HTTP POST and WebSocket.
package handler

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/jsonrpc"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler serves JSON-RPC for the chains of the elara app.
type Handler struct {
	// Chains limits this handler to some of the app's chains. Default: all.
	// It is also what a reload hands the handler's WebSocket clients over
	// by: to the one elara_rpc of the new config with the same Chains.
	Chains []string `json:"chains,omitempty"`
	// Allow, when set, makes the handler allow-only: a method is served
	// only if it or one of its aliases matches one of these patterns (`*`
	// matches any run of characters). Unsafe methods are served only when
	// named exactly. Methods that end what a client started
	// (unsubscribes, unwatches, broadcast stops) are served whenever what
	// they end is.
	Allow []string `json:"allow,omitempty"`
	// Deny lists further methods or patterns never served; an entry
	// covers the method's aliases and, for a subscribe method, the
	// methods that end it. Denied methods answer exactly like unknown
	// ones (-32601).
	Deny []string `json:"deny,omitempty"`
	// MaxBatch is the most calls in one batch. Default: 100.
	MaxBatch int `json:"max_batch,omitempty"`
	// MaxRequestSize bounds an HTTP body or a WebSocket message from a
	// client, in bytes. Default: 8 MiB, room for a runtime upgrade extrinsic.
	MaxRequestSize int64 `json:"max_request_size,omitempty"`
	// MaxSubscriptions bounds open subscriptions per WebSocket connection.
	// Default: 1024.
	MaxSubscriptions int `json:"max_subscriptions,omitempty"`
	// PingInterval is how often WebSocket clients are pinged, give or
	// take a tenth so that clients that connected together are not pinged
	// together; a client silent for two intervals is disconnected.
	// Default: 30s.
	PingInterval caddy.Duration `json:"ping_interval,omitempty"`
	// SendQueue is how many messages may wait for one WebSocket client; a
	// client further behind is disconnected (close code 1008). Default: 4096.
	SendQueue int `json:"send_queue,omitempty"`
	// SendQueueBytes bounds the bytes waiting for one WebSocket client; a
	// client further behind is disconnected (close code 1008). One
	// message larger than the bound is still sent when nothing else
	// waits. Default: 16 MiB; at least 64 KiB.
	SendQueueBytes int64 `json:"send_queue_bytes,omitempty"`
	// WriteTimeout bounds one write to a WebSocket client; a client that
	// accepts nothing for this long is disconnected. Default: 10s.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// Origins lists the browser origins (`scheme://host[:port]`) that may
	// call this handler. Default: every origin, answered with
	// `Access-Control-Allow-Origin: *`. With a list, a request, preflight
	// or WebSocket upgrade whose Origin header is not listed is refused
	// with 403; requests without an Origin header (non-browser clients)
	// are always served.
	Origins []string `json:"origins,omitempty"`
	// WSCompression negotiates WebSocket permessage-deflate with clients
	// that offer it (browsers and most libraries do); frames under 1 KiB
	// are sent uncompressed. Default: on.
	WSCompression *bool `json:"ws_compression,omitempty"`
	// MaxCallsInFlight bounds the calls of one WebSocket connection (or
	// HTTP request) at the nodes at once; further calls wait their turn,
	// within their request_timeout. The chain's nodes serve client IPs in
	// turn, then each IP's connections, so no client can delay another by
	// flooding. Default: 32.
	MaxCallsInFlight int `json:"max_calls_in_flight,omitempty"`
	// MaxConnectionsPerIP bounds the open WebSocket connections of one
	// client IP (Caddy's client IP, which honours trusted_proxies; IPv6
	// by /64), over every handler and chain; an upgrade over it is
	// refused with 429, Retry-After and a -32029 body. It applies to
	// loopback and to projects too. Default: 1024.
	MaxConnectionsPerIP int `json:"max_connections_per_ip,omitempty"`
	// MaxSubscriptionsPerIP bounds the subscriptions the WebSocket
	// connections of one client IP hold or are opening at once; a
	// subscribe over it gets a -32029 error naming the bound and the
	// connection stays open. Default: 2048.
	MaxSubscriptionsPerIP int `json:"max_subscriptions_per_ip,omitempty"`

	app    *app.App
	policy *Policy
	cors   *CORS
	// projectCORS holds the CORS of projects that list origins.
	projectCORS *projectCORSCache
	chains      map[string]bool
	log         *zap.Logger
	// rlog carries the warnings that a misbehaving client or a stuck node
	// could otherwise repeat thousands of times a second.
	rlog  *rateLog
	stats map[string]*chainStats

	upgrader *websocket.Upgrader
	// id and sessions: see sessions.go.
	id       string
	twins    *twins
	sessions *sessionSet
	// unwatch stops following project changes.
	unwatch func()
}

// Defaults for fields left zero.
const (
	DefaultMaxBatch         = 100
	DefaultMaxRequestSize   = 8 << 20
	DefaultMaxSubscriptions = 1024
	DefaultPingInterval     = 30 * time.Second
	DefaultSendQueue        = 4096
	DefaultSendQueueBytes   = 16 << 20
	DefaultWriteTimeout     = 10 * time.Second
	// maxDepth bounds JSON nesting; Substrate params are a few levels deep.
	maxDepth = 64
)

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.elara_rpc",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults and binds the handler to the elara app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.log = ctx.Logger()
	h.rlog = newRateLog(h.log, logEvery, nil)
	if h.MaxBatch == 0 {
		h.MaxBatch = DefaultMaxBatch
	}
	if h.MaxRequestSize == 0 {
		h.MaxRequestSize = DefaultMaxRequestSize
	}
	if h.MaxSubscriptions == 0 {
		h.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if h.PingInterval == 0 {
		h.PingInterval = caddy.Duration(DefaultPingInterval)
	}
	if h.SendQueue == 0 {
		h.SendQueue = DefaultSendQueue
	}
	if h.SendQueueBytes == 0 {
		h.SendQueueBytes = DefaultSendQueueBytes
	}
	if h.WriteTimeout == 0 {
		h.WriteTimeout = caddy.Duration(DefaultWriteTimeout)
	}
	h.fairDefaults()
	p, err := NewPolicy(h.Allow, h.Deny)
	if err != nil {
		return err
	}
	h.policy = p
	h.projectCORS = new(projectCORSCache)
	if h.cors, err = NewCORS(h.Origins); err != nil {
		return fmt.Errorf("origins: %w", err)
	}
	appIface, err := ctx.App("elara")
	if err != nil {
		return fmt.Errorf("loading elara app: %w", err)
	}
	h.app = appIface.(*app.App)
	if len(h.app.ChainNames()) == 0 {
		h.log.Warn("elara_rpc has no chain to serve: configure chains in the elara global option")
	}
	if len(h.Chains) > 0 {
		h.chains = make(map[string]bool, len(h.Chains))
		for _, c := range h.Chains {
			h.chains[c] = true
		}
	}
	if h.WSCompression == nil {
		on := true
		h.WSCompression = &on
	}
	h.upgrader = h.newUpgrader()
	m := defaultClientMetrics()
	if reg := ctx.GetMetricsRegistry(); reg != nil {
		if err := m.register(reg); err != nil {
			return fmt.Errorf("elara_rpc metrics: %w", err)
		}
	}
	h.stats = make(map[string]*chainStats)
	for _, name := range h.app.ChainNames() {
		h.stats[name] = statsFor(m, name)
	}
	if err := h.register(); err != nil {
		return err
	}
	h.watchProjects()
	return nil
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	if h.MaxBatch < 1 {
		return fmt.Errorf("max_batch must be at least 1")
	}
	if h.MaxRequestSize < 1024 {
		return fmt.Errorf("max_request_size must be at least 1KiB")
	}
	if h.PingInterval <= 0 || h.WriteTimeout <= 0 {
		return fmt.Errorf("ping_interval and write_timeout must be positive")
	}
	if h.MaxSubscriptions < 1 || h.SendQueue < 16 {
		return fmt.Errorf("max_subscriptions must be at least 1 and send_queue at least 16")
	}
	if h.SendQueueBytes < 64<<10 {
		return fmt.Errorf("send_queue_bytes must be at least 64KiB")
	}
	if err := h.validateFair(); err != nil {
		return err
	}
	for _, c := range h.Chains {
		if h.app.Chain(c) == nil {
			return fmt.Errorf("chain %q is not configured in the elara app (configured: %s)", c, strings.Join(h.app.ChainNames(), ", "))
		}
	}
	return nil
}

// Cleanup hands this handler's WebSocket sessions to the handler that
// replaces it in the new config, or closes them (see sessions.go):
// hijacked connections are invisible to Caddy's own shutdown.
func (h *Handler) Cleanup() error {
	if h.unwatch != nil {
		h.unwatch()
	}
	h.releaseSessions()
	return nil
}

// ServeHTTP routes a request to its chain and serves it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	rt, rpcErr, status := h.route(r.URL.Path)
	// Every reply carries the CORS headers, errors included, so a browser
	// shows the dApp the JSON-RPC error instead of a bare CORS failure.
	// A project that lists origins decides them for its paths.
	cors, projectCORS := h.corsFor(&rt)
	origin := r.Header.Get("Origin")
	cors.SetHeaders(w.Header(), origin)
	if r.Method == http.MethodOptions {
		// Preflights are answered on any path: the request that follows
		// then gets its own answer (e.g. 404 unknown chain) readably.
		return cors.Preflight(w, r)
	}
	if !cors.Allows(origin) {
		if projectCORS {
			return h.refuseProjectOrigin(w, r, &rt, origin)
		}
		if ce := h.log.Check(zap.DebugLevel, "origin refused"); ce != nil {
			ce.Write(zap.String("origin", truncateOrigin(origin)), zap.String("path", r.URL.Path))
		}
		return refuseOrigin(w, r)
	}
	if rpcErr != nil {
		return writeError(w, status, rpcErr)
	}
	rt.clientIP = clientIP(r)
	// Access logs and later handlers see what the request named, e.g.
	// `log_append project {http.vars.elara.project}`.
	caddyhttp.SetVar(r.Context(), VarChain, rt.chain.Name)
	if rt.project != "" {
		caddyhttp.SetVar(r.Context(), VarProject, rt.project)
	}
	if rt.health {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD, OPTIONS")
			return writeError(w, http.StatusMethodNotAllowed, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "The health endpoint answers GET"))
		}
		return serveHealth(w, r, rt.chain)
	}
	if ok, err := h.admitRequest(w, r, &rt); !ok {
		return err
	}
	r = h.withFairClient(r, rt)
	if isWebSocketUpgrade(r) {
		release, ok, err := h.admitIPConnection(w, &rt)
		if !ok {
			rt.acc.giveBack()
			return err
		}
		// The session gives the connection slots back when it ends.
		return h.serveWebSocket(w, r, rt, release)
	}
	if rt.acc != nil && rt.acc.release != nil {
		defer rt.acc.release()
	}
	switch r.Method {
	case http.MethodPost:
		return h.servePost(w, r, rt)
	default:
		// GET is served as a WebSocket upgrade only.
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		return writeError(w, http.StatusMethodNotAllowed, jsonrpc.NewError(jsonrpc.CodeInvalidRequest,
			"Send JSON-RPC with HTTP POST, or open a WebSocket on this path"))
	}
}

// Names of the request variables the handler sets, read with the
// placeholders {http.vars.elara.chain} and {http.vars.elara.project}.
const (
	VarChain   = "elara.chain"
	VarProject = "elara.project"
)

// route is what a request path names.
type route struct {
	chain   *app.Chain
	project string
	health  bool
	// clientIP is the client's address as Caddy sees it, for log lines.
	clientIP string
	// stats counts the chain's calls for the metrics.
	stats *chainStats
	// acc is what the access checks granted; nil without projects.
	acc *grant
	// ip counts a WebSocket's client IP against the per-IP bounds.
	ip *ipEntry
}

// logFields name the route on the handler's log lines.
func (rt route) logFields() []zap.Field {
	fields := []zap.Field{zap.String("chain", rt.chain.Name)}
	if rt.project != "" {
		fields = append(fields, zap.String("project", rt.project))
	}
	if rt.clientIP != "" {
		fields = append(fields, zap.String("client_ip", rt.clientIP))
	}
	return fields
}

func (h *Handler) route(path string) (route, *jsonrpc.Error, int) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	name := parts[0]
	if name == "" || (h.chains != nil && !h.chains[name]) {
		return route{}, h.unknownChain(name), http.StatusNotFound
	}
	c := h.app.Chain(name)
	if c == nil {
		return route{}, h.unknownChain(name), http.StatusNotFound
	}
	rt := route{chain: c, stats: h.stats[name]}
	switch len(parts) {
	case 1:
	case 2:
		if parts[1] == "health" {
			rt.health = true
			break
		}
		if !validProject(parts[1]) {
			return route{}, jsonrpc.NewError(jsonrpc.CodeInvalidRequest,
				"Unknown path: a project id is 32 hexadecimal characters"), http.StatusNotFound
		}
		rt.project = strings.ToLower(parts[1])
	default:
		return route{}, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "Unknown path: use /{chain} or /{chain}/{project}"), http.StatusNotFound
	}
	return rt, nil, 0
}

// unknownChain tells a client that reached no chain which paths it can use,
// so that no path the handler sees answers an empty page.
func (h *Handler) unknownChain(name string) *jsonrpc.Error {
	var paths []string
	for _, c := range h.app.ChainNames() {
		if h.chains == nil || h.chains[c] {
			paths = append(paths, "/"+c)
		}
	}
	served := "; this gateway serves " + strings.Join(paths, ", ")
	if len(paths) == 0 {
		served = "; this gateway serves no chain"
	}
	if name == "" {
		return jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "No chain in the path"+served)
	}
	if len(name) > 64 {
		name = name[:64] + "…"
	}
	return jsonrpc.NewError(jsonrpc.CodeInvalidRequest, fmt.Sprintf("Unknown chain %q", name)+served)
}

func validProject(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func writeError(w http.ResponseWriter, status int, e *jsonrpc.Error) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err := w.Write(jsonrpc.AppendError(nil, nil, e))
	return err
}

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
)
