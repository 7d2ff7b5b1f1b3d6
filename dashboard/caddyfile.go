package dashboard

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// ParseCaddyfile builds the handler from the `elara_dashboard` directive.
func ParseCaddyfile(helper httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	d := new(Dashboard)
	err := d.UnmarshalCaddyfile(helper.Dispenser)
	return d, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	elara_dashboard {
//		endpoint <url>            # base URL of elara_rpc shown to clients (default: the page's scheme and host); its host also opens the no-auth view
//		user     <placeholder>    # set when auth let the operator in (default {http.auth.user.id}: basic_auth)
//	}
//
// Mount it on a path ending in `/*` (for example `handle /dashboard/*`);
// the page is at the path with its trailing slash, its API under `api/`.
// It reads the `elara` app's chains, projects and statistics; without
// statistics the charts say so, without projects there is no table.
//
// Access: the page and its scripts are served to anyone (they hold no
// data). The API answers the operator, who sees everything and manages
// projects, when an auth handler in front let the request in (`user`
// is not empty: basic_auth sets {http.auth.user.id}; behind forward_auth
// use `copy_headers Remote-User` and `user
// {http.request.header.Remote-User}`), or, with no auth, when the
// client (Caddy's client IP) is on this machine, if a proxy forwarded
// the request that proxy is in trusted_proxies, and the Host is
// localhost, a loopback IP (any port) or the host of `endpoint` (another
// name may be a site rebound to 127.0.0.1); anyone else gets 403 saying
// to add basic_auth or set `endpoint`. The owner of a project opens
// `<path>/project/#project=<id>&secret=<secret>` (the dashboard shows
// the link): the fragment never reaches the server or its logs; the page
// sends the id in X-Elara-Project and the secret as `Authorization:
// Bearer <secret>` (which Caddy's logs redact), and the API then shows
// that project only, read-only, with no operator auth. Exempt `<path>/project/*` from the operator's auth.
// Changes are accepted as JSON from the dashboard's own origin only. The
// API sends no CORS headers: no other site's page can read it.
func (d *Dashboard) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next() // consume directive name
	if disp.NextArg() {
		return disp.ArgErr()
	}
	for disp.NextBlock(0) {
		switch disp.Val() {
		case "endpoint":
			if !disp.NextArg() {
				return disp.ArgErr()
			}
			d.Endpoint = disp.Val()
			if err := d.Validate(); err != nil {
				return disp.WrapErr(err)
			}
			if disp.NextArg() {
				return disp.ArgErr()
			}
		case "user":
			if !disp.NextArg() {
				return disp.ArgErr()
			}
			d.User = disp.Val()
			if err := d.Validate(); err != nil {
				return disp.WrapErr(err)
			}
			if disp.NextArg() {
				return disp.ArgErr()
			}
		default:
			return disp.Errf("unrecognized elara_dashboard option '%s'", disp.Val())
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Dashboard)(nil)
