package app

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/elara-gateway/elara/internal/caddyarg"
)

// unmarshalCaddyfile reads the `stats` option of the elara app (syntax
// in App.UnmarshalCaddyfile). Statistics are on without it; `stats off`
// turns them off and takes no block.
func (sc *StatsConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return d.Errf("stats takes no argument but 'off'")
		}
		if d.NextBlock(d.Nesting()) {
			return d.Err("stats off takes no block")
		}
		sc.Disabled = true
		return nil
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "store":
			sc.Store, err = caddyarg.String(d)
			if err == nil && sc.Store != StatsStoreBolt && sc.Store != StatsStoreRedis {
				return d.Errf("stats store must be bolt or redis, not %q", sc.Store)
			}
		case "dir":
			sc.Dir, err = caddyarg.String(d)
		case "prefix":
			sc.Prefix, err = caddyarg.String(d)
		case "flush_interval":
			sc.FlushInterval, err = caddyarg.Duration(d)
		case "hourly_retention":
			sc.HourlyRetention, err = caddyarg.Duration(d)
		case "daily_retention":
			sc.DailyRetention, err = caddyarg.Duration(d)
		case "latest_errors":
			sc.LatestErrors, err = caddyarg.Count(d)
		case "buffer":
			sc.Buffer, err = caddyarg.Count(d)
		case "jobs":
			var on bool
			on, err = caddyarg.OnOff(d)
			sc.Jobs = &on
		case "geoip":
			sc.GeoIP, err = caddyarg.String(d)
		case "project_label":
			if d.NextArg() {
				return d.ArgErr()
			}
			sc.ProjectLabel = true
		default:
			return d.Errf("unrecognized stats option '%s'", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}
