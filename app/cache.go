package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/elara-gateway/elara/cacher"
	"github.com/elara-gateway/elara/suber"
)

// CacheConfig configures the response cache of every chain. Without it
// the cache is on, in memory, with every default; Disabled turns it off.
// See UnmarshalCaddyfile for the Caddyfile form.
type CacheConfig struct {
	// Disabled turns the cache off: every call goes to a node. It takes
	// no other option. Caddyfile: `cache off`.
	Disabled bool `json:"disabled,omitempty"`
	// Store is where entries live: "memory" (default), in this process, or
	// "redis", shared by every gateway using the app's Redis and Prefix.
	Store string `json:"store,omitempty"`
	// MaxSize bounds the memory store, in bytes. Default: 64 MiB.
	MaxSize int64 `json:"max_size,omitempty"`
	// Prefix starts every Redis key. Default: "elara:".
	Prefix string `json:"prefix,omitempty"`
	// RetryAfter is how long a failed Redis is left alone (calls go to
	// nodes) before one call probes it again. Default: 2s.
	RetryAfter caddy.Duration `json:"retry_after,omitempty"`
	// MaxItemSize is the largest value stored in Redis, in bytes.
	// Default: 16 MiB.
	MaxItemSize int64 `json:"max_item_size,omitempty"`
	// Pin is the head that calls without a block hash are pinned to:
	// "best" (default; answers as a node gives them) or "finalized"
	// (never from a block that may be reverted, a few blocks behind).
	Pin string `json:"pin,omitempty"`
	// Refresh is the suducer's period. Latest-block entries follow new
	// heads from subscriptions; a head whose subscription has been silent
	// for two periods (or that has none) is polled, and entries not
	// refreshed or confirmed for 3 periods are bypassed. Default: 5s.
	Refresh caddy.Duration `json:"refresh,omitempty"`
	// MaxStale bounds the age of a latest-block answer: past it (and past
	// 3 refresh periods, whichever is shorter) calls go to a node until
	// the suducer catches up. Default: 3 refresh periods.
	MaxStale caddy.Duration `json:"max_stale,omitempty"`
	// ImmutableTTL is the life of entries keyed by a block hash or a
	// finalized block number. Default: 24h. With Redis, also give Redis a
	// maxmemory and an LRU eviction policy: busy chains fill it fast.
	ImmutableTTL caddy.Duration `json:"immutable_ttl,omitempty"`
	// PinnedTTL is the life of entries filled for calls without a block
	// hash (pinned to the head): few ask for them once the head moves on.
	// Default: 1m.
	PinnedTTL caddy.Duration `json:"pinned_ttl,omitempty"`
	// ConstantTTL is the life of runtime constants (metadata, runtime
	// version, rpc_methods, system_name...), which also change with the
	// spec version. Default: 24h.
	ConstantTTL caddy.Duration `json:"constant_ttl,omitempty"`
	// Methods overrides the caching of single methods.
	Methods map[string]*MethodCacheConfig `json:"methods,omitempty"`
}

// MethodCacheConfig overrides the caching of one method.
type MethodCacheConfig struct {
	// NoCache sends every call of the method to a node.
	NoCache bool `json:"nocache,omitempty"`
	// TTL replaces the method's TTL. A method the cache does not know as
	// cacheable is cached for TTL when one is set (author_* and
	// system_accountNextIndex never are).
	TTL caddy.Duration `json:"ttl,omitempty"`
	// Share is the percentage (0-100] of the memory store that one chain's
	// entries of the method may use. Default: 25.
	Share float64 `json:"share,omitempty"`
}

// RedisConfig is the app's Redis connection: a single server, a Redis
// Cluster or a master found through Sentinels.
type RedisConfig struct {
	// Addresses are host:port pairs: the server; or seed nodes of a
	// Cluster (one is enough with Cluster set; several without it also
	// mean a Cluster); or the Sentinels when MasterName is set.
	// Placeholders such as {env.REDIS_ADDR} are replaced.
	Addresses []string `json:"addresses,omitempty"`
	// Cluster connects to a Redis Cluster, which discovers the other
	// nodes from the addresses given, even a single one. It cannot be
	// combined with MasterName.
	Cluster bool `json:"cluster,omitempty"`
	// MasterName is the name Sentinel knows the master by; set it to use
	// Sentinel: Addresses are then the Sentinels, which tell where the
	// master is (also after a failover).
	MasterName string `json:"master_name,omitempty"`
	// Username and Password authenticate (placeholders are replaced).
	// With Sentinel they are the master's.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// DB is the database number (single server and Sentinel only: a
	// Cluster has only database 0).
	DB int `json:"db,omitempty"`
	// Timeout bounds each Redis call; a slower Redis counts as down.
	// Default: 100ms.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// DialTimeout bounds connecting. Default: 1s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`
	// PoolSize is the most connections per server. Default: go-redis's
	// (10 per CPU).
	PoolSize int `json:"pool_size,omitempty"`
	// TLS connects with TLS.
	TLS bool `json:"tls,omitempty"`
}

// Cache defaults the app applies.
const (
	DefaultRedisDialTimeout = time.Second
	CacheStoreMemory        = "memory"
	CacheStoreRedis         = "redis"
)

// cacheState is what one config holds of the cache.
type cacheState struct {
	store    cacher.Store
	storeKey string
	rules    *cacher.Rules
	metrics  *cacher.Metrics
	// key joins the chain caches' keys, so a changed cache config builds
	// new caches instead of changing shared ones under traffic.
	key     string
	keys    []string
	started []*cacher.Cache
}

// Stores and per-chain caches outlive config reloads that keep them: a
// reload keeps the entries, the suducer and its subscriptions.
var (
	storePool      = caddy.NewUsagePool()
	chainCachePool = caddy.NewUsagePool()
)

type destructibleStore struct{ cacher.Store }

func (d destructibleStore) Destruct() error { return d.Close() }

type destructibleCache struct{ *cacher.Cache }

func (d destructibleCache) Destruct() error { return d.Close() }

// provisionCache builds the rules and loads the store. It runs before the
// chains are provisioned.
func (a *App) provisionCache(ctx caddy.Context) error {
	if a.Cache == nil {
		// On by default: a gateway that protects its nodes is what users
		// expect without writing a cache block.
		a.Cache = new(CacheConfig)
	}
	cc := a.Cache
	if cc.Disabled {
		return nil
	}
	if cc.Store == "" {
		cc.Store = CacheStoreMemory
	}
	if cc.Pin == "" {
		cc.Pin = "best"
	}
	if cc.Refresh <= 0 {
		cc.Refresh = caddy.Duration(cacher.DefaultRefresh)
	}
	rules, err := cacher.NewRules(cc.overrides(), time.Duration(cc.ImmutableTTL), time.Duration(cc.ConstantTTL))
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	metrics := cacher.DefaultMetrics()
	if err := metrics.Register(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("cache metrics: %w", err)
	}
	st := &cacheState{rules: rules, metrics: metrics}
	repl := caddy.NewReplacer()
	var redisCfg *RedisConfig
	if cc.Store == CacheStoreRedis {
		if a.Redis == nil {
			return fmt.Errorf("cache: store redis needs the app's redis option")
		}
		redisCfg = a.Redis.replaced(repl)
	}
	keyJSON, err := json.Marshal(struct {
		C *CacheConfig
		R *RedisConfig
	}{cc, redisCfg})
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	st.key = string(keyJSON)
	log := a.log.Named("cache")
	switch cc.Store {
	case CacheStoreMemory:
		st.storeKey, err = poolKey(struct {
			Store   string `json:"store"`
			MaxSize int64  `json:"max_size"`
		}{cc.Store, cc.MaxSize})
	case CacheStoreRedis:
		// The whole cache config: the store's options are among it.
		st.storeKey = st.key
	default:
		return fmt.Errorf("cache: unknown store %q (memory or redis)", cc.Store)
	}
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	val, _, err := storePool.LoadOrNew(st.storeKey, func() (caddy.Destructor, error) {
		if cc.Store == CacheStoreMemory {
			return destructibleStore{cacher.NewMemoryStore(cc.MaxSize, nil, metrics)}, nil
		}
		return destructibleStore{cacher.NewRedisStore(a.redis, cacher.RedisOptions{
			Prefix:      cc.Prefix,
			Timeout:     time.Duration(redisCfg.Timeout),
			RetryAfter:  time.Duration(cc.RetryAfter),
			MaxItemSize: cc.MaxItemSize,
			Logger:      log,
			Metrics:     metrics,
		})}, nil
	})
	if err != nil {
		return fmt.Errorf("cache store: %w", err)
	}
	st.store = val.(destructibleStore).Store
	a.cache = st
	return nil
}

// overrides converts the per-method configuration for the rules.
func (cc *CacheConfig) overrides() map[string]cacher.Override {
	out := make(map[string]cacher.Override, len(cc.Methods))
	for m, mc := range cc.Methods {
		if mc != nil {
			out[m] = cacher.Override{NoCache: mc.NoCache, TTL: time.Duration(mc.TTL), Share: mc.Share / 100}
		}
	}
	return out
}

// provisionChainCache loads the chain's cache for this config: the one
// the previous config used when the cache config and the request timeout
// (which bounds the cache's calls) are the same, a new one otherwise. It
// is nil when the cache is off.
func (a *App) provisionChainCache(c *Chain, timeout time.Duration) (*cacher.Cache, error) {
	if a.cache == nil {
		return nil, nil
	}
	pin := cacher.PinBest
	if a.Cache.Pin == "finalized" {
		pin = cacher.PinFinalized
	}
	key, err := poolKey(struct {
		Chain   string        `json:"chain"`
		Cache   string        `json:"cache"`
		Timeout time.Duration `json:"timeout"`
	}{c.Name, a.cache.key, timeout})
	if err != nil {
		return nil, err
	}
	val, _, err := chainCachePool.LoadOrNew(key, func() (caddy.Destructor, error) {
		cache, err := cacher.New(cacher.Options{
			Name:        c.Name,
			Upstream:    groupUpstream{c.Upstream},
			Store:       a.cache.store,
			Rules:       a.cache.rules,
			Pin:         pin,
			Refresh:     time.Duration(a.Cache.Refresh),
			MaxStale:    time.Duration(a.Cache.MaxStale),
			PinnedTTL:   time.Duration(a.Cache.PinnedTTL),
			CallTimeout: timeout,
			Logger:      a.log.Named("cache").With(zap.String("chain", c.Name)),
			Metrics:     a.cache.metrics,
		})
		if err != nil {
			return nil, err
		}
		return destructibleCache{cache}, nil
	})
	if err != nil {
		return nil, err
	}
	a.cache.keys = append(a.cache.keys, key)
	return val.(destructibleCache).Cache, nil
}

// validateCache checks the cache and Redis configuration.
func (a *App) validateCache() error {
	if r := a.Redis; r != nil {
		if err := r.validate(); err != nil {
			return err
		}
	}
	cc := a.Cache
	if cc == nil {
		return nil
	}
	if cc.Disabled {
		if !reflect.DeepEqual(*cc, CacheConfig{Disabled: true}) {
			return fmt.Errorf("cache: disabled takes no other option")
		}
		return nil
	}
	switch cc.Store {
	case "", CacheStoreMemory, CacheStoreRedis:
	default:
		return fmt.Errorf("cache: store must be memory or redis, not %q", cc.Store)
	}
	if cc.Store == CacheStoreRedis && a.Redis == nil {
		return fmt.Errorf("cache: store redis needs the app's redis option")
	}
	if cc.Pin != "" && cc.Pin != "best" && cc.Pin != "finalized" {
		return fmt.Errorf("cache: pin must be best or finalized, not %q", cc.Pin)
	}
	if cc.MaxSize < 0 || cc.MaxItemSize < 0 || cc.RetryAfter < 0 || cc.MaxStale < 0 || cc.PinnedTTL < 0 || cc.ImmutableTTL < 0 || cc.ConstantTTL < 0 {
		return fmt.Errorf("cache: sizes and durations cannot be negative")
	}
	if cc.MaxSize > 0 && cc.MaxSize < 1<<20 {
		return fmt.Errorf("cache: max_size must be at least 1MiB")
	}
	if cc.Refresh != 0 && cc.Refresh < caddy.Duration(10*time.Millisecond) {
		return fmt.Errorf("cache: refresh must be at least 10ms")
	}
	for m, mc := range cc.Methods {
		if mc != nil && (mc.Share < 0 || mc.Share > 100) {
			return fmt.Errorf("cache: method %s: share must be a percentage", m)
		}
	}
	if _, err := cacher.NewRules(cc.overrides(), 0, 0); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// startCache starts the suducer of every chain (shared ones only count
// one more user).
func (a *App) startCache() {
	if a.cache == nil {
		return
	}
	for _, name := range a.ChainNames() {
		if c := a.applies[name].cache; c != nil {
			c.Start()
			a.cache.started = append(a.cache.started, c)
		}
	}
}

// stopCache undoes startCache; the last config to stop a chain's suducer
// stops its loops and waits for them.
func (a *App) stopCache() {
	if a.cache == nil {
		return
	}
	for _, c := range a.cache.started {
		c.Stop()
	}
	a.cache.started = nil
}

// cleanupCache releases this config's hold on the caches and the store.
func (a *App) cleanupCache() {
	if a.cache == nil {
		return
	}
	for _, k := range a.cache.keys {
		_, _ = chainCachePool.Delete(k)
	}
	if a.cache.storeKey != "" {
		_, _ = storePool.Delete(a.cache.storeKey)
	}
	a.cache = nil
}

// groupUpstream adapts a chain's node group to what the cache needs.
type groupUpstream struct{ g *suber.Group }

var _ cacher.NodeUpstream = groupUpstream{}

func (u groupUpstream) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	return u.g.Call(ctx, method, params)
}

// CallFrom says which node answered, for the per-call hook.
func (u groupUpstream) CallFrom(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, string, error) {
	return callFrom(u.g, ctx, method, params)
}

func (u groupUpstream) Subscribe(ctx context.Context, method string, params json.RawMessage, unsub string, sink suber.Sink) (cacher.Subscription, error) {
	sub, err := u.g.Subscribe(ctx, method, params, unsub, sink)
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// NodeCalls lets the cache try the ready nodes one by one, to find one
// that knows a block (runtime constants after an upgrade, while another
// node lags behind).
func (u groupUpstream) NodeCalls() []cacher.CallFunc {
	nodes := u.g.Nodes()
	var out []cacher.CallFunc
	for i, h := range u.g.Health() {
		if h.Ready {
			out = append(out, nodes[i].Call)
		}
	}
	return out
}

// replaced returns a copy with placeholders replaced.
func (r *RedisConfig) replaced(repl *caddy.Replacer) *RedisConfig {
	out := *r
	out.Addresses = make([]string, len(r.Addresses))
	for i, addr := range r.Addresses {
		out.Addresses[i] = repl.ReplaceKnown(addr, "")
	}
	out.Username = repl.ReplaceKnown(r.Username, "")
	out.Password = repl.ReplaceKnown(r.Password, "")
	if out.Timeout <= 0 {
		out.Timeout = caddy.Duration(cacher.DefaultRedisTimeout)
	}
	if out.DialTimeout <= 0 {
		out.DialTimeout = caddy.Duration(DefaultRedisDialTimeout)
	}
	return &out
}

// isCluster reports whether the config names a Redis Cluster: Cluster
// set, or several addresses that are not Sentinels.
func (r *RedisConfig) isCluster() bool {
	return r.Cluster || (r.MasterName == "" && len(r.Addresses) > 1)
}

// validate checks the Redis settings on their own.
func (r *RedisConfig) validate() error {
	if len(r.Addresses) == 0 {
		return fmt.Errorf("redis: at least one address is required")
	}
	if r.DB < 0 || r.PoolSize < 0 || r.Timeout < 0 || r.DialTimeout < 0 {
		return fmt.Errorf("redis: db, pool_size and timeouts cannot be negative")
	}
	if r.Cluster && r.MasterName != "" {
		return fmt.Errorf("redis: cluster and master_name (Sentinel) cannot be combined: " +
			"use cluster for a Redis Cluster, or master_name with the Sentinels' addresses")
	}
	if r.DB != 0 && r.isCluster() {
		return fmt.Errorf("redis: a Cluster has no db other than 0 (db %d)", r.DB)
	}
	return nil
}

// client builds the go-redis client: a Sentinel-backed one with a master
// name, a Cluster client with Cluster (or several addresses), otherwise a
// single server's.
func (r *RedisConfig) client() (redis.UniversalClient, error) {
	// Caddy provisions before it validates: the store is built from this.
	if err := r.validate(); err != nil {
		return nil, err
	}
	for _, addr := range r.Addresses {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("redis address %q: %w", addr, err)
		}
	}
	opts := &redis.UniversalOptions{
		Addrs:         r.Addresses,
		MasterName:    r.MasterName,
		IsClusterMode: r.isCluster(),
		Username:      r.Username,
		Password:      r.Password,
		DB:            r.DB,
		// The store bounds every call and skips Redis while it is down:
		// retries would only make clients wait.
		MaxRetries:            -1,
		DialTimeout:           time.Duration(r.DialTimeout),
		ReadTimeout:           time.Duration(r.Timeout),
		WriteTimeout:          time.Duration(r.Timeout),
		ContextTimeoutEnabled: true,
		PoolSize:              r.PoolSize,
	}
	if r.TLS {
		host, _, _ := net.SplitHostPort(r.Addresses[0])
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	}
	return redis.NewUniversalClient(opts), nil
}
