package handler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
	"github.com/elara-gateway/elara/projects"
)

func init() { caddy.RegisterModule(eventLog{}) }

// eventLog is an events handler module for tests: it records the Caddy
// events it is subscribed to in testEvents.
type eventLog struct{}

func (eventLog) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "events.handlers.elara_test_log", New: func() caddy.Module { return new(eventLog) }}
}

var testEvents struct {
	mu     sync.Mutex
	events []caddy.Event
}

func (*eventLog) Handle(_ context.Context, e caddy.Event) error {
	testEvents.mu.Lock()
	defer testEvents.mu.Unlock()
	testEvents.events = append(testEvents.events, e)
	return nil
}

func countEvents(name string) (n int, last map[string]any) {
	testEvents.mu.Lock()
	defer testEvents.mu.Unlock()
	for _, e := range testEvents.events {
		if e.Name() == name {
			n++
			last = e.Data
		}
	}
	return n, last
}

// Limits, suspensions and resumptions are Caddy events; limit_exceeded
// at most once a second per subject and limit.
func TestAccessEvents(t *testing.T) {
	node := fakenode.Start(t)
	gw := &testgw.Gateway{Port: testgw.FreePort(t)}
	global := chainBlock("dev", testChainOpts, node.URL()) + accessPlans +
		fmt.Sprintf("\t\tprojects {\n\t\t\tdir %s\n\t\t}\n", t.TempDir())
	raw, err := testgw.Adapt(gw.Caddyfile(global, "\telara_rpc"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["apps"].(map[string]any)["events"] = map[string]any{"subscriptions": []any{map[string]any{
		"events":   []string{"elara.limit_exceeded", "elara.project_suspended", "elara.project_resumed"},
		"handlers": []any{map[string]any{"handler": "elara_test_log"}},
	}}}
	raw, _ = json.Marshal(cfg)
	if err := caddy.Load(raw, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopCaddy(t) })
	x := app.CurrentAccess()
	rated := createProject(t, x, projects.CreateRequest{Plan: "rate"})
	for range 10 {
		postRaw(t, gw.HTTP("/dev/"+rated.ID), chainCall, nil)
	}
	if n, data := countEvents("elara.limit_exceeded"); n != 1 || data["limit"] != "requests_per_second" || data["project"] != rated.ID {
		t.Fatalf("8 refusals within a second: %d limit_exceeded events, last %v", n, data)
	}
	daily := createProject(t, x, projects.CreateRequest{Plan: "daily"})
	for range 4 {
		postRaw(t, gw.HTTP("/dev/"+daily.ID), chainCall, nil)
	}
	waitFor(t, "project_suspended", func() bool { n, d := countEvents("elara.project_suspended"); return n == 1 && d["project"] == daily.ID })
	if _, err := x.Store().Update(context.Background(), daily.ID, projects.StatusPatch(projects.Active, nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "project_resumed", func() bool { n, d := countEvents("elara.project_resumed"); return n == 1 && d["was"] == "suspended" })
	// A suspension that lapses at its reset is a resumption too.
	until := time.Now().Add(300 * time.Millisecond)
	if _, err := x.Store().Update(context.Background(), daily.ID, projects.StatusPatch(projects.Suspended, &until)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(until) - 100*time.Millisecond)
	if n, _ := countEvents("elara.project_resumed"); n != 1 {
		t.Fatal("project_resumed before the reset")
	}
	waitFor(t, "project_resumed at the reset", func() bool {
		n, d := countEvents("elara.project_resumed")
		return n == 2 && d["project"] == daily.ID && !time.Now().Before(until)
	})
}
