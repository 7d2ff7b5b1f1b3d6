package handler

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/limits"
)

// projectCORSCache keeps the CORS built from each project's origins, so
// a request does not rebuild it; an entry is rebuilt when the project
// changes (its Updated time).
type projectCORSCache struct {
	m sync.Map // project id -> projectCORSEntry
}

type projectCORSEntry struct {
	updated time.Time
	cors    *CORS
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
	p, ok := x.Store().Lookup(rt.project)
	if !ok || len(p.Origins) == 0 {
		return h.cors, false
	}
	if e, ok := h.projectCORS.m.Load(p.ID); ok && e.(projectCORSEntry).updated.Equal(p.Updated) {
		return e.(projectCORSEntry).cors, true
	}
	c = newProjectCORS(p.Origins)
	h.projectCORS.m.Store(p.ID, projectCORSEntry{updated: p.Updated, cors: c})
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
