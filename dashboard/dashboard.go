// Package dashboard serves the `elara_dashboard` HTTP handler: a
// single-page dashboard of node health, usage statistics and projects, and
// the JSON it reads, embedded in the binary (no CDN, works offline).
package dashboard

import (
	"embed"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Dashboard{})
}

//go:embed assets
var assets embed.FS

// Dashboard serves the dashboard page, its assets and its JSON API. It
// may be mounted under any path (the page uses relative URLs): a path
// ending in "/" is the page, `<path>/assets/<file>` its files and
// `<path>/api/<name>` the API. See UnmarshalCaddyfile for the access
// model and the Caddyfile form.
type Dashboard struct {
	// Endpoint is the base URL clients reach elara_rpc at, used for the
	// HTTP and WebSocket URLs the dashboard shows for each chain (for
	// example https://rpc.example.com). Default: the scheme and host the
	// dashboard was opened with.
	Endpoint string `json:"endpoint,omitempty"`
	// User is a placeholder that names the operator once an auth handler
	// in front of the dashboard let the request in: a request for which
	// it is not empty is the operator's. Default: {http.auth.user.id},
	// which basic_auth sets. Behind forward_auth, name a header it copies
	// from the auth service (copy_headers Remote-User:
	// {http.request.header.Remote-User}), never one the auth handler does
	// not set: clients could send it.
	User string `json:"user,omitempty"`

	static       fs.FS
	endpointHost string // Endpoint's host name: the no-auth view answers it too
	log          *zap.Logger
}

// DefaultUser is the placeholder basic_auth sets to the user it let in.
const DefaultUser = "{http.auth.user.id}"

// CaddyModule returns the Caddy module information.
func (Dashboard) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.elara_dashboard",
		New: func() caddy.Module { return new(Dashboard) },
	}
}

// Provision sets up the handler.
func (d *Dashboard) Provision(ctx caddy.Context) error {
	d.log = ctx.Logger()
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return fmt.Errorf("embedded assets: %w", err)
	}
	d.static = sub
	d.Endpoint = strings.TrimRight(d.Endpoint, "/")
	d.endpointHost = endpointHostname(d.Endpoint)
	if d.User == "" {
		d.User = DefaultUser
	}
	return nil
}

// Validate checks the endpoint and the user placeholder.
func (d *Dashboard) Validate() error {
	if d.User != "" && !strings.Contains(d.User, "{") {
		return fmt.Errorf("user %q: want a placeholder such as {http.request.header.Remote-User}", d.User)
	}
	if d.Endpoint == "" {
		return nil
	}
	if !strings.HasPrefix(d.Endpoint, "http://") && !strings.HasPrefix(d.Endpoint, "https://") {
		return errEndpoint(d.Endpoint)
	}
	// Its host is one the no-auth view answers: it must have one.
	if u, err := url.Parse(d.Endpoint); err != nil || u.Hostname() == "" {
		return errEndpoint(d.Endpoint)
	}
	return nil
}

type errEndpoint string

func (e errEndpoint) Error() string {
	return "endpoint " + string(e) + ": want an http:// or https:// URL with a host"
}

// ServeHTTP serves the page, its assets and the API; it never calls next.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	p := r.URL.Path
	dir, base := path.Split(p)
	switch {
	case path.Base(strings.TrimSuffix(dir, "/")) == "api" && base != "":
		d.serveAPI(w, r, base)
		return nil
	case base == "":
		return d.serveFile(w, r, "index.html")
	case path.Base(strings.TrimSuffix(dir, "/")) == "assets":
		return d.serveFile(w, r, base)
	case path.Base(strings.TrimSuffix(dir, "/")) == "vendor":
		return d.serveFile(w, r, "vendor/"+base)
	}
	// The page needs a trailing slash for its relative URLs.
	if r.Method == http.MethodGet && !strings.Contains(base, ".") {
		http.Redirect(w, r, p+"/", http.StatusMovedPermanently)
		return nil
	}
	return caddyhttp.Error(http.StatusNotFound, nil)
}

func (d *Dashboard) serveFile(w http.ResponseWriter, r *http.Request, name string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, nil)
	}
	f, err := d.static.Open(name)
	if err != nil {
		return caddyhttp.Error(http.StatusNotFound, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		return caddyhttp.Error(http.StatusNotFound, err)
	}
	h := w.Header()
	// The page is small and changes with the binary: always revalidate.
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if name == "index.html" {
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("asset %s cannot seek", name))
	}
	http.ServeContent(w, r, name, st.ModTime(), rs)
	return nil
}

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = (*Dashboard)(nil)
	_ caddy.Provisioner           = (*Dashboard)(nil)
	_ caddy.Validator             = (*Dashboard)(nil)
)
