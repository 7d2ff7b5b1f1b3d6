package app

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/elara-gateway/elara/internal/caddyarg"
)

// unmarshalCacheCaddyfile reads the `cache` option of the elara app:
//
//	cache {
//		store         memory|redis  # default memory; redis needs the redis option
//		max_size      <size>        # memory store bound, default 64MiB
//		prefix        <string>      # redis key prefix, default elara:
//		retry_after   <duration>    # redis down: calls skip it this long, default 2s
//		max_item_size <size>        # redis: largest value stored, default 16MiB
//		pin           best|finalized  # head for calls without a block hash, default best
//		refresh       <duration>    # suducer period (polls silent heads), default 5s
//		max_stale     <duration>    # oldest latest-block answer served, default 3 refreshes
//		immutable_ttl <duration>    # entries by block hash, default 24h
//		pinned_ttl    <duration>    # entries of calls pinned to the head, default 1m
//		constant_ttl  <duration>    # metadata, runtime version, system_*, default 24h
//		nocache       <method...>   # never cache these
//		method <name> {
//			ttl     <duration>      # replaces the TTL; caches an unknown method
//			share   <percent>       # of max_size one chain's entries may use, default 25%
//			nocache
//		}
//	}
//
// The cache is on without this option; `cache off` turns it off and takes
// no block.
func (cc *CacheConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return d.Errf("cache takes no argument but 'off'")
		}
		if d.NextBlock(d.Nesting()) {
			return d.Err("cache off takes no block")
		}
		cc.Disabled = true
		return nil
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "store":
			cc.Store, err = stringArg(d)
		case "max_size":
			cc.MaxSize, err = SizeArg(d)
		case "prefix":
			cc.Prefix, err = stringArg(d)
		case "retry_after":
			cc.RetryAfter, err = durationArg(d)
		case "max_item_size":
			cc.MaxItemSize, err = SizeArg(d)
		case "pin":
			cc.Pin, err = stringArg(d)
		case "refresh":
			cc.Refresh, err = durationArg(d)
		case "max_stale":
			cc.MaxStale, err = durationArg(d)
		case "pinned_ttl":
			cc.PinnedTTL, err = durationArg(d)
		case "immutable_ttl":
			cc.ImmutableTTL, err = durationArg(d)
		case "constant_ttl":
			cc.ConstantTTL, err = durationArg(d)
		case "nocache":
			methods := d.RemainingArgs()
			if len(methods) == 0 {
				return d.ArgErr()
			}
			for _, m := range methods {
				cc.method(m).NoCache = true
			}
		case "method":
			err = cc.unmarshalMethod(d)
		default:
			return d.Errf("unrecognized cache option '%s'", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (cc *CacheConfig) method(name string) *MethodCacheConfig {
	if cc.Methods == nil {
		cc.Methods = make(map[string]*MethodCacheConfig)
	}
	mc := cc.Methods[name]
	if mc == nil {
		mc = new(MethodCacheConfig)
		cc.Methods[name] = mc
	}
	return mc
}

func (cc *CacheConfig) unmarshalMethod(d *caddyfile.Dispenser) error {
	name, err := stringArg(d)
	if err != nil {
		return err
	}
	mc := cc.method(name)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "ttl":
			mc.TTL, err = durationArg(d)
		case "share":
			mc.Share, err = percentArg(d)
		case "nocache":
			if d.NextArg() {
				return d.ArgErr()
			}
			mc.NoCache = true
		default:
			return d.Errf("unrecognized cache method option '%s'", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unmarshalCaddyfile reads the `redis` option of the elara app:
//
//	redis [<address...>] {
//		address      <host:port...>  # one: a server; several: a Cluster
//		cluster                      # a Redis Cluster, even from one seed address
//		master_name  <name>          # Sentinel: the addresses are Sentinels
//		username     <user>
//		password     <password>
//		db           <number>
//		timeout      <duration>      # each Redis call, default 100ms
//		dial_timeout <duration>      # default 1s
//		pool_size    <connections>
//		tls
//	}
//
// Without `cluster` or `master_name`, one address is a single server and
// several are a Cluster. `cluster` and `master_name` cannot be combined,
// and a Cluster has no `db` but 0.
func (r *RedisConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	r.Addresses = append(r.Addresses, d.RemainingArgs()...)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "address":
			addrs := d.RemainingArgs()
			if len(addrs) == 0 {
				return d.ArgErr()
			}
			r.Addresses = append(r.Addresses, addrs...)
		case "cluster":
			if d.NextArg() {
				return d.ArgErr()
			}
			r.Cluster = true
		case "master_name":
			r.MasterName, err = stringArg(d)
		case "username":
			r.Username, err = stringArg(d)
		case "password":
			r.Password, err = stringArg(d)
		case "db":
			r.DB, err = intArg(d)
		case "timeout":
			r.Timeout, err = durationArg(d)
		case "dial_timeout":
			r.DialTimeout, err = durationArg(d)
		case "pool_size":
			r.PoolSize, err = caddyarg.Count(d)
		case "tls":
			if d.NextArg() {
				return d.ArgErr()
			}
			r.TLS = true
		default:
			return d.Errf("unrecognized redis option '%s'", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func stringArg(d *caddyfile.Dispenser) (string, error) { return caddyarg.String(d) }

// percentArg reads `25%` or `25`.
func percentArg(d *caddyfile.Dispenser) (float64, error) {
	s, err := stringArg(d)
	if err != nil {
		return 0, err
	}
	p, perr := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if perr != nil || p <= 0 || p > 100 {
		return 0, d.Errf("bad percentage '%s' (0-100%%)", s)
	}
	return p, nil
}
