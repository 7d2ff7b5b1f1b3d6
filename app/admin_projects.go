package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/elara-gateway/elara/limits"
	"github.com/elara-gateway/elara/projects"
)

// maxAdminBody bounds a project written through the admin API.
const maxAdminBody = 1 << 20

// projectRoutes are the admin routes of projects and plans:
//
//	POST   /elara/projects             create; 201 with the whole project, id and secret included
//	GET    /elara/projects             list; filters ?owner= &status= &plan=
//	GET    /elara/projects/{id}        one project
//	PATCH  /elara/projects/{id}        change any field but id
//	DELETE /elara/projects/{id}        remove; 204
//	GET    /elara/projects/{id}/usage  today's use against each limit, and the reset
//	GET    /elara/plans                the plans and their limits
//
// Errors are JSON ({"error": "..."}) with 400, 404, 405, 409 or 503.
func projectRoutes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/elara/projects", Handler: caddy.AdminHandlerFunc(handleProjects)},
		{Pattern: "/elara/projects/", Handler: caddy.AdminHandlerFunc(handleProject)},
		{Pattern: "/elara/plans", Handler: caddy.AdminHandlerFunc(handlePlans)},
	}
}

func apiError(status int, format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	return caddy.APIError{HTTPStatus: status, Err: err, Message: err.Error()}
}

// storeError maps a store error to its HTTP status.
func storeError(err error) error {
	switch {
	case errors.Is(err, projects.ErrNotFound):
		return apiError(http.StatusNotFound, "%v", err)
	case errors.Is(err, projects.ErrInvalid):
		return apiError(http.StatusBadRequest, "%v", err)
	case errors.Is(err, projects.ErrPrecondition):
		return apiError(http.StatusConflict, "%v", err)
	}
	return apiError(http.StatusServiceUnavailable, "project store: %v", err)
}

func access() (*Access, error) {
	x := CurrentAccess()
	if x == nil {
		return nil, apiError(http.StatusNotFound, "projects are off: add a projects block to the elara global option")
	}
	return x, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

func methodNotAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return apiError(http.StatusMethodNotAllowed, "method not allowed; use %s", allow)
}

func handleProjects(w http.ResponseWriter, r *http.Request) error {
	x, err := access()
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodPost:
		req, err := projects.DecodeCreate(io.LimitReader(r.Body, maxAdminBody))
		if err != nil {
			return storeError(err)
		}
		p, err := x.Store().Create(r.Context(), req)
		if err != nil {
			return storeError(err)
		}
		return writeJSON(w, http.StatusCreated, p)
	case http.MethodGet:
		q := r.URL.Query()
		f := projects.Filter{Owner: q.Get("owner"), Status: projects.Status(q.Get("status")), Plan: q.Get("plan")}
		switch f.Status {
		case "", projects.Active, projects.Suspended, projects.Disabled:
		default:
			return apiError(http.StatusBadRequest, "status %q: want active, suspended or disabled", f.Status)
		}
		list, err := x.Store().List(r.Context(), f)
		if err != nil {
			return storeError(err)
		}
		return writeJSON(w, http.StatusOK, list)
	}
	return methodNotAllowed(w, "GET, POST")
}

// UsageReport is the body of GET /elara/projects/{id}/usage.
type UsageReport struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	limits.Report
	// OwnerLimits are the plan's owner-wide caps, if any.
	OwnerRequestsPerDay int64 `json:"owner_requests_per_day,omitempty"`
	OwnerBytesPerDay    int64 `json:"owner_bytes_per_day,omitempty"`
}

func handleProject(w http.ResponseWriter, r *http.Request) error {
	x, err := access()
	if err != nil {
		return err
	}
	rest := strings.TrimPrefix(r.URL.Path, "/elara/projects/")
	id, sub, _ := strings.Cut(rest, "/")
	if !projects.ValidID(id) || (sub != "" && sub != "usage") {
		return apiError(http.StatusNotFound, "unknown path: use /elara/projects/{id} or /elara/projects/{id}/usage (an id is 32 lowercase hex characters)")
	}
	if sub == "usage" {
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, "GET")
		}
		p, err := x.Store().Get(r.Context(), id)
		if err != nil {
			return storeError(err)
		}
		s := x.Subject(&p, "")
		rep, err := x.Enforcer.Usage(r.Context(), s)
		if err != nil {
			return apiError(http.StatusServiceUnavailable, "daily counts: %v", err)
		}
		return writeJSON(w, http.StatusOK, UsageReport{ID: p.ID, Status: string(p.StatusAt(x.now())), Report: rep,
			OwnerRequestsPerDay: s.OwnerRequestsPerDay, OwnerBytesPerDay: s.OwnerBytesPerDay})
	}
	switch r.Method {
	case http.MethodGet:
		p, err := x.Store().Get(r.Context(), id)
		if err != nil {
			return storeError(err)
		}
		return writeJSON(w, http.StatusOK, p)
	case http.MethodPatch:
		patch, err := projects.DecodePatch(io.LimitReader(r.Body, maxAdminBody))
		if err != nil {
			return storeError(err)
		}
		p, err := x.Store().Update(r.Context(), id, patch)
		if err != nil {
			return storeError(err)
		}
		return writeJSON(w, http.StatusOK, p)
	case http.MethodDelete:
		if err := x.Store().Delete(r.Context(), id); err != nil {
			return storeError(err)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return methodNotAllowed(w, "GET, PATCH, DELETE")
}

func handlePlans(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return methodNotAllowed(w, "GET")
	}
	x, err := access()
	if err != nil {
		return err
	}
	out := make([]limits.Plan, 0, len(x.Plans))
	for _, p := range x.Plans {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b limits.Plan) int { return strings.Compare(a.Name, b.Name) })
	return writeJSON(w, http.StatusOK, out)
}
