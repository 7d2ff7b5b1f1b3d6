package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/jobs"
	"github.com/elara-gateway/elara/limits"
	"github.com/elara-gateway/elara/projects"
	"github.com/elara-gateway/elara/suber"
)

// maxBody bounds a project written through the dashboard.
const maxBody = 1 << 20

// maxListed bounds the projects table: each row reads today's counts.
const maxListed = 1000

// The API, under <dashboard>/api/:
//
//	GET    overview              the view, chains and their nodes, what is on
//	GET    stats?chain=&project= totals, 24 h by hour and 30 days by day
//	GET    projects              the projects with today's use (owner: theirs)
//	POST   projects              create (operator); the secret is shown this once
//	GET    project?id=           one project: use, top methods, errors, countries
//	PATCH  project?id=           change (operator)
//	DELETE project?id=           remove (operator)
//	GET    plans                 the plans (operator)
//
// Errors are JSON {"error": "..."} with a 4xx or 503 status.
func (d *Dashboard) serveAPI(w http.ResponseWriter, r *http.Request, name string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	// Never readable by another site: no CORS headers are ever sent, and
	// these keep a <script> or <img> on another page from loading it.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	v, aerr := authorize(r, d.User, d.endpointHost)
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !v.operator {
			writeError(w, http.StatusForbidden, "the project-owner view is read-only")
			return
		}
		if !sameOrigin(r, v.local, d.endpointHost) {
			writeError(w, http.StatusForbidden, "changes are accepted from the dashboard's own page only")
			return
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") && r.Method != http.MethodDelete {
			writeError(w, http.StatusUnsupportedMediaType, "send JSON (Content-Type: application/json)")
			return
		}
	}
	var (
		out    any
		status = http.StatusOK
		err    error
	)
	switch name {
	case "overview":
		if !allow(w, r, http.MethodGet) {
			return
		}
		out = d.overview(r, v)
	case "stats":
		if !allow(w, r, http.MethodGet) {
			return
		}
		out, err = d.stats(r, v)
	case "projects":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			out, err = d.listProjects(r, v)
		case http.MethodPost:
			out, err = d.createProject(r)
			status = http.StatusCreated
		default:
			allow(w, r, "GET, POST")
			return
		}
	case "project":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			out, err = d.project(r, v)
		case http.MethodPatch:
			out, err = d.patchProject(r)
		case http.MethodDelete:
			err = d.deleteProject(r)
			status = http.StatusNoContent
		default:
			allow(w, r, "GET, PATCH, DELETE")
			return
		}
	case "plans":
		if !allow(w, r, http.MethodGet) {
			return
		}
		if !v.operator {
			err = &apiError{http.StatusForbidden, "plans are shown to the operator"}
			break
		}
		out, err = plans()
	default:
		writeError(w, http.StatusNotFound, "unknown API "+name)
		return
	}
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			writeError(w, ae.status, ae.msg)
			return
		}
		if c := d.log.Check(zap.WarnLevel, "dashboard API"); c != nil {
			c.Write(zap.String("api", name), zap.Error(err))
		}
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, out)
}

type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// allow answers 405 unless the method is one of allowed (HEAD with GET).
func allow(w http.ResponseWriter, r *http.Request, allowed string) bool {
	for m := range strings.SplitSeq(allowed, ", ") {
		if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
			return true
		}
	}
	w.Header().Set("Allow", allowed)
	writeError(w, http.StatusMethodNotAllowed, "method not allowed; use "+allowed)
	return false
}

// storeError maps a project store error to its status.
func storeError(err error) error {
	switch {
	case errors.Is(err, projects.ErrNotFound):
		return &apiError{http.StatusNotFound, err.Error()}
	case errors.Is(err, projects.ErrInvalid):
		return &apiError{http.StatusBadRequest, err.Error()}
	case errors.Is(err, projects.ErrPrecondition):
		return &apiError{http.StatusConflict, err.Error()}
	}
	return err
}

// Overview is the body of GET api/overview.
type Overview struct {
	// View is "operator" or "owner".
	View       string `json:"view"`
	Statistics bool   `json:"statistics"`
	Projects   bool   `json:"projects"`
	// Chains are every chain with its nodes (operator), or the chains
	// the owner's project may call, without nodes.
	Chains []ChainView `json:"chains"`
	// Project is the owner's project.
	Project *ProjectView `json:"project,omitempty"`
	Time    time.Time    `json:"time"`
}

// ChainView is a chain with its client URLs and, for the operator, the
// health of its nodes.
type ChainView struct {
	app.ChainReport
	HTTP string `json:"http"`
	WS   string `json:"ws"`
}

// ProjectView is a project as the dashboard shows it: without its
// secret, but on creation.
type ProjectView struct {
	projects.Project
	Secret string `json:"secret,omitempty"`
	// Status is the status now (a lapsed suspension is active).
	Status    projects.Status `json:"status"`
	Endpoints []Endpoint      `json:"endpoints,omitempty"`
	Usage     *Usage          `json:"usage,omitempty"`
}

// Endpoint is where clients of a project call one chain.
type Endpoint struct {
	Chain string `json:"chain"`
	HTTP  string `json:"http"`
	WS    string `json:"ws"`
}

// Usage is today's use against the project's limits, and the owner's
// against the plan's owner-wide caps, if any.
type Usage struct {
	limits.Report
	OwnerRequestsPerDay int64  `json:"owner_requests_per_day,omitempty"`
	OwnerBytesPerDay    int64  `json:"owner_bytes_per_day,omitempty"`
	Error               string `json:"error,omitempty"`
}

func (d *Dashboard) base(r *http.Request) (httpURL, wsURL string) {
	b := d.Endpoint
	if b == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		b = scheme + "://" + r.Host
	}
	return b, "ws" + strings.TrimPrefix(b, "http")
}

func (d *Dashboard) overview(r *http.Request, v viewer) Overview {
	o := Overview{Statistics: app.CurrentStats() != nil, Projects: app.CurrentAccess() != nil, Time: time.Now().UTC(), Chains: []ChainView{}}
	h, ws := d.base(r)
	for _, c := range app.Reports() {
		cv := ChainView{ChainReport: c, HTTP: h + "/" + c.Chain, WS: ws + "/" + c.Chain}
		if !v.operator {
			if !v.project.AllowsChain(c.Chain) {
				continue
			}
			// Owners see where to call, not the operator's nodes.
			cv.ChainReport = app.ChainReport{Chain: c.Chain, Ready: c.Ready}
			cv.HTTP += "/" + v.project.ID
			cv.WS += "/" + v.project.ID
		}
		if cv.Nodes == nil {
			cv.Nodes = []suber.Health{}
		}
		o.Chains = append(o.Chains, cv)
	}
	o.View = "operator"
	if !v.operator {
		o.View = "owner"
		pv := d.view(r, *v.project)
		o.Project = &pv
	}
	return o
}

// view is p for the dashboard, with its endpoints.
func (d *Dashboard) view(r *http.Request, p projects.Project) ProjectView {
	x := app.CurrentAccess()
	pv := ProjectView{Project: p, Status: p.StatusAt(time.Now())}
	h, ws := d.base(r)
	for _, c := range app.Reports() {
		if p.AllowsChain(c.Chain) {
			pv.Endpoints = append(pv.Endpoints, Endpoint{Chain: c.Chain, HTTP: h + "/" + c.Chain + "/" + p.ID, WS: ws + "/" + c.Chain + "/" + p.ID})
		}
	}
	if x != nil {
		sub := x.Subject(&p, "")
		rep, err := x.Enforcer.Usage(r.Context(), sub)
		u := &Usage{Report: rep, OwnerRequestsPerDay: sub.OwnerRequestsPerDay, OwnerBytesPerDay: sub.OwnerBytesPerDay}
		if err != nil {
			u.Error = err.Error()
		}
		pv.Usage = u
	}
	return pv
}

// Stats is the body of GET api/stats.
type Stats struct {
	Summary jobs.Summary `json:"summary"`
	Hourly  jobs.Series  `json:"hourly"`
	Daily   jobs.Series  `json:"daily"`
}

func (d *Dashboard) stats(r *http.Request, v viewer) (any, error) {
	q := jobs.Query{Chain: r.URL.Query().Get("chain"), Project: r.URL.Query().Get("project")}
	if !v.operator {
		q.Project = v.project.ID
	}
	rd := app.CurrentStats()
	if rd == nil {
		return map[string]any{"off": true}, nil
	}
	return readStats(r.Context(), rd, q, time.Now())
}

func readStats(ctx context.Context, rd jobs.Reader, q jobs.Query, now time.Time) (Stats, error) {
	var s Stats
	var err error
	if s.Summary, err = rd.Summary(ctx, q); err != nil {
		return s, err
	}
	if s.Hourly, err = rd.Series(ctx, q, "hour", now.Truncate(time.Hour).Add(-23*time.Hour), now); err != nil {
		return s, err
	}
	if s.Daily, err = rd.Series(ctx, q, "day", now.AddDate(0, 0, -29), now); err != nil {
		return s, err
	}
	return s, nil
}

func accessOn() (*app.Access, error) {
	x := app.CurrentAccess()
	if x == nil {
		return nil, &apiError{http.StatusNotFound, "projects are off: add a projects block to the elara global option"}
	}
	return x, nil
}

func (d *Dashboard) listProjects(r *http.Request, v viewer) ([]ProjectView, error) {
	if !v.operator {
		return []ProjectView{d.view(r, *v.project)}, nil
	}
	x, err := accessOn()
	if err != nil {
		return nil, err
	}
	list, err := x.Store().List(r.Context(), projects.Filter{})
	if err != nil {
		return nil, storeError(err)
	}
	slices.SortFunc(list, func(a, b projects.Project) int { return b.Created.Compare(a.Created) })
	out := make([]ProjectView, 0, min(len(list), maxListed))
	for _, p := range list[:min(len(list), maxListed)] {
		out = append(out, d.view(r, p))
	}
	return out, nil
}

func (d *Dashboard) createProject(r *http.Request) (ProjectView, error) {
	x, err := accessOn()
	if err != nil {
		return ProjectView{}, err
	}
	req, err := projects.DecodeCreate(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return ProjectView{}, storeError(err)
	}
	p, err := x.Store().Create(r.Context(), req)
	if err != nil {
		return ProjectView{}, storeError(err)
	}
	pv := d.view(r, p)
	pv.Secret = p.Secret.Reveal() // shown this once
	return pv, nil
}

// ProjectDetail is the body of GET api/project.
type ProjectDetail struct {
	ProjectView
	// Statistics, nil while they are off.
	Stats     *Stats             `json:"stats,omitempty"`
	Methods   []jobs.MethodUse   `json:"methods"`
	Errors    []jobs.ErrorRecord `json:"errors"`
	Countries []jobs.CountryUse  `json:"countries"`
	// CacheHitRatio is today's cache hits over calls (0 with no calls).
	CacheHitRatio float64 `json:"cache_hit_ratio"`
}

func (d *Dashboard) projectFor(r *http.Request, v viewer) (projects.Project, error) {
	id := r.URL.Query().Get("id")
	if !v.operator {
		if id != v.project.ID {
			return projects.Project{}, &apiError{http.StatusForbidden, "this link shows its own project only"}
		}
		return *v.project, nil
	}
	x, err := accessOn()
	if err != nil {
		return projects.Project{}, err
	}
	if !projects.ValidID(id) {
		return projects.Project{}, &apiError{http.StatusBadRequest, "id: want a project id (32 lowercase hex characters)"}
	}
	p, err := x.Store().Get(r.Context(), id)
	return p, storeError(err)
}

func (d *Dashboard) project(r *http.Request, v viewer) (ProjectDetail, error) {
	p, err := d.projectFor(r, v)
	if err != nil {
		return ProjectDetail{}, err
	}
	pd := ProjectDetail{ProjectView: d.view(r, p), Methods: []jobs.MethodUse{}, Errors: []jobs.ErrorRecord{}, Countries: []jobs.CountryUse{}}
	rd := app.CurrentStats()
	if rd == nil {
		return pd, nil
	}
	ctx, now := r.Context(), time.Now()
	s, err := readStats(ctx, rd, jobs.Query{Project: p.ID}, now)
	if err != nil {
		return pd, err
	}
	pd.Stats = &s
	if s.Summary.Today.Calls > 0 {
		pd.CacheHitRatio = float64(s.Summary.Today.CacheHits) / float64(s.Summary.Today.Calls)
	}
	if m, err := rd.Methods(ctx, jobs.Query{Project: p.ID}, now); err != nil {
		return pd, err
	} else if m != nil {
		pd.Methods = m
	}
	if e, err := rd.Errors(ctx, p.ID); err != nil {
		return pd, err
	} else if e != nil {
		pd.Errors = e
	}
	if c, err := rd.Countries(ctx, p.ID, now); err != nil {
		return pd, err
	} else if c != nil {
		pd.Countries = c
	}
	return pd, nil
}

func (d *Dashboard) patchProject(r *http.Request) (ProjectView, error) {
	p, err := d.projectFor(r, viewer{operator: true})
	if err != nil {
		return ProjectView{}, err
	}
	patch, err := projects.DecodePatch(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return ProjectView{}, storeError(err)
	}
	if _, ok := patch["secret"]; ok {
		return ProjectView{}, &apiError{http.StatusBadRequest, "the secret is changed through the admin API"}
	}
	x, _ := accessOn()
	p, err = x.Store().Update(r.Context(), p.ID, patch)
	if err != nil {
		return ProjectView{}, storeError(err)
	}
	return d.view(r, p), nil
}

func (d *Dashboard) deleteProject(r *http.Request) error {
	p, err := d.projectFor(r, viewer{operator: true})
	if err != nil {
		return err
	}
	x, _ := accessOn()
	return storeError(x.Store().Delete(r.Context(), p.ID))
}

func plans() ([]limits.Plan, error) {
	x, err := accessOn()
	if err != nil {
		return nil, err
	}
	out := make([]limits.Plan, 0, len(x.Plans))
	for _, p := range x.Plans {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b limits.Plan) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
