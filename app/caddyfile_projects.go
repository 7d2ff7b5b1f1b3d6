package app

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/elara-gateway/elara/limits"
)

// unmarshalPlan reads one `plan <name> { ... }` block (syntax in the
// godoc of App.UnmarshalCaddyfile).
func unmarshalPlan(d *caddyfile.Dispenser) (limits.Plan, error) {
	var p limits.Plan
	if !d.NextArg() {
		return p, d.ArgErr()
	}
	p.Name = d.Val()
	if d.NextArg() {
		return p, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		var err error
		switch opt {
		case limits.RequestsPerSecond:
			if !d.NextArg() {
				return p, d.ArgErr()
			}
			p.RequestsPerSecond, err = strconv.ParseFloat(d.Val(), 64)
			if err != nil || p.RequestsPerSecond < 0 {
				return p, d.Errf("plan %s: bad %s '%s'", p.Name, opt, d.Val())
			}
			if d.NextArg() {
				return p, d.ArgErr()
			}
		case limits.Burst, limits.RequestsPerDay, limits.Connections, limits.Subscriptions, limits.OwnerRequestsPerDay:
			var n int
			if n, err = intArg(d); err != nil {
				return p, err
			}
			*map[string]*int64{limits.Burst: &p.Burst, limits.RequestsPerDay: &p.RequestsPerDay,
				limits.Connections: &p.Connections, limits.Subscriptions: &p.Subscriptions,
				limits.OwnerRequestsPerDay: &p.OwnerRequestsPerDay}[opt] = int64(n)
		case limits.BytesPerDay:
			p.BytesPerDay, err = SizeArg(d)
		case limits.OwnerBytesPerDay:
			p.OwnerBytesPerDay, err = SizeArg(d)
		default:
			return p, d.Errf("unrecognized plan option '%s'", opt)
		}
		if err != nil {
			return p, err
		}
	}
	if err := p.Validate(); err != nil {
		return p, d.WrapErr(err)
	}
	return p, nil
}

// unmarshalCaddyfile reads the `projects` block (syntax in the godoc of
// App.UnmarshalCaddyfile).
func (pc *ProjectsConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if !d.NextArg() {
			return d.ArgErr()
		}
		v := d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		switch opt {
		case "store":
			if v != ProjectsStoreBolt && v != ProjectsStoreRedis {
				return d.Errf("projects store must be bolt or redis, not '%s'", v)
			}
			pc.Store = v
		case "dir":
			pc.Dir = v
		case "prefix":
			pc.Prefix = v
		case "time_zone":
			if _, err := limits.ParseZone(v); err != nil {
				return d.WrapErr(err)
			}
			pc.TimeZone = v
		case "public":
			pc.Public = v
		case "redis_down":
			if v != RedisDownOpen && v != RedisDownClosed {
				return d.Errf("redis_down must be open or closed, not '%s'", v)
			}
			pc.RedisDown = v
		default:
			return d.Errf("unrecognized projects option '%s'", opt)
		}
	}
	return nil
}
