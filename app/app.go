// Package app is the `elara` Caddy app: it owns what outlives one request
// and one config reload, namely the chains, their upstream node
// connections and the background loops that serve them.
package app

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/elara-gateway/elara/cacher"
	"github.com/elara-gateway/elara/internal/multiwrite"
	"github.com/elara-gateway/elara/jobs"
	"github.com/elara-gateway/elara/limits"
	"github.com/elara-gateway/elara/matcher"
	"github.com/elara-gateway/elara/suber"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the elara app. It holds the chains the gateway serves and keeps
// their upstream connections across config reloads: a reload that keeps a
// node keeps its connections.
type App struct {
	// Chains maps a chain name, the first path segment clients use
	// (`/polkadot`), to the nodes that serve it.
	Chains map[string]*ChainConfig `json:"chains,omitempty"`
	// Redis is the app's Redis connection, one client shared by the
	// cache's redis store, projects and limits.
	Redis *RedisConfig `json:"redis,omitempty"`
	// Cache configures the response cache of every chain. Default: on,
	// in memory, with every default of CacheConfig; {"disabled": true}
	// turns it off.
	Cache *CacheConfig `json:"cache,omitempty"`
	// Plans are named limit sets that projects (and public access) use.
	Plans []limits.Plan `json:"plans,omitempty"`
	// Projects turns on projects and limits. Default: off, every path is
	// served without limits.
	Projects *ProjectsConfig `json:"projects,omitempty"`
	// Stats configures statistics. Default: on, embedded (or on the
	// app's Redis), with every default of StatsConfig; {"disabled": true}
	// turns them off.
	Stats *StatsConfig `json:"stats,omitempty"`

	cache           *cacheState
	redis           redis.UniversalClient
	redisKey        string
	access          *Access
	accessKey       string
	stats           *statsShared
	statsKey        string
	statsCurrent    *jobs.Reader
	projectStoreKey string
	chains          map[string]*Chain
	// applies are what this config sets on each of its chains when it
	// starts (chain_apply.go).
	applies map[string]*chainApply
	// nodeLabels name each chain's nodes in metrics, in config order.
	nodeLabels map[string][]string
	nodeKeys   []string
	keys       []string
	log        *zap.Logger
}

// ChainConfig configures one chain.
type ChainConfig struct {
	// Nodes are the chain's upstream nodes. Calls are spread over them.
	Nodes []*NodeConfig `json:"nodes,omitempty"`
	// RequestTimeout bounds every upstream call made for a client.
	// Default: 10s.
	RequestTimeout caddy.Duration `json:"request_timeout,omitempty"`
	// MaxLag is how many blocks a node's best head may trail the best
	// ready node's before it stops serving users. Default: 5.
	MaxLag *uint64 `json:"max_lag,omitempty"`
	// HeadTimeout is how long a node may go without a new head while
	// other nodes of the chain keep seeing them, before it stops serving
	// users. "0" disables the rule. Default: 1m.
	HeadTimeout *caddy.Duration `json:"head_timeout,omitempty"`
	// HealthInterval is how often each node's system_health is polled.
	// Default: 5s.
	HealthInterval caddy.Duration `json:"health_interval,omitempty"`
	// SubscriptionGrace is how long a shared upstream subscription
	// outlives its last client, to be reused if one comes back.
	// Default: 30s.
	SubscriptionGrace *caddy.Duration `json:"subscription_grace,omitempty"`
	// MaxUpstreamCalls bounds the client calls at the chain's nodes at
	// once; more wait, admitted in turn per client IP and connection.
	// Default: 128.
	MaxUpstreamCalls int `json:"max_upstream_calls,omitempty"`
	// MaxPendingCalls bounds the client calls waiting for or at the
	// chain's nodes; a call over it is refused with -32029 naming the
	// bound and reaches no node. Default: 8192.
	MaxPendingCalls int `json:"max_pending_calls,omitempty"`
	// MaxSharedSubscriptions bounds the upstream subscriptions the chain
	// holds for its clients (shared ones count once); a subscribe while
	// it is reached is refused with -32029 naming the bound. Default: 4096.
	MaxSharedSubscriptions int `json:"max_shared_subscriptions,omitempty"`
}

// NodeConfig configures one upstream node.
type NodeConfig struct {
	// URL is the node's ws://, wss://, http:// or https:// address.
	// Placeholders such as {env.NODE_URL} are replaced. HTTP nodes cannot
	// carry subscriptions.
	URL string `json:"url"`
	// Pool is how many WebSocket connections to keep to the node. Default: 4.
	Pool int `json:"pool,omitempty"`
	// ExtraConnections bounds the connections opened beyond Pool when the
	// pool's connections hold all the subscriptions a node allows one
	// connection (polkadot-sdk: 1024, and 4 chainHead follows); they close
	// again after 30s without a subscription. 0 opens none. Default: 16.
	ExtraConnections *int `json:"extra_connections,omitempty"`
	// DialTimeout bounds one connection attempt. Default: 5s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`
	// PingInterval is how often the connection is pinged; one silent for
	// two intervals is replaced. Default: 20s.
	PingInterval caddy.Duration `json:"ping_interval,omitempty"`
	// MaxMessageSize is the largest message accepted from the node, in
	// bytes. Default: 64 MiB (metadata replies are several MiB).
	MaxMessageSize int64 `json:"max_message_size,omitempty"`
	// TLS configures wss:// and https:// connections to the node: trusted
	// CAs, a client certificate, the server name. Default: the system's
	// roots, the URL's host.
	TLS *NodeTLS `json:"tls,omitempty"`
	// Headers are sent on every WebSocket handshake and HTTP call to the
	// node, e.g. a provider's API key. Values may be placeholders such as
	// {env.API_KEY}; they are never logged.
	Headers http.Header `json:"headers,omitempty"`
}

// Defaults for chain options left unset.
const (
	DefaultRequestTimeout    = 10 * time.Second
	DefaultSubscriptionGrace = 30 * time.Second
)

// Chain is a chain as handlers use it. It is kept across every reload
// that keeps its name; the config in force sets its nodes, options and
// cache (chain_apply.go).
type Chain struct {
	Name     string
	Upstream *suber.Group
	Matcher  *matcher.Matcher
	// timeout is the request timeout in force.
	timeout atomic.Int64
	// cache, when set, answers the calls it can before they reach a node.
	cache atomic.Pointer[cacher.Cache]
	// bounds are the totals of the running config (bounds.go).
	bounds atomic.Pointer[ChainBounds]

	mu sync.Mutex
	// inForce are the started configs' settings, oldest first; the last
	// one is in force.
	inForce []*chainApply
	// held are the nodePool keys of the nodes the chain holds a reference
	// on: those in force and those draining (chain_apply.go).
	held    map[*suber.Node]string
	drains  sync.WaitGroup
	closing chan struct{}
}

// RequestTimeout bounds every upstream call made for a client.
func (c *Chain) RequestTimeout() time.Duration { return time.Duration(c.timeout.Load()) }

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "elara",
		New: func() caddy.Module { return new(App) },
	}
}

// nodes and chains shared by every loaded config, so that a reload reuses
// connections and subscriptions instead of reopening them.
var (
	nodePool  = caddy.NewUsagePool()
	chainPool = caddy.NewUsagePool()
)

type destructibleNode struct{ *suber.Node }

func (d destructibleNode) Destruct() error { return d.Node.Close() }

type destructibleChain struct{ *Chain }

func (d destructibleChain) Destruct() error {
	d.Matcher.Close()
	d.Upstream.Close()
	d.releaseNodes()
	return nil
}

// Provision builds the chains, reusing nodes already connected by an
// earlier config.
func (a *App) Provision(ctx caddy.Context) error {
	a.log = ctx.Logger()
	a.chains = make(map[string]*Chain, len(a.Chains))
	a.applies = make(map[string]*chainApply, len(a.Chains))
	a.nodeLabels = make(map[string][]string, len(a.Chains))
	if err := a.registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := a.provisionRedis(); err != nil {
		return err
	}
	if err := a.provisionCache(ctx); err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	names := make([]string, 0, len(a.Chains))
	for name := range a.Chains {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		cc := a.Chains[name]
		if cc == nil {
			return fmt.Errorf("chain %s: no configuration", name)
		}
		if err := a.provisionChain(name, cc, repl); err != nil {
			return fmt.Errorf("chain %s: %w", name, err)
		}
	}
	if err := a.provisionAccess(ctx); err != nil {
		return err
	}
	return a.provisionStats(ctx)
}

func (a *App) provisionChain(name string, cc *ChainConfig, repl *caddy.Replacer) error {
	var nodes []*suber.Node
	var keys []string
	urls := make([]string, len(cc.Nodes))
	for i, nc := range cc.Nodes {
		urls[i] = repl.ReplaceKnown(nc.URL, "")
		if urls[i] == "" {
			return fmt.Errorf("node %d: empty url (unset environment variable?)", i)
		}
	}
	labels := nodeLabels(urls)
	a.nodeLabels[name] = labels
	for i, nc := range cc.Nodes {
		url := urls[i]
		scheme, _, _ := strings.Cut(url, "://")
		tr, err := nc.provisionTransport(strings.ToLower(scheme), repl)
		if err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		opts := suber.Options{
			Observer:       defaultUpstreamMetrics().observer(name, labels[i]),
			PoolSize:       nc.Pool,
			DialTimeout:    time.Duration(nc.DialTimeout),
			PingInterval:   time.Duration(nc.PingInterval),
			ReadLimit:      nc.MaxMessageSize,
			HealthInterval: time.Duration(cc.HealthInterval),
			TLS:            tr.tls,
			Header:         tr.header,
			Logger:         a.log.With(zap.String("chain", name)),
		}
		opts.MaxExtraConnections = extraConnections(nc.ExtraConnections)
		key, err := poolKey(nodeKey{Chain: name, Label: labels[i], URL: url, Node: nc.withDefaults(),
			HealthInterval: cc.healthInterval(), Transport: tr.fingerprint})
		if err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		val, _, err := nodePool.LoadOrNew(key, func() (caddy.Destructor, error) {
			n, err := suber.NewNode(url, opts)
			if err != nil {
				return nil, err
			}
			return destructibleNode{n}, nil
		})
		if err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		a.nodeKeys = append(a.nodeKeys, key)
		node := val.(destructibleNode).Node
		if tr.tls != nil && tr.tls.InsecureSkipVerify {
			a.log.Warn("TLS certificate of the node is not verified (tls_insecure_skip_verify): for tests only",
				zap.String("chain", name), zap.String("node", node.String()))
		}
		nodes = append(nodes, node)
		keys = append(keys, key)
	}
	set := cc.settings()
	ckey, err := poolKey(chainKey{Name: name})
	if err != nil {
		return err
	}
	val, loaded, err := chainPool.LoadOrNew(ckey, func() (caddy.Destructor, error) {
		g := suber.NewGroup(nodes, set.Readiness)
		c := &Chain{
			Name:     name,
			Upstream: g,
			held:     make(map[*suber.Node]string),
			closing:  make(chan struct{}),
			Matcher: matcher.New(g, matcher.Options{
				Grace:       set.Grace,
				CallTimeout: set.RequestTimeout,
				Logger:      a.log.With(zap.String("chain", name)),
			}),
		}
		c.timeout.Store(int64(set.RequestTimeout))
		c.setBounds(set.Bounds)
		return destructibleChain{c}, nil
	})
	if err != nil {
		return err
	}
	a.keys = append(a.keys, ckey)
	c := val.(destructibleChain).Chain
	a.chains[name] = c
	x := &chainApply{settings: set, nodes: nodes, nodeKeys: keys}
	a.applies[name] = x
	if x.cache, err = a.provisionChainCache(c, set.RequestTimeout); err != nil {
		return err
	}
	if !loaded {
		// A chain new to this config serves with it from the start; a
		// kept one changes when this config starts.
		c.setCache(x.cache)
	}
	return nil
}

// Validate checks the configuration.
func (a *App) Validate() error {
	for name, cc := range a.Chains {
		if !ValidChainName(name) {
			return fmt.Errorf("chain %q: names are letters, digits, '-' and '_'", name)
		}
		if len(cc.Nodes) == 0 {
			return fmt.Errorf("chain %s: at least one node is required", name)
		}
		if err := cc.checkBounds(); err != nil {
			return fmt.Errorf("chain %s: %w", name, err)
		}
		if err := cc.checkValues(); err != nil {
			return fmt.Errorf("chain %s: %w", name, err)
		}
		for i, n := range cc.Nodes {
			if n.Pool < 0 || n.Pool > 256 {
				return fmt.Errorf("chain %s node %d: pool must be between 1 and 256", name, i)
			}
			if x := n.ExtraConnections; x != nil && (*x < 0 || *x > 256) {
				return fmt.Errorf("chain %s node %d: extra_connections must be between 0 and 256", name, i)
			}
			if err := n.checkTransport(); err != nil {
				return fmt.Errorf("chain %s node %d: %w", name, i, err)
			}
		}
	}
	if err := a.validateCache(); err != nil {
		return err
	}
	if err := a.Stats.validate(); err != nil {
		return err
	}
	return a.validateAccess()
}

// Start connects every node. Nodes shared with the previous config are
// already connected; starting them again does nothing.
func (a *App) Start() error {
	for _, x := range a.applies {
		for _, n := range x.nodes {
			n.Start()
		}
	}
	a.startCache()
	for _, name := range a.ChainNames() {
		a.chains[name].apply(a.applies[name])
	}
	if err := a.startAccess(); err != nil {
		return err
	}
	a.startStats()
	// batched_writes: whether a fan-out's writes go to the kernel 64 at a
	// time (io_uring) or one write(2) each (io_uring refused here).
	a.log.Info("elara started", zap.Int("chains", len(a.chains)), zap.Bool("batched_writes", multiwrite.Batched()))
	return nil
}

// Stop does not close shared connections: the next config may keep them.
// Cleanup releases this config's hold on them. It stops the cache loops
// unless the next config already started them too.
func (a *App) Stop() error {
	a.stopCache()
	a.stopAccess()
	a.stopStats()
	return nil
}

// Cleanup releases the chains and nodes; the last config to let go of one
// closes it.
func (a *App) Cleanup() error {
	// First, while its nodes and caches are held: a config that started
	// but is cleaned up first (another app failed to start) hands the
	// chains back to the config still running.
	for name, x := range a.applies {
		a.chains[name].release(x)
	}
	a.cleanupCache()
	for _, k := range a.keys {
		_, _ = chainPool.Delete(k)
	}
	for _, k := range a.nodeKeys {
		_, _ = nodePool.Delete(k)
	}
	a.keys, a.nodeKeys = nil, nil
	a.cleanupStats()
	a.cleanupAccess()
	a.cleanupRedis()
	return nil
}

// Chain returns the named chain, or nil.
func (a *App) Chain(name string) *Chain { return a.chains[name] }

// ChainNames lists the configured chains, sorted.
func (a *App) ChainNames() []string {
	names := make([]string, 0, len(a.chains))
	for n := range a.chains {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ValidChainName reports whether s may name a chain: it is the first
// path segment clients use, so letters, digits, '-' and '_', at most 64.
func ValidChainName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// checkNodeURL rejects a node URL whose scheme the gateway cannot serve.
// A URL whose scheme is a placeholder is checked once it is replaced, when
// the node is provisioned. Errors name the scheme only: node URLs often
// carry API keys.
func checkNodeURL(raw string) error {
	scheme, _, ok := strings.Cut(raw, "://")
	if strings.Contains(scheme, "{") {
		return nil
	}
	if !ok {
		return fmt.Errorf("node url must start with ws://, wss://, http:// or https://")
	}
	if !suber.ValidScheme(strings.ToLower(scheme)) {
		return fmt.Errorf("node url scheme %q: must be ws, wss, http or https", scheme)
	}
	return nil
}

// extraConnections maps the extra_connections setting to suber's option:
// unset is its default, 0 is none.
func extraConnections(x *int) int {
	switch {
	case x == nil:
		return 0
	case *x == 0:
		return -1
	}
	return *x
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
