package app

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/caddyserver/caddy/v2"

	"github.com/elara-gateway/elara/suber"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI serves the gateway's view of its upstream nodes on Caddy's
// admin endpoint (GET /elara/upstreams), and its projects and plans
// (/elara/projects, /elara/plans: see projectRoutes).
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.elara",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes returns the admin routes.
func (AdminAPI) Routes() []caddy.AdminRoute {
	routes := append([]caddy.AdminRoute{{Pattern: "/elara/upstreams", Handler: caddy.AdminHandlerFunc(handleUpstreams)}}, projectRoutes()...)
	return append(routes, statsRoutes()...)
}

// ChainReport is one chain as the admin API shows it.
type ChainReport struct {
	Chain string `json:"chain"`
	Ready int    `json:"ready"`
	// SharedSubscriptions is how many upstream subscriptions are shared
	// by the chain's clients.
	SharedSubscriptions int            `json:"shared_subscriptions"`
	Nodes               []suber.Health `json:"nodes"`
}

// Reports describes every chain loaded, in any config still running.
func Reports() []ChainReport {
	var out []ChainReport
	chainPool.Range(func(_, value any) bool {
		c := value.(destructibleChain).Chain
		r := ChainReport{Chain: c.Name, Nodes: c.Upstream.Health(), SharedSubscriptions: c.Matcher.SharedCount()}
		for _, h := range r.Nodes {
			if h.Ready {
				r.Ready++
			}
		}
		out = append(out, r)
		return true
	})
	slices.SortFunc(out, func(a, b ChainReport) int {
		if a.Chain < b.Chain {
			return -1
		}
		if a.Chain > b.Chain {
			return 1
		}
		return 0
	})
	return out
}

func handleUpstreams(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errMethod}
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(Reports())
}

type constError string

func (e constError) Error() string { return string(e) }

const errMethod = constError("method not allowed")

// Interface guard
var _ caddy.AdminRouter = (*AdminAPI)(nil)
