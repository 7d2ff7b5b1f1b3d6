package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elara-gateway/elara/jobs"
)

// statsFixture is an API as the dashboard reads it with statistics on,
// built from the jobs types (the statistics contract): 24 hourly and 30
// daily points with known sums, and one project with top methods,
// errors and countries.
type statsFixture struct {
	hourCalls, dayCalls int64
	id                  string
}

func (f *statsFixture) handler(t *testing.T) http.Handler {
	assets := filepath.Join(repoRoot, "dashboard", "assets")
	now := time.Now().UTC().Truncate(time.Hour)
	series := func(by string, n int, step time.Duration, calls func(i int) int64) (jobs.Series, int64) {
		s := jobs.Series{By: by}
		var sum int64
		for i := 0; i < n; i++ {
			c := calls(i)
			sum += c
			s.Points = append(s.Points, jobs.Point{Time: now.Add(-time.Duration(n-1-i) * step),
				Totals: jobs.Totals{Calls: c, Errors: c / 20, BytesOut: c * 900, BytesIn: c * 80, P50Ms: 3 + float64(i%5), P99Ms: 40 + float64(i%7)*3}})
		}
		return s, sum
	}
	hourly, hs := series("hour", 24, time.Hour, func(i int) int64 { return int64(100 + 40*(i%6)) })
	daily, ds := series("day", 30, 24*time.Hour, func(i int) int64 { return int64(2000 + 150*(i%9)) })
	f.hourCalls, f.dayCalls = hs, ds
	today := jobs.Totals{Calls: hs, Errors: hs / 20, BytesOut: hs * 900, BytesIn: hs * 80, CacheHits: hs / 4, P50Ms: 4.2, P99Ms: 51}
	stats := map[string]any{
		"summary": jobs.Summary{Day: now.Format("2006-01-02"), TimeZone: "UTC", Today: today,
			Total: jobs.Totals{Calls: ds, Errors: ds / 20, BytesOut: ds * 900, BytesIn: ds * 80, CacheHits: ds / 4, P50Ms: 4, P99Ms: 55}},
		"hourly": hourly, "daily": daily,
	}
	f.id = strings.Repeat("ab", 16)
	usage := map[string]any{"project": map[string]int64{"requests": hs, "bytes": hs * 900},
		"limits": map[string]any{"requests_per_second": 10, "requests_per_day": 5000, "bytes_per_day": 10_000_000}, "reset_at": now.Add(5 * time.Hour)}
	project := map[string]any{"id": f.id, "name": "wallet", "owner": "acme", "plan": "free", "status": "active",
		"created": now, "endpoints": []map[string]string{{"chain": "westend", "http": "http://gw/westend/" + f.id, "ws": "ws://gw/westend/" + f.id}},
		"usage": usage}
	detail := map[string]any{}
	for k, v := range project {
		detail[k] = v
	}
	detail["stats"] = stats
	detail["cache_hit_ratio"] = 0.25
	detail["methods"] = []jobs.MethodUse{{Method: "state_getStorage", Calls: 900, Bytes: 80_000}, {Method: "state_getMetadata", Calls: 12, Bytes: 3_600_000}, {Method: "chain_getHeader", Calls: 300, Bytes: 90_000, Errors: 2}}
	detail["errors"] = []jobs.ErrorRecord{{Time: now, Chain: "westend", Method: "state_call", Code: -32000}}
	detail["countries"] = []jobs.CountryUse{{Country: "DE", Calls: 700}, {Country: "SG", Calls: 400}, {Country: "local", Calls: 112}}
	api := map[string]any{
		"overview": map[string]any{"view": "operator", "statistics": true, "projects": true, "time": now,
			"chains": []map[string]any{{"chain": "westend", "ready": 1, "http": "http://gw/westend", "ws": "ws://gw/westend", "nodes": []map[string]any{
				{"url": "wss://node-a.example:443", "connected": true, "ready": true, "best": 1200, "finalized": 1198, "latency_ms": 12.5, "last_head_at": time.Now()},
				{"url": "wss://node-b.example:443", "connected": true, "ready": false, "not_ready_because": "12 blocks behind", "best": 1188, "finalized": 1186, "latency_ms": 80.1, "last_head_at": time.Now().Add(-70 * time.Second)}}}}},
		"stats":    stats,
		"projects": []any{project},
		"plans":    []map[string]any{{"name": "free", "requests_per_day": 5000}},
		"project":  detail,
	}
	files := http.FileServer(http.Dir(assets))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/dashboard/")
		switch {
		case strings.HasPrefix(p, "api/"):
			v, ok := api[strings.TrimPrefix(p, "api/")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(v)
		case strings.HasPrefix(p, "assets/"):
			r.URL.Path = "/" + strings.TrimPrefix(p, "assets/")
			files.ServeHTTP(w, r)
		case p == "":
			http.ServeFile(w, r, filepath.Join(assets, "index.html"))
		default:
			http.NotFound(w, r)
		}
	})
}

// TestDashboardDrawsStatistics: the page as an operator sees it with
// statistics on, against a fixed API (the real gateway's statistics are
// checked in TestDashboardInBrowser): the totals tiles show the summary,
// the 24 h and 30 day charts draw every point of the series (their sums
// match, for calls and for bytes), and a project's detail ranks its
// methods by calls and by bytes and lists its errors and countries and
// cache hit ratio, with nothing wider than a phone.
func TestDashboardDrawsStatistics(t *testing.T) {
	chromium := requireBrowser(t)
	f := &statsFixture{}
	srv := httptest.NewServer(f.handler(t))
	t.Cleanup(srv.Close)
	shots := t.TempDir()
	if d := os.Getenv("ELARA_DASHBOARD_SHOTS"); d != "" {
		shots = d
	}
	var out struct {
		TodayCalls string           `json:"todayCalls"`
		TotalCalls string           `json:"totalCalls"`
		Charts     []map[string]any `json:"charts"`
		BytesSums  []map[string]any `json:"bytesSums"`
		Detail     struct {
			ByCalls   []string `json:"byCalls"`
			ByBytes   []string `json:"byBytes"`
			Errors    string   `json:"errors"`
			Countries string   `json:"countries"`
			Tiles     string   `json:"tiles"`
			CacheHits string   `json:"cacheHits"`
		} `json:"detail"`
		Overflow dashboardOverflow `json:"overflow"`
		Nodes    string            `json:"nodes"`
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []string{"stats.png", "stats-phone.png"} {
				if b, err := os.ReadFile(filepath.Join(shots, n)); err == nil {
					_ = os.WriteFile(filepath.Join(artefactDir(t), n), b, 0o644)
				}
			}
		}
	})
	runBrowserScript(t, chromium, "browser_dashboard_stats.mjs", &out, srv.URL+"/dashboard/", shots, f.id)

	num := func(v any) int64 { n, _ := v.(float64); return int64(n) }
	if out.TodayCalls != strconv.FormatInt(f.hourCalls, 10) || out.TotalCalls != strconv.FormatInt(f.dayCalls, 10) {
		t.Errorf("tiles: today %q total %q, want %d and %d", out.TodayCalls, out.TotalCalls, f.hourCalls, f.dayCalls)
	}
	if len(out.Charts) != 2 || num(out.Charts[0]["calls"]) != f.hourCalls || num(out.Charts[1]["calls"]) != f.dayCalls {
		t.Errorf("charts drew %v, want calls %d (24 h) and %d (30 days)", out.Charts, f.hourCalls, f.dayCalls)
	}
	if len(out.BytesSums) != 2 || num(out.BytesSums[0]["bytes out"]) != f.hourCalls*900 || num(out.BytesSums[1]["bytes out"]) != f.dayCalls*900 {
		t.Errorf("bytes charts drew %v, want %d and %d bytes out", out.BytesSums, f.hourCalls*900, f.dayCalls*900)
	}
	if !strings.Contains(out.Nodes, "12 blocks behind") || !strings.Contains(out.Nodes, "node-a") {
		t.Errorf("nodes: %q", out.Nodes)
	}
	d := out.Detail
	if len(d.ByCalls) < 3 || !strings.HasPrefix(d.ByCalls[0], "state_getStorage") || len(d.ByBytes) < 3 || !strings.HasPrefix(d.ByBytes[0], "state_getMetadata") {
		t.Errorf("top methods: by calls %q, by bytes %q", d.ByCalls, d.ByBytes)
	}
	if !strings.Contains(d.Errors, "state_call") || !strings.Contains(d.Errors, "-32000") || !strings.Contains(d.Countries, "DE") || d.CacheHits != "25%" ||
		!strings.Contains(d.Tiles, "4,800") || !strings.Contains(d.Tiles, "5,000") {
		t.Errorf("detail: errors %q, countries %q, cache hits %q, limits %q", d.Errors, d.Countries, d.CacheHits, d.Tiles)
	}
	if out.Overflow.InnerWidth != 390 || out.Overflow.ScrollWidth > out.Overflow.InnerWidth {
		t.Errorf("phone width: %d px of content in %d", out.Overflow.ScrollWidth, out.Overflow.InnerWidth)
	}
}
