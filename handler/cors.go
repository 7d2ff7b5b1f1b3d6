package handler

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/elara-gateway/elara/jsonrpc"
)

// CORS decides which browser origins may call an endpoint and writes the
// CORS headers of its replies. The zero value and NewCORS(nil) allow every
// origin, as public RPC endpoints (and Substrate's `--rpc-cors all`) do.
// It holds no per-handler state, so a per-project list can use its own.
type CORS struct {
	// origins are the allowed origins, normalized; nil allows all.
	origins map[string]struct{}
}

// corsMaxAge is how long, in seconds, browsers may reuse a preflight answer
// (Chromium caps it at two hours, Firefox at one day).
const corsMaxAge = "86400"

// corsMethods are the methods a browser may use: POST for calls, GET for
// WebSocket upgrades and the health endpoint, OPTIONS for preflights.
const corsMethods = "POST, GET, OPTIONS"

// NewCORS builds the check for a list of origins. An empty list, or the
// single entry `*`, allows every origin. Entries are `scheme://host[:port]`
// as browsers send them in the Origin header; scheme and host are compared
// without case and a default port (80, 443) may be written or left out.
func NewCORS(origins []string) (*CORS, error) {
	if len(origins) == 0 || len(origins) == 1 && origins[0] == "*" {
		return &CORS{}, nil
	}
	c := &CORS{origins: make(map[string]struct{}, len(origins))}
	for _, o := range origins {
		n, err := NormalizeOrigin(o)
		if err != nil {
			return nil, err
		}
		c.origins[n] = struct{}{}
	}
	return c, nil
}

// NormalizeOrigin checks a configured origin and returns it in the form
// browsers send: lower case, no default port.
func NormalizeOrigin(origin string) (string, error) {
	if origin == "*" {
		return "", fmt.Errorf("origin '*' allows every origin: give it alone, or list origins without it")
	}
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.ForceQuery || strings.Contains(origin, "#") {
		return "", fmt.Errorf("origin %q: write it as scheme://host[:port], with no path (e.g. https://app.example.com)", origin)
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	scheme := strings.ToLower(u.Scheme)
	if strings.Contains(host, "*") {
		return "", fmt.Errorf("origin %q: wildcards are not supported; list each origin", origin)
	}
	if port == "" && strings.HasSuffix(u.Host, ":") {
		return "", fmt.Errorf("origin %q: empty port", origin)
	}
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 literal
	}
	if port != "" {
		return scheme + "://" + host + ":" + port, nil
	}
	return scheme + "://" + host, nil
}

// Allows reports whether a request with this Origin header may be served.
// No Origin header means no browser enforces anything: always served.
func (c *CORS) Allows(origin string) bool {
	if origin == "" || c.origins == nil {
		return true
	}
	_, ok := c.origins[strings.ToLower(origin)]
	return ok
}

// SetHeaders adds the headers every reply carries: the allow header for an
// allowed origin, and `Vary: Origin` whenever the reply depends on it, so
// shared caches keep one copy per origin.
func (c *CORS) SetHeaders(h http.Header, origin string) {
	if c.origins == nil {
		h.Set("Access-Control-Allow-Origin", "*")
		return
	}
	h.Add("Vary", "Origin")
	if origin != "" && c.Allows(origin) {
		h.Set("Access-Control-Allow-Origin", origin)
	}
}

// Preflight answers an OPTIONS request: 204 with the methods and the
// request headers the browser asked for (Content-Type at least), or 403 for
// an origin that is not allowed. SetHeaders has run before.
func (c *CORS) Preflight(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	origin := r.Header.Get("Origin")
	if !c.Allows(origin) {
		return refuseOrigin(w, r)
	}
	h.Set("Allow", corsMethods)
	if origin != "" {
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", allowedHeaders(r.Header.Values("Access-Control-Request-Headers")))
		h.Set("Access-Control-Max-Age", corsMaxAge)
		// The answer echoes the requested headers.
		h.Add("Vary", "Access-Control-Request-Headers")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// allowedHeaders is the Access-Control-Allow-Headers value: what the
// browser asked for (well-formed header names only) and Content-Type.
func allowedHeaders(requested []string) string {
	names := []string{"Content-Type"}
	seen := map[string]bool{"content-type": true}
	for _, v := range requested {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			key := strings.ToLower(name)
			if name == "" || seen[key] || !isToken(name) || len(names) >= 64 {
				continue
			}
			seen[key] = true
			names = append(names, name)
		}
	}
	return strings.Join(names, ", ")
}

// isToken reports whether s is an HTTP token (RFC 9110), so a header value
// built from it cannot be split or smuggle anything.
func isToken(s string) bool {
	if len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0 {
			continue
		}
		return false
	}
	return true
}

// refuseOrigin answers a request from an origin that is not allowed: 403
// with a JSON-RPC error body (none for HEAD), so the refusal is plain in a
// browser's network panel and never reaches a node.
func refuseOrigin(w http.ResponseWriter, r *http.Request) error {
	e := jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "This origin is not allowed to call this endpoint")
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		return nil
	}
	return writeError(w, http.StatusForbidden, e)
}

// truncateOrigin bounds a client-sent Origin in log lines.
func truncateOrigin(o string) string {
	if len(o) > 128 {
		return o[:128] + "…"
	}
	return o
}
