package app

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/elara-gateway/elara/internal/caddyarg"
)

// ParseGlobalOption parses the `elara` global option into the app's JSON.
func ParseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	a := new(App)
	if err := a.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "elara", Value: caddyconfig.JSON(a, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from Caddyfile tokens. Syntax:
//
//	elara {
//		chain <name> {
//			node <url> {                       # ws://, wss://, http:// or https://; may repeat
//				pool             <connections>  # WebSocket connections kept (default 4)
//				extra_connections <n>           # beyond pool, for subscriptions when those are full (default 16; 0 none)
//				dial_timeout     <duration>     # one connection attempt (default 5s)
//				ping_interval    <duration>     # keepalive; silent 2 intervals = dead (default 20s)
//				max_message_size <size>         # largest message from the node (default 64MiB)
//				tls_trust_pool   file <pem_file...>   # trust only these CAs (may repeat)
//				tls_trust_pool   pem  <pem...>        # the same, PEM text (e.g. {env.NODE_CA})
//				tls_client_auth  <cert_file> <key_file>  # mutual TLS
//				tls_server_name  <name>           # name the certificate must carry
//				tls_insecure_skip_verify          # tests only: accept any certificate
//				header           <name> <value>   # on the handshake and HTTP calls (may repeat)
//			}
//			request_timeout    <duration>  # every upstream call's deadline (default 10s)
//			max_lag            <blocks>    # how far a node may trail the best ready one (default 5)
//			head_timeout       <duration>  # no new head while others see them: not ready (default 1m, 0 off)
//			health_interval    <duration>  # system_health poll (default 5s)
//			subscription_grace <duration>  # shared subscription kept after its last client (default 30s)
//			max_upstream_calls       <calls>          # client calls at the nodes at once; more wait in turn (default 128)
//			max_pending_calls        <calls>          # waiting or at the nodes; more are refused (default 8192)
//			max_shared_subscriptions <subscriptions>  # upstream ones held for clients (default 4096)
//		}
//		redis [<host:port...>] {
//			address      <host:port...>  # one: a server; several: a Cluster
//			cluster                      # a Redis Cluster, even from one seed address
//			master_name  <name>          # Sentinel: the addresses are Sentinels
//			username     <user>
//			password     <password>
//			db           <number>
//			timeout      <duration>      # each Redis call, default 100ms
//			dial_timeout <duration>      # default 1s
//			pool_size    <connections>
//			tls
//		}
//		cache off                     # the cache is on (in memory) without this
//		cache {
//			store         memory|redis    # default memory; redis uses the redis option
//			max_size      <size>          # memory store bound, default 64MiB
//			prefix        <string>        # redis key prefix, default elara:
//			retry_after   <duration>      # redis failed: skipped this long, default 2s
//			max_item_size <size>          # redis: largest value stored, default 16MiB
//			pin           best|finalized  # head for calls without a hash, default best
//			refresh       <duration>      # suducer period when quiet, default 5s
//			max_stale     <duration>      # oldest latest answer, default 3 refreshes
//			immutable_ttl <duration>      # entries by block hash, default 24h
//			pinned_ttl    <duration>      # entries of calls pinned to the head, default 1m
//			constant_ttl  <duration>      # metadata, runtime version..., default 24h
//			nocache       <method...>
//			method <name> {
//				ttl   <duration>  # replaces the TTL; caches an unknown method
//				share <percent>   # of max_size per chain, default 25%
//				nocache
//			}
//		}
//		plan <name> {                     # a named set of limits; 0 or unset: none
//			requests_per_second    <number>  # per project (public: per client IP)
//			burst                  <calls>   # default: the rate rounded up
//			requests_per_day       <calls>
//			bytes_per_day          <size>    # response and notification bytes
//			connections            <websockets>
//			subscriptions          <per connection>
//			owner_requests_per_day <calls>   # all projects of one owner together
//			owner_bytes_per_day    <size>
//		}
//		projects {
//			store      bolt|redis      # default redis with the redis option, else bolt
//			dir        <path>          # bolt: default {data dir}/elara
//			prefix     <string>        # redis key prefix, default elara:
//			time_zone  <zone>          # day boundary: Asia/Shanghai, UTC+8...; default UTC
//			public     <plan>|off      # paths without a project; default: no limits
//			redis_down open|closed     # limits while Redis is down, default open
//		}
//		stats off                     # statistics are on (embedded) without this
//		stats {
//			store            bolt|redis  # default redis with the redis option, else bolt
//			dir              <path>      # bolt: default {data dir}/elara (file stats.db)
//			prefix           <string>    # redis key prefix, default elara: (keys under {stats})
//			flush_interval   <duration>  # bolt: aggregates written (what a crash loses), default 5s
//			hourly_retention <duration>  # hourly aggregates kept, default 48h
//			daily_retention  <duration>  # daily aggregates kept, default 2160h (90 days)
//			latest_errors    <n>         # failed calls listed per project, default 100
//			buffer           <records>   # records waiting; more are dropped and counted, default 65536
//			jobs             on|off      # redis: this instance aggregates the stream, default on
//			geoip            <file.mmdb> # country database; without it countries are "unknown"
//			project_label                # elara_stats_project_calls_total by project
//		}
//	}
//
// A chain may have several `node` lines; the block after a node is optional.
// TLS options need a wss:// or https:// node. Header values and file names
// may be placeholders ({env.API_KEY}), replaced when the config is loaded;
// header values are never logged.
// The response cache is on by default, in memory with every default below;
// a `cache` block tunes it and `cache off` turns it off.
// `projects` turns on projects (/{chain}/{project}) and the limits of
// the plans; projects themselves are data, managed through the admin API
// (/elara/projects) or `caddy elara project`.
// Statistics are on by default, aggregated in a bolt file (or on the
// app's Redis), read through the admin API (/elara/stats/...); days and
// hours start in the projects' time_zone.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "chain":
			if !d.NextArg() {
				return d.ArgErr()
			}
			name := d.Val()
			if !ValidChainName(name) {
				return d.Errf("chain %q: names are letters, digits, '-' and '_', at most 64", name)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			if a.Chains == nil {
				a.Chains = make(map[string]*ChainConfig)
			}
			if _, dup := a.Chains[name]; dup {
				return d.Errf("chain %s is defined twice", name)
			}
			cc := new(ChainConfig)
			if err := cc.unmarshalCaddyfile(d); err != nil {
				return err
			}
			a.Chains[name] = cc
		case "cache":
			a.Cache = new(CacheConfig)
			if err := a.Cache.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "plan":
			p, err := unmarshalPlan(d)
			if err != nil {
				return err
			}
			for _, q := range a.Plans {
				if q.Name == p.Name {
					return d.Errf("plan %s is defined twice", p.Name)
				}
			}
			a.Plans = append(a.Plans, p)
		case "projects":
			a.Projects = new(ProjectsConfig)
			if err := a.Projects.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "stats":
			a.Stats = new(StatsConfig)
			if err := a.Stats.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "redis":
			a.Redis = new(RedisConfig)
			if err := a.Redis.unmarshalCaddyfile(d); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized elara option '%s'", d.Val())
		}
	}
	return nil
}

func (cc *ChainConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if ok, err := cc.unmarshalBound(d); ok {
			if err != nil {
				return err
			}
			continue
		}
		switch d.Val() {
		case "node":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if err := checkNodeURL(d.Val()); err != nil {
				return d.WrapErr(err)
			}
			nc := &NodeConfig{URL: d.Val()}
			if d.NextArg() {
				return d.ArgErr()
			}
			if err := nc.unmarshalCaddyfile(d); err != nil {
				return err
			}
			cc.Nodes = append(cc.Nodes, nc)
		case "request_timeout":
			dur, err := durationArg(d)
			if err != nil {
				return err
			}
			cc.RequestTimeout = dur
		case "max_lag":
			n, err := intArg(d)
			if err != nil {
				return err
			}
			lag := uint64(n)
			cc.MaxLag = &lag
		case "head_timeout":
			dur, err := caddyarg.DurationOrZero(d)
			if err != nil {
				return err
			}
			cc.HeadTimeout = &dur
		case "health_interval":
			dur, err := durationArg(d)
			if err != nil {
				return err
			}
			cc.HealthInterval = dur
		case "subscription_grace":
			dur, err := caddyarg.DurationOrZero(d)
			if err != nil {
				return err
			}
			cc.SubscriptionGrace = &dur
		default:
			return d.Errf("unrecognized chain option '%s'", d.Val())
		}
	}
	return nil
}

func (nc *NodeConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "pool":
			nc.Pool, err = intArg(d)
		case "extra_connections":
			var x int
			x, err = intArg(d)
			nc.ExtraConnections = &x
		case "dial_timeout":
			nc.DialTimeout, err = durationArg(d)
		case "ping_interval":
			nc.PingInterval, err = durationArg(d)
		case "max_message_size":
			nc.MaxMessageSize, err = SizeArg(d)
		case "tls_trust_pool", "tls_client_auth", "tls_server_name", "tls_insecure_skip_verify", "header":
			err = nc.unmarshalTransport(d)
		default:
			return d.Errf("unrecognized node option '%s'", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// The readers of option arguments are shared with the elara_rpc handler
// (package caddyarg); these names are kept for the app's own parsers.

// durationArg reads a duration greater than zero.
func durationArg(d *caddyfile.Dispenser) (caddy.Duration, error) { return caddyarg.Duration(d) }

// intArg reads a whole number of zero or more.
func intArg(d *caddyfile.Dispenser) (int, error) { return caddyarg.CountOrZero(d) }

// SizeArg reads one size argument such as `16MiB` or `1000000`, more
// than zero and at most 1 TiB.
func SizeArg(d *caddyfile.Dispenser) (int64, error) { return caddyarg.Size(d) }

// Interface guard
var _ caddyfile.Unmarshaler = (*App)(nil)
