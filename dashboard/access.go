package dashboard

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/projects"
)

// HeaderProject names the project of the project-owner view. The page
// reads the id and secret from its URL fragment (never sent, never
// logged) and sends the id here and the secret as `Authorization: Bearer
// <secret>`, which Caddy's logs redact.
const HeaderProject = "X-Elara-Project"

// viewer is who an API request is from: the operator (every chain and
// project), or the owner of one project.
type viewer struct {
	operator bool
	local    bool              // the operator because the client is on this machine (no auth)
	project  *projects.Project // the owner's project
}

// accessError is a refused API request.
type accessError struct {
	status int
	msg    string
}

func (e *accessError) Error() string { return e.msg }

// authorize tells who the request is from. A request carrying the owner
// headers is the owner of that project whatever else it carries. Any
// other request is the operator's when an auth handler in front of the
// dashboard authenticated it (the user placeholder is set: basic_auth,
// or forward_auth with copy_headers), or, with no auth configured, when
// it comes from this machine and names a host that only this machine can
// mean (localHost).
func authorize(r *http.Request, userPlaceholder, endpointHost string) (viewer, *accessError) {
	if id := r.Header.Get(HeaderProject); id != "" {
		return authorizeOwner(r, id)
	}
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl != nil && repl.ReplaceAll(userPlaceholder, "") != "" {
		return viewer{operator: true}, nil
	}
	if loopback(r) {
		if forwardedUntrusted(r) {
			return viewer{}, &accessError{http.StatusForbidden,
				"this request came through a proxy on this machine that Caddy does not trust, so its client is unknown: set trusted_proxies in the servers global option, or put basic_auth (or forward_auth) in front of elara_dashboard"}
		}
		if !localHost(r.Host, endpointHost) {
			return viewer{}, errHost(r.Host)
		}
		return viewer{operator: true, local: true}, nil
	}
	return viewer{}, &accessError{http.StatusForbidden,
		"the dashboard is served to this machine only while no auth is configured: put basic_auth (or forward_auth) in front of elara_dashboard to open it to others"}
}

func authorizeOwner(r *http.Request, id string) (viewer, *accessError) {
	refused := &accessError{http.StatusForbidden, "unknown project or wrong secret"}
	x := app.CurrentAccess()
	if x == nil {
		return viewer{}, &accessError{http.StatusNotFound, "projects are off"}
	}
	if !projects.ValidID(id) {
		return viewer{}, refused
	}
	secret, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	p, err := x.Store().Get(r.Context(), id)
	if err != nil {
		// Compare anyway: the time taken does not tell an unknown id.
		subtle.ConstantTimeCompare([]byte(secret), []byte(projects.NewID()))
		return viewer{}, refused
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(p.Secret.Reveal())) != 1 {
		return viewer{}, refused
	}
	return viewer{project: &p}, nil
}

// loopback reports whether the client (Caddy's client IP, which honours
// trusted_proxies) is on this machine.
func loopback(r *http.Request) bool {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	addr, err := netip.ParseAddr(ip)
	return err == nil && addr.Unmap().IsLoopback()
}

// forwardedUntrusted reports a request that a proxy forwarded (it names
// the client in a header) from an address Caddy does not trust: behind a
// proxy on this machine every client would look local.
func forwardedUntrusted(r *http.Request) bool {
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted {
		return false
	}
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"} {
		if r.Header.Get(h) != "" {
			return true
		}
	}
	return false
}

// localHost reports whether host (a Host header) names this machine: the
// name localhost or a loopback IP, any port, or the host of the
// configured endpoint. A page from any other name that reached loopback
// did so by DNS rebinding (its name now resolves to 127.0.0.1): the
// browser then sends its own name as Host and as Origin, so only the Host
// tells it from the operator's own page. Like Caddy's admin API origin
// checks, the names are fixed rather than whatever the request says.
func localHost(host, endpointHost string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if h == "" {
		return false
	}
	if h == "localhost" || (endpointHost != "" && h == endpointHost) {
		return true
	}
	addr, err := netip.ParseAddr(h)
	return err == nil && addr.Zone() == "" && addr.Unmap().IsLoopback()
}

// errHost refuses the no-auth operator view at a host name that could be
// another site's (localHost).
func errHost(host string) *accessError {
	return &accessError{http.StatusForbidden, fmt.Sprintf(
		"with no auth configured the dashboard answers this machine at localhost or a loopback IP only, and this request names host %q (another site's page can reach this machine under its own name): open it at http://127.0.0.1:<port>/..., set endpoint in elara_dashboard to the URL it is served at, or put basic_auth (or forward_auth) in front of elara_dashboard", host)}
}

// endpointHostname is the host name (no port, lower case) of the
// configured endpoint URL, or "" without one.
func endpointHostname(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
}

// sameOrigin refuses changes sent by another site's page: a browser sends
// the operator's basic_auth credentials, or reaches loopback, from any
// site it shows. For the operator let in by being on this machine (local)
// the Host must also name this machine (localHost), as authorize checks:
// with DNS rebinding the Origin matches whatever Host the page sends.
// With auth the credentials are the browser's for the real origin only.
func sameOrigin(r *http.Request, local bool, endpointHost string) bool {
	if local && !localHost(r.Host, endpointHost) {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}
