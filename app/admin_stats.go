package app

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/elara-gateway/elara/jobs"
	"github.com/elara-gateway/elara/projects"
)

// statsRoutes are the admin routes of statistics (GET only):
//
//	/elara/stats/summary?chain=&project=                        today and all-time totals
//	/elara/stats/series?chain=&project=&by=hour|day&from=&to=   totals per hour or day
//	/elara/stats/methods?chain=&project=&day=                   methods of a day, by calls
//	/elara/stats/errors?project=                                latest failed calls, newest first
//	/elara/stats/countries?project=&day=                        countries of a day, by calls
//
// An empty chain or project covers all; project "public" is the calls
// without one. from and to are RFC 3339 or unix seconds (default: the
// last 24 hours by hour, the last 30 days by day); day is 2006-01-02 in
// the statistics time zone (default today). Errors are JSON
// ({"error": "..."}) with 400, 404 (statistics off), 405 or 503.
func statsRoutes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/elara/stats/summary", Handler: statsHandler(handleStatsSummary)},
		{Pattern: "/elara/stats/series", Handler: statsHandler(handleStatsSeries)},
		{Pattern: "/elara/stats/methods", Handler: statsHandler(handleStatsMethods)},
		{Pattern: "/elara/stats/errors", Handler: statsHandler(handleStatsErrors)},
		{Pattern: "/elara/stats/countries", Handler: statsHandler(handleStatsCountries)},
	}
}

type statsFunc func(ctx context.Context, r jobs.Reader, q url.Values) (any, error)

func statsHandler(f statsFunc) caddy.AdminHandler {
	return caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, "GET")
		}
		rd := CurrentStats()
		if rd == nil {
			return apiError(http.StatusNotFound, "statistics are off (stats off in the elara global option)")
		}
		v, err := f(r.Context(), rd, r.URL.Query())
		if err != nil {
			var api caddy.APIError
			if errors.As(err, &api) {
				return err
			}
			if errors.Is(err, jobs.ErrBadQuery) {
				return apiError(http.StatusBadRequest, "%v", err)
			}
			return apiError(http.StatusServiceUnavailable, "statistics store: %v", err)
		}
		return writeJSON(w, http.StatusOK, v)
	})
}

// statsQuery reads chain and project.
func statsQuery(q url.Values) (jobs.Query, error) {
	out := jobs.Query{Chain: q.Get("chain"), Project: q.Get("project")}
	if out.Chain != "" && !ValidChainName(out.Chain) {
		return out, apiError(http.StatusBadRequest, "chain %q: names are letters, digits, '-' and '_'", out.Chain)
	}
	if err := checkStatsProject(out.Project); err != nil {
		return out, err
	}
	return out, nil
}

func checkStatsProject(p string) error {
	if p != "" && p != jobs.Public && !projects.ValidID(p) {
		return apiError(http.StatusBadRequest, "project %q: a project id (32 lowercase hex characters) or \"public\"", p)
	}
	return nil
}

// parseStatsTime reads RFC 3339 or unix seconds.
func parseStatsTime(name, s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, apiError(http.StatusBadRequest, "%s %q: want RFC 3339 (2006-01-02T15:04:05Z) or unix seconds", name, s)
	}
	return t, nil
}

// statsDay reads day (2006-01-02 in the statistics zone): the day's noon
// there, well inside it; default now.
func statsDay(r jobs.Reader, s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	loc := time.UTC
	if sr, ok := r.(*jobs.StoreReader); ok {
		loc = sr.Days.Location()
	}
	t, err := time.ParseInLocation(time.DateOnly, s, loc)
	if err != nil {
		return time.Time{}, apiError(http.StatusBadRequest, "day %q: want 2006-01-02", s)
	}
	return t.Add(12 * time.Hour), nil
}

func handleStatsSummary(ctx context.Context, r jobs.Reader, v url.Values) (any, error) {
	q, err := statsQuery(v)
	if err != nil {
		return nil, err
	}
	return r.Summary(ctx, q)
}

func handleStatsSeries(ctx context.Context, r jobs.Reader, v url.Values) (any, error) {
	q, err := statsQuery(v)
	if err != nil {
		return nil, err
	}
	by := v.Get("by")
	if by == "" {
		by = "hour"
	}
	if by != "hour" && by != "day" {
		return nil, apiError(http.StatusBadRequest, "by %q: hour or day", by)
	}
	to := time.Now()
	if s := v.Get("to"); s != "" {
		if to, err = parseStatsTime("to", s); err != nil {
			return nil, err
		}
	}
	from := to.Add(-23 * time.Hour)
	if by == "day" {
		from = to.AddDate(0, 0, -29)
	}
	if s := v.Get("from"); s != "" {
		if from, err = parseStatsTime("from", s); err != nil {
			return nil, err
		}
	}
	return r.Series(ctx, q, by, from, to)
}

func handleStatsMethods(ctx context.Context, r jobs.Reader, v url.Values) (any, error) {
	q, err := statsQuery(v)
	if err != nil {
		return nil, err
	}
	day, err := statsDay(r, v.Get("day"))
	if err != nil {
		return nil, err
	}
	return r.Methods(ctx, q, day)
}

func handleStatsErrors(ctx context.Context, r jobs.Reader, v url.Values) (any, error) {
	p := v.Get("project")
	if err := checkStatsProject(p); err != nil {
		return nil, err
	}
	return r.Errors(ctx, p)
}

func handleStatsCountries(ctx context.Context, r jobs.Reader, v url.Values) (any, error) {
	p := v.Get("project")
	if err := checkStatsProject(p); err != nil {
		return nil, err
	}
	day, err := statsDay(r, v.Get("day"))
	if err != nil {
		return nil, err
	}
	return r.Countries(ctx, p, day)
}

// ErrBadSecret is a project id and secret that do not match.
var ErrBadSecret = errors.New("unknown project or wrong secret")

// CheckProjectSecret reports whether secret is project id's, comparing
// in constant time, so a project can read its own statistics (the
// dashboard's project view). It returns ErrBadSecret when they do not
// match or the project is unknown, without saying which.
func CheckProjectSecret(ctx context.Context, id, secret string) error {
	x := CurrentAccess()
	if x == nil {
		return errors.New("projects are off")
	}
	p, ok := x.Store().Lookup(id)
	want := string(p.Secret)
	if !ok || want == "" {
		want = "00000000000000000000000000000000" // same work for an unknown id
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(secret)) != 1 || !ok {
		return ErrBadSecret
	}
	return nil
}
