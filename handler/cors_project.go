package handler

import (
	"net/http"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/limits"
)

// projectCORSCache keeps, per known project, the CORS its origins make
// (nil: it lists none), so a request pays neither a lookup nor a build.
// The store's change feed drops a project's entry (forget); gen keeps a
// lookup made before a change from storing what the change replaced.
type projectCORSCache struct {
	mu  sync.RWMutex
	gen uint64
	m   map[string]*CORS
}

// forget drops a project's entry after a change of it.
func (pc *projectCORSCache) forget(id string) {
	pc.mu.Lock()
	pc.gen++
	delete(pc.m, id)
	pc.mu.Unlock()
}

// corsFor is the CORS of a request: on /{chain}/{project}, a project that
// lists origins decides alone (its list takes over from the handler's);
// everything else uses the handler's. project is true for a project's.
func (h *Handler) corsFor(rt *route) (c *CORS, project bool) {
	if rt.project == "" {
		return h.cors, false
	}
	x := h.app.Access()
	if x == nil {
		return h.cors, false
	}
	pc := h.projectCORS
	pc.mu.RLock()
	c, ok := pc.m[rt.project]
	gen := pc.gen
	pc.mu.RUnlock()
	if !ok {
		p, found := x.Store().Lookup(rt.project)
		if !found {
			return h.cors, false // unknown ids are not kept: admitRequest refuses them
		}
		if len(p.Origins) > 0 {
			c = newProjectCORS(p.Origins)
		}
		pc.mu.Lock()
		if pc.gen == gen {
			if pc.m == nil {
				pc.m = make(map[string]*CORS)
			}
			pc.m[rt.project] = c
		}
		pc.mu.Unlock()
	}
	if c == nil {
		return h.cors, false
	}
	return c, true
}

// newProjectCORS builds the CORS of a project's origins, which the store
// has checked: `*` allows every origin, a trailing slash is tolerated.
// An entry that does not normalize allows nothing.
func newProjectCORS(origins []string) *CORS {
	c := &CORS{origins: make(map[string]struct{}, len(origins))}
	for _, o := range origins {
		if o == "*" {
			return &CORS{}
		}
		if n, err := NormalizeOrigin(strings.TrimSuffix(o, "/")); err == nil {
			c.origins[n] = struct{}{}
		}
	}
	return c
}

// refuseProjectOrigin answers a request from an origin the project does
// not list: 403 with the project's error, counted like the other refusals.
func (h *Handler) refuseProjectOrigin(w http.ResponseWriter, r *http.Request, rt *route, origin string) error {
	if ce := h.log.Check(zap.DebugLevel, "origin refused by project"); ce != nil {
		ce.Write(zap.String("origin", truncateOrigin(origin)), zap.String("project", rt.project))
	}
	if x := h.app.Access(); x != nil {
		x.Refused(app.RefusedOrigin, limits.Subject{Project: rt.project}, nil)
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		return nil
	}
	return writeError(w, http.StatusForbidden, jsonrpc.NewError(CodeForbidden, "This origin is not allowed to use project "+rt.project))
}
