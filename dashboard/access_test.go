package dashboard_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// startDashboard runs elara_rpc and the dashboard on a site for any host
// (as the README's example), behind a trusted proxy (X-Forwarded-For sets
// the client IP, as behind a load balancer), with basic_auth on
// /auth/dashboard/*, forward_auth (to an auth service that knows the token
// "t0k") on /fwd/dashboard/* and an endpoint set on /ep/dashboard/*.
func startDashboard(t *testing.T) *testgw.Gateway {
	t.Helper()
	node := fakenode.Start(t)
	authSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Token") != "t0k" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Remote-User", "alice")
	}))
	t.Cleanup(authSrv.Close)
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	g := &testgw.Gateway{Port: testgw.FreePort(t)}
	testgw.Load(t, fmt.Sprintf(`{
	admin off
	default_bind 127.0.0.1
	auto_https off
	skip_install_trust
	persist_config off
	storage file_system %[1]s
	servers {
		trusted_proxies static 127.0.0.1/8
	}
	log {
		level ERROR
	}
	elara {
		chain devnet {
			node %[2]s
		}
		plan free {
			requests_per_day 1000
			owner_requests_per_day 3000
		}
		projects {
			dir %[1]s
		}
	}
}
http://:%[3]d {
	handle /dashboard/* {
		elara_dashboard
	}
	handle /ep/dashboard/* {
		elara_dashboard {
			endpoint https://rpc.example.test
		}
	}
	handle /auth/dashboard/* {
		@operator not path /auth/dashboard/project/*
		basic_auth @operator {
			op %[4]s
		}
		elara_dashboard
	}
	handle /fwd/dashboard/* {
		forward_auth %[5]s {
			uri /check
			copy_headers Remote-User
		}
		elara_dashboard {
			user {http.request.header.Remote-User}
		}
	}
	handle {
		elara_rpc
	}
}
`, t.TempDir(), node.URL(), g.Port, hash, strings.TrimPrefix(authSrv.URL, "http://")))
	t.Cleanup(func() { _ = caddy.Stop() })
	return g
}

type reply struct {
	status int
	body   string
	header http.Header
}

func do(t *testing.T, method, url string, hdr map[string]string, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "user" {
			u, p, _ := strings.Cut(v, ":")
			req.SetBasicAuth(u, p)
			continue
		}
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b), resp.Header}
}

// TestDashboardAccess: who gets the API. The operator is a loopback
// client or one an auth handler let in (basic_auth, forward_auth); a remote client without auth is
// refused with how to fix it; a project owner's secret opens that project
// only, read-only; another site's page cannot make changes.
func TestDashboardAccess(t *testing.T) {
	g := startDashboard(t)
	remote := map[string]string{"X-Forwarded-For": "203.0.113.7"}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	// Two projects, created as the loopback operator.
	create := func(name string) (id, secret string) {
		r := do(t, "POST", g.HTTP("/dashboard/api/projects"), map[string]string{"Content-Type": "application/json"}, `{"name":"`+name+`","plan":"free"}`)
		var p struct{ ID, Secret string }
		if r.status != 201 || json.Unmarshal([]byte(r.body), &p) != nil || p.Secret == "" {
			t.Fatalf("create %s: %d %s", name, r.status, r.body)
		}
		return p.ID, p.Secret
	}
	id, secret := create("mine")
	other, _ := create("theirs")
	owner := map[string]string{"X-Elara-Project": id, "Authorization": "Bearer " + secret}

	cases := []struct {
		name, method, path string
		hdr                map[string]string
		body               string
		status             int
		contains, absent   string
	}{
		{"loopback operator sees every project", "GET", "/dashboard/api/projects", nil, "", 200, other, ""},
		{"list never shows secrets", "GET", "/dashboard/api/projects", nil, "", 200, id, secret},
		{"remote without auth is refused", "GET", "/dashboard/api/overview", remote, "", 403, "basic_auth", ""},
		{"remote cannot create without auth", "POST", "/dashboard/api/projects", with(remote, "Content-Type", "application/json"), `{"name":"x","plan":"free"}`, 403, "basic_auth", ""},
		{"remote with basic_auth is the operator", "GET", "/auth/dashboard/api/projects", with(remote, "user", "op:pw"), "", 200, other, ""},
		{"remote with a wrong password", "GET", "/auth/dashboard/api/projects", with(remote, "user", "op:nope"), "", 401, "", other},
		{"remote through forward_auth is the operator", "GET", "/fwd/dashboard/api/projects", with(remote, "X-Token", "t0k"), "", 200, other, ""},
		{"remote refused by forward_auth", "GET", "/fwd/dashboard/api/projects", with(remote, "X-Token", "nope"), "", 401, "", other},
		{"a user header sent by the client is not trusted", "GET", "/dashboard/api/projects", with(remote, "Remote-User", "alice"), "", 403, "basic_auth", other},
		{"the page needs no data access", "GET", "/dashboard/", remote, "", 200, "assets/app.js", ""},
		{"the owner link's path without its slash leads to the page", "GET", "/dashboard/project", remote, "", 200, "assets/app.js", ""},
		{"the charting library is embedded", "GET", "/dashboard/assets/vendor/uPlot.iife.min.js", remote, "", 200, "uPlot", ""},
		{"no file outside the assets", "GET", "/dashboard/assets/../../dashboard.go", nil, "", 404, "", "package"},
		{"owner sees their project", "GET", "/auth/dashboard/project/api/overview", with(remote, "X-Elara-Project", id, "Authorization", "Bearer "+secret), "", 200, `"view":"owner"`, other},
		{"owner list is their project only", "GET", "/auth/dashboard/project/api/projects", with(remote, "X-Elara-Project", id, "Authorization", "Bearer "+secret), "", 200, id, other},
		{"owner cannot read another project", "GET", "/auth/dashboard/project/api/project?id=" + other, with(remote, "X-Elara-Project", id, "Authorization", "Bearer "+secret), "", 403, "own project", ""},
		{"owner with a wrong secret", "GET", "/dashboard/api/overview", with(remote, "X-Elara-Project", id, "Authorization", "Bearer "+strings.Repeat("0", 32)), "", 403, "wrong secret", id},
		{"owner headers never widen a loopback view", "GET", "/dashboard/api/projects", owner, "", 200, id, other},
		{"owner cannot change", "PATCH", "/dashboard/api/project?id=" + id, with(owner, "Content-Type", "application/json"), `{"status":"disabled"}`, 403, "read-only", ""},
		{"another site's page cannot change", "POST", "/dashboard/api/projects", map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, `{"name":"x","plan":"free"}`, 403, "own page", ""},
		{"a form post is not JSON", "POST", "/dashboard/api/projects", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, `name=x`, 415, "JSON", ""},
		{"bad JSON is a clear 400", "POST", "/dashboard/api/projects", map[string]string{"Content-Type": "application/json"}, `{"name":`, 400, "body", ""},
		{"unknown plan is a clear 400", "POST", "/dashboard/api/projects", map[string]string{"Content-Type": "application/json"}, `{"name":"x","plan":"gold"}`, 400, "gold", ""},
		{"unknown API", "GET", "/dashboard/api/nope", nil, "", 404, "unknown API", ""},
		{"bad id", "GET", "/dashboard/api/project?id=../x", nil, "", 400, "id", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, c.method, g.HTTP(c.path), c.hdr, c.body)
			if r.status != c.status || !strings.Contains(r.body, c.contains) || (c.absent != "" && strings.Contains(r.body, c.absent)) {
				t.Fatalf("%s %s: %d %s\nwant %d containing %q without %q", c.method, c.path, r.status, r.body, c.status, c.contains, c.absent)
			}
		})
	}
	// Statistics off is said, not an error; on, the totals and series.
	want := `"off":true`
	if app.CurrentStats() != nil {
		want = `"hourly"`
	}
	if r := do(t, "GET", g.HTTP("/dashboard/api/stats"), nil, ""); r.status != 200 || !strings.Contains(r.body, want) {
		t.Fatalf("stats: %d %.300s, want %s", r.status, r.body, want)
	}
	// The owner-header case above from loopback must be the owner view.
	if r := do(t, "GET", g.HTTP("/dashboard/api/projects"), owner, ""); strings.Contains(r.body, other) {
		t.Fatalf("owner headers from loopback showed other projects: %s", r.body)
	}
}

// TestDashboardManageProjects: a project created through the dashboard
// API comes with its URLs, and its use today is shown against its own
// and its owner's caps; disabled, enabled and deleted, it is refused,
// served and unknown at once on elara_rpc.
func TestDashboardManageProjects(t *testing.T) {
	g := startDashboard(t)
	js := map[string]string{"Content-Type": "application/json"}
	r := do(t, "POST", g.HTTP("/dashboard/api/projects"), js, `{"name":"wallet","owner":"acme","plan":"free"}`)
	var p struct {
		ID, Secret string
		Endpoints  []struct{ Chain, HTTP, WS string }
	}
	if r.status != 201 || json.Unmarshal([]byte(r.body), &p) != nil {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if len(p.Endpoints) != 1 || p.Endpoints[0].HTTP != g.HTTP("/devnet/"+p.ID) || p.Endpoints[0].WS != g.WS("/devnet/"+p.ID) {
		t.Fatalf("endpoints %+v", p.Endpoints)
	}
	// Today's use is shown against the project's and the owner's caps.
	if st, _ := testgw.Post(t, p.Endpoints[0].HTTP, []byte(`{"jsonrpc":"2.0","id":1,"method":"system_chain"}`)); st != 200 {
		t.Fatalf("call: %d", st)
	}
	r = do(t, "GET", g.HTTP("/dashboard/api/project?id="+p.ID), nil, "")
	var d struct {
		Usage struct {
			Project struct{ Requests int64 }
			Owner   *struct{ Requests int64 }
			Limits  struct {
				RequestsPerDay int64 `json:"requests_per_day"`
			}
			OwnerRequestsPerDay int64 `json:"owner_requests_per_day"`
		}
	}
	if err := json.Unmarshal([]byte(r.body), &d); err != nil || d.Usage.Project.Requests != 1 || d.Usage.Limits.RequestsPerDay != 1000 ||
		d.Usage.Owner == nil || d.Usage.Owner.Requests != 1 || d.Usage.OwnerRequestsPerDay != 3000 {
		t.Fatalf("usage: %v %s", err, r.body)
	}
	call := func() int {
		st, _ := testgw.Post(t, p.Endpoints[0].HTTP, []byte(`{"jsonrpc":"2.0","id":1,"method":"system_chain"}`))
		return st
	}
	steps := []struct {
		name, method, body string
		want               int
	}{
		{"created is served", "", "", 200}, // the second call
		{"disabled is refused", "PATCH", `{"status":"disabled"}`, 403},
		{"enabled is served", "PATCH", `{"status":"active"}`, 200},
		{"deleted is unknown", "DELETE", "", 404},
	}
	for _, s := range steps {
		if s.method != "" {
			if r := do(t, s.method, g.HTTP("/dashboard/api/project?id="+p.ID), js, s.body); r.status >= 300 {
				t.Fatalf("%s: %d %s", s.name, r.status, r.body)
			}
		}
		if got := call(); got != s.want {
			t.Fatalf("%s: call answered %d, want %d", s.name, got, s.want)
		}
	}
}

// TestDashboardWithoutProjects: with projects off the dashboard still
// shows the chains, says projects are off, and owner links cannot work;
// with no trusted_proxies, a loopback request that names a client in
// X-Forwarded-For (a local proxy) is refused.
func TestDashboardWithoutProjects(t *testing.T) {
	node := fakenode.Start(t)
	g := testgw.Start(t, "chain devnet {\n\tnode "+node.URL()+"\n}", "handle /dashboard/* {\n\telara_dashboard\n}\nhandle {\n\telara_rpc\n}")
	cases := []struct {
		name, path string
		hdr        map[string]string
		status     int
		contains   string
	}{
		{"overview", "/dashboard/api/overview", nil, 200, `"projects":false`},
		{"the chain and its node", "/dashboard/api/overview", nil, 200, node.URL()},
		{"projects", "/dashboard/api/projects", nil, 404, "projects are off"},
		{"plans", "/dashboard/api/plans", nil, 404, "projects are off"},
		{"a local proxy Caddy does not trust", "/dashboard/api/overview", map[string]string{"X-Forwarded-For": "203.0.113.7"}, 403, "trusted_proxies"},
		{"an owner link", "/dashboard/project/api/overview", map[string]string{"X-Elara-Project": strings.Repeat("ab", 16), "Authorization": "Bearer x"}, 404, "projects are off"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if r := do(t, "GET", g.HTTP(c.path), c.hdr, ""); r.status != c.status || !strings.Contains(r.body, c.contains) {
				t.Fatalf("%d %s, want %d with %q", r.status, r.body, c.status, c.contains)
			}
		})
	}
}

// TestDashboardHost: with no auth, a page on another site whose name was
// pointed at 127.0.0.1 (DNS rebinding: its requests come from loopback
// with its own name as Host and Origin) gets nothing and changes nothing;
// the operator's own names (localhost, a loopback IP, the endpoint's
// host) work. Auth and the owner's secret are credentials whatever the
// Host, and no API answer is readable by another site.
func TestDashboardHost(t *testing.T) {
	g := startDashboard(t)
	port := fmt.Sprint(g.Port)
	js := map[string]string{"Content-Type": "application/json"}
	create := do(t, "POST", g.HTTP("/dashboard/api/projects"), js, `{"name":"kept","plan":"free"}`)
	var p struct{ ID, Secret string }
	if create.status != 201 || json.Unmarshal([]byte(create.body), &p) != nil {
		t.Fatalf("create: %d %s", create.status, create.body)
	}
	// page sends what a browser sends for a page's own request at host.
	page := func(host string, kv ...string) map[string]string {
		m := map[string]string{"Host": host, "Origin": "http://" + host, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	evil := "evil.example:" + port
	cases := []struct {
		name, method, path string
		hdr                map[string]string
		body               string
		status             int
		contains, absent   string
	}{
		{"localhost with a port", "GET", "/dashboard/api/projects", page("localhost:" + port), "", 200, p.ID, ""},
		{"localhost without a port", "GET", "/dashboard/api/projects", page("localhost"), "", 200, p.ID, ""},
		{"localhost in capitals", "GET", "/dashboard/api/projects", page("LocalHost:" + port), "", 200, p.ID, ""},
		{"an IPv4 loopback", "GET", "/dashboard/api/projects", page("127.0.0.1:" + port), "", 200, p.ID, ""},
		{"another IPv4 loopback", "GET", "/dashboard/api/projects", page("127.0.0.2:" + port), "", 200, p.ID, ""},
		{"the IPv6 loopback", "GET", "/dashboard/api/projects", page("[::1]:" + port), "", 200, p.ID, ""},
		{"the endpoint's host", "GET", "/ep/dashboard/api/projects", page("rpc.example.test:" + port), "", 200, p.ID, ""},
		{"the endpoint's host in capitals", "GET", "/ep/dashboard/api/projects", page("RPC.example.test"), "", 200, p.ID, ""},
		{"the endpoint's host may change", "POST", "/ep/dashboard/api/projects", page("rpc.example.test:" + port), `{"name":"via-endpoint","plan":"free"}`, 201, "via-endpoint", ""},
		{"a rebound name cannot list", "GET", "/dashboard/api/projects", page(evil), "", 403, "basic_auth", p.ID},
		{"the refusal says how to fix it", "GET", "/dashboard/api/overview", page(evil), "", 403, "set endpoint", "devnet"},
		{"a rebound name cannot read a project", "GET", "/dashboard/api/project?id=" + p.ID, page(evil), "", 403, "evil.example", p.ID},
		{"a rebound name cannot create", "POST", "/dashboard/api/projects", page(evil), `{"name":"rebound","plan":"free"}`, 403, "localhost", "secret"},
		{"a rebound name cannot delete", "DELETE", "/dashboard/api/project?id=" + p.ID, page(evil), "", 403, "localhost", ""},
		{"a rebound name cannot disable", "PATCH", "/dashboard/api/project?id=" + p.ID, page(evil), `{"status":"disabled"}`, 403, "localhost", ""},
		{"another endpoint's host is not this one's", "GET", "/dashboard/api/projects", page("rpc.example.test:" + port), "", 403, "set endpoint", p.ID},
		{"a rebound name with an endpoint set", "GET", "/ep/dashboard/api/projects", page(evil), "", 403, "basic_auth", p.ID},
		{"a name that starts like a loopback IP", "GET", "/dashboard/api/projects", page("127.0.0.1.evil.example:" + port), "", 403, "basic_auth", p.ID},
		{"a name under localhost's", "GET", "/dashboard/api/projects", page("localhost.evil.example:" + port), "", 403, "basic_auth", p.ID},
		{"a name that ends like the endpoint's", "GET", "/ep/dashboard/api/projects", page("evil-rpc.example.test:" + port), "", 403, "basic_auth", p.ID},
		{"the page holds no data and is served at any name", "GET", "/dashboard/", map[string]string{"Host": evil}, "", 200, "assets/app.js", ""},
		{"basic_auth is the credential at any name", "GET", "/auth/dashboard/api/projects", page(evil, "user", "op:pw"), "", 200, p.ID, ""},
		{"the owner's secret is the credential at any name", "GET", "/dashboard/project/api/projects", page(evil, "X-Elara-Project", p.ID, "Authorization", "Bearer "+p.Secret), "", 200, p.ID, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, c.method, g.HTTP(c.path), c.hdr, c.body)
			if r.status != c.status || !strings.Contains(r.body, c.contains) || (c.absent != "" && strings.Contains(r.body, c.absent)) {
				t.Fatalf("%s %s: %d %s\nwant %d containing %q without %q", c.method, c.path, r.status, r.body, c.status, c.contains, c.absent)
			}
		})
	}
	// Nothing the rebound page tried took effect.
	r := do(t, "GET", g.HTTP("/dashboard/api/project?id="+p.ID), nil, "")
	if r.status != 200 || !strings.Contains(r.body, `"status":"active"`) {
		t.Fatalf("the project after the rebound page's changes: %d %.300s", r.status, r.body)
	}
	if r := do(t, "GET", g.HTTP("/dashboard/api/projects"), nil, ""); strings.Contains(r.body, "rebound") {
		t.Fatalf("the rebound page created a project: %.300s", r.body)
	}

	// Another site's page cannot read an owner's answer (its script has
	// the secret only if the owner gave it away, but a stray CORS header
	// would let any page read it): no CORS headers on the answer or on a
	// preflight, and the answer cannot be embedded.
	owner := map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "X-Elara-Project": p.ID, "Authorization": "Bearer " + p.Secret}
	preflight := map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization,x-elara-project"}
	for _, c := range []struct {
		name, method string
		hdr          map[string]string
	}{
		{"owner answer", "GET", owner},
		{"preflight", "OPTIONS", preflight},
		{"operator answer", "GET", map[string]string{"Origin": "https://evil.example"}},
	} {
		t.Run("cross-origin "+c.name, func(t *testing.T) {
			r := do(t, c.method, g.HTTP("/dashboard/project/api/overview"), c.hdr, "")
			for k := range r.header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Fatalf("%d with %s: %v", r.status, k, r.header)
				}
			}
			if c.method == "OPTIONS" && r.status < 400 {
				t.Fatalf("preflight answered %d", r.status)
			}
			if got := r.header.Get("Cross-Origin-Resource-Policy"); got != "same-origin" {
				t.Fatalf("Cross-Origin-Resource-Policy %q", got)
			}
		})
	}
}
