package handler_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
	"github.com/elara-gateway/elara/projects"
)

// startAccessAdmin runs a gateway with projects and Caddy's admin
// endpoint on; it returns the gateway and the admin base URL.
func startAccessAdmin(t *testing.T) (*testgw.Gateway, string) {
	t.Helper()
	node := fakenode.Start(t)
	port, admin := testgw.FreePort(t), testgw.FreePort(t)
	g := &testgw.Gateway{Port: port}
	global := chainBlock("dev", testChainOpts, node.URL()) + accessPlans +
		fmt.Sprintf("\t\tprojects {\n\t\t\tdir %s\n\t\t}\n", t.TempDir())
	cf := strings.Replace(g.Caddyfile(global, "\telara_rpc"), "admin off", fmt.Sprintf("admin 127.0.0.1:%d", admin), 1)
	testgw.Load(t, cf)
	t.Cleanup(func() { stopCaddy(t) })
	return g, fmt.Sprintf("http://127.0.0.1:%d", admin)
}

func adminDo(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestAccessAdminAPI(t *testing.T) {
	gw, admin := startAccessAdmin(t)
	status, body := adminDo(t, "POST", admin+"/elara/projects",
		`{"name":"wallet","owner":"acme","plan":"daily","chains":["dev"],"limits":{"requests_per_day":2}}`)
	if status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	var p projects.Project
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if !projects.ValidID(p.ID) || !projects.ValidID(p.Secret.Reveal()) || p.Status != projects.Active || p.Owner != "acme" {
		t.Fatalf("created: %s", body)
	}
	// The project is served at once, with its override of the plan.
	for range 2 {
		if resp, b := postRaw(t, gw.HTTP("/dev/"+p.ID), chainCall, nil); resp.StatusCode != 200 {
			t.Fatalf("call: %d %s", resp.StatusCode, b)
		}
	}
	if resp, b := postRaw(t, gw.HTTP("/dev/"+p.ID), chainCall, nil); resp.StatusCode != 429 {
		t.Fatalf("requests_per_day 2 override: %d %s", resp.StatusCode, b)
	}
	status, body = adminDo(t, "GET", admin+"/elara/projects/"+p.ID+"/usage", "")
	var usage struct {
		Project struct{ Requests, Bytes int64 } `json:"project"`
		Limits  struct {
			RequestsPerDay int64 `json:"requests_per_day"`
		} `json:"limits"`
		ResetAt string `json:"reset_at"`
	}
	if status != 200 || json.Unmarshal(body, &usage) != nil || usage.Project.Requests != 2 || usage.Project.Bytes == 0 ||
		usage.Limits.RequestsPerDay != 2 || usage.ResetAt == "" {
		t.Fatalf("usage: %d %s", status, body)
	}
	other := `{"name":"other","owner":"beta","plan":"free"}`
	if status, body := adminDo(t, "POST", admin+"/elara/projects", other); status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		contains                 string
	}{
		{"list all", "GET", "/elara/projects", "", 200, `"name":"other"`},
		{"filter owner", "GET", "/elara/projects?owner=beta", "", 200, `"owner":"beta"`},
		{"filter plan none", "GET", "/elara/projects?plan=gold", "", 200, `[]`},
		{"bad status filter", "GET", "/elara/projects?status=sleeping", "", 400, `"error"`},
		{"get", "GET", "/elara/projects/" + p.ID, "", 200, `"secret":"` + p.Secret.Reveal()},
		{"unknown", "GET", "/elara/projects/" + projects.NewID(), "", 404, `not found`},
		{"bad id", "GET", "/elara/projects/xyz", "", 404, `"error"`},
		{"unknown plan", "POST", "/elara/projects", `{"name":"x","plan":"platinum"}`, 400, `unknown plan`},
		{"id given", "POST", "/elara/projects", `{"id":"00","name":"x","plan":"free"}`, 400, `"error"`},
		{"bad json", "POST", "/elara/projects", `{`, 400, `"error"`},
		{"patch id", "PATCH", "/elara/projects/" + p.ID, `{"id":"x"}`, 400, `id cannot be changed`},
		{"patch", "PATCH", "/elara/projects/" + p.ID, `{"status":"disabled","name":"w2"}`, 200, `"status":"disabled"`},
		{"method", "PUT", "/elara/projects/" + p.ID, `{}`, 405, `"error"`},
		{"plans", "GET", "/elara/plans", "", 200, `{"name":"daily","requests_per_day":3}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := adminDo(t, tc.method, admin+tc.path, tc.body)
			if status != tc.status || !strings.Contains(string(body), tc.contains) {
				t.Fatalf("%s %s: %d %s; want %d with %s", tc.method, tc.path, status, body, tc.status, tc.contains)
			}
			if status >= 400 && !json.Valid(body) {
				t.Fatalf("error is not JSON: %s", body)
			}
		})
	}
	if resp, b := postRaw(t, gw.HTTP("/dev/"+p.ID), chainCall, nil); resp.StatusCode != 403 {
		t.Fatalf("disabled through the API: %d %s", resp.StatusCode, b)
	}
	if status, body := adminDo(t, "DELETE", admin+"/elara/projects/"+p.ID, ""); status != 204 {
		t.Fatalf("delete: %d %s", status, body)
	}
	if resp, b := postRaw(t, gw.HTTP("/dev/"+p.ID), chainCall, nil); resp.StatusCode != 404 {
		t.Fatalf("deleted: %d %s", resp.StatusCode, b)
	}
}

// runElaraCommand runs `caddy elara <args>` in process.
func runElaraCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	c, ok := caddycmd.Commands()["elara"]
	if !ok {
		t.Fatal("the elara command is not registered")
	}
	cmd := &cobra.Command{Use: "elara", SilenceUsage: true, SilenceErrors: true}
	c.CobraFunc(cmd)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestAccessCommand(t *testing.T) {
	gw, admin := startAccessAdmin(t)
	addr := strings.TrimPrefix(admin, "http://")
	out, err := runElaraCommand(t, "project", "add", "--name", "wallet", "--owner", "acme", "--plan", "free", "--address", addr)
	if err != nil {
		t.Fatalf("add: %v %s", err, out)
	}
	var id, secret string
	if _, err := fmt.Sscanf(out, "id %s\nsecret %s\n", &id, &secret); err != nil || !projects.ValidID(id) || !projects.ValidID(secret) {
		t.Fatalf("add printed %q", out)
	}
	if resp, b := postRaw(t, gw.HTTP("/dev/"+id), chainCall, nil); resp.StatusCode != 200 {
		t.Fatalf("new project: %d %s", resp.StatusCode, b)
	}
	steps := []struct {
		args   []string
		want   string
		status int // of a call through the project afterwards
	}{
		{[]string{"list", "--owner", "acme"}, id, 200},
		{[]string{"show", id}, `"requests": 2`, 200}, // two calls so far
		{[]string{"disable", id}, "disabled", 403},
		{[]string{"list", "--status", "disabled"}, "wallet", 403},
		{[]string{"enable", id}, "active", 200},
		{[]string{"delete", id}, "deleted", 404},
	}
	for _, s := range steps {
		out, err := runElaraCommand(t, append(append([]string{"project"}, s.args...), "--address", addr)...)
		if err != nil || !strings.Contains(out, s.want) {
			t.Fatalf("%v: %v %q, want %q", s.args, err, out, s.want)
		}
		if resp, b := postRaw(t, gw.HTTP("/dev/"+id), chainCall, nil); resp.StatusCode != s.status {
			t.Fatalf("after %v: %d %s", s.args, resp.StatusCode, b)
		}
	}
	if out, err := runElaraCommand(t, "project", "add", "--name", "x", "--plan", "platinum", "--address", addr); err == nil ||
		!strings.Contains(err.Error(), "unknown plan") {
		t.Fatalf("unknown plan: %v %s", err, out)
	}
}
