package handler_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/handler"
	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
	"github.com/elara-gateway/elara/projects"
)

// A project's WebSocket is kept across a reload that keeps the projects
// settings: it still holds its connection slot (a second connection is
// refused) and gets its heads. A reload that changes the projects
// settings closes it with 1012, as it was admitted under the old ones;
// the project connects again under the new ones.
func TestReloadKeepsProjectClientsUnderTheSameProjectsSettings(t *testing.T) {
	node := fakenode.Start(t)
	dir := t.TempDir()
	global := func(zone string) string {
		return chainBlock("dev", testChainOpts, node.URL()) + accessPlans +
			fmt.Sprintf("\t\tprojects {\n\t\t\tdir %s\n\t\t\ttime_zone %s\n\t\t}\n", dir, zone)
	}
	gw := testgw.Start(t, global("UTC"), "\telara_rpc")
	p := createProject(t, app.CurrentAccess(), projects.CreateRequest{Plan: "conns"})
	c := testgw.Dial(t, gw.WS("/dev/"+p.ID))
	c.Subscribe("chain_subscribeNewHeads", nil)

	testgw.Load(t, gw.Caddyfile(global("UTC"), "\telara_rpc {\n\t\tmax_batch 10\n\t}"))
	awaitServing(t, gw)
	h := node.Chain().NewBlock()
	for r := c.Next(5 * time.Second); headNumber(t, r) < h.Number; r = c.Next(5 * time.Second) {
	}
	if _, resp, err := websocket.DefaultDialer.Dial(gw.WS("/dev/"+p.ID), nil); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second connection with connections 1 after the reload: %v %v", err, resp)
	}

	testgw.Load(t, gw.Caddyfile(global("UTC+8"), "\telara_rpc"))
	select {
	case err := <-c.Closed:
		var ce *websocket.CloseError
		if !asCloseError(err, &ce) || ce.Code != websocket.CloseServiceRestart || !strings.Contains(ce.Text, "projects") {
			t.Fatalf("closed with %v, want 1012 naming the projects settings", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client admitted under the old projects settings was not closed")
	}
	awaitServing(t, gw)
	waitFor(t, "a new connection of the project", func() bool {
		conn, _, err := websocket.DefaultDialer.Dial(gw.WS("/dev/"+p.ID), nil)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
}

// A public client kept across a reload is held to the public plan as the
// new config defines it.
func TestReloadAppliesTheNewPublicPlanToKeptClients(t *testing.T) {
	node := fakenode.Start(t)
	dir := t.TempDir()
	global := func(rate int) string {
		return chainBlock("dev", testChainOpts, node.URL()) +
			fmt.Sprintf("\t\tplan pub {\n\t\t\trequests_per_second %d\n\t\t\tburst %d\n\t\t}\n", rate, rate) +
			fmt.Sprintf("\t\tprojects {\n\t\t\tdir %s\n\t\t\tpublic pub\n\t\t}\n", dir)
	}
	gw := testgw.Start(t, global(1), "\telara_rpc")
	c := testgw.Dial(t, gw.WS("/dev"))
	c.Call("system_name", nil)
	if r := c.Call("system_name", nil); r.ErrCode() != -32029 {
		t.Fatalf("second call at 1 call/s: %s, want -32029", r.Raw)
	}
	testgw.Load(t, gw.Caddyfile(global(1000), "\telara_rpc"))
	for i := range 5 {
		if r := c.Call("system_name", nil); r.Error != nil {
			t.Fatalf("call %d after the reload raised the rate to 1000/s: %s", i, r.Raw)
		}
	}
}

// A project disabled while two configs overlap, a change neither
// handler's watch saw for a kept session, still closes it when it is
// handed over: the handover checks the project as it is now.
func TestReloadClosesAProjectChangedDuringTheHandover(t *testing.T) {
	node := fakenode.Start(t)
	dir := t.TempDir()
	global := chainBlock("dev", testChainOpts, node.URL()) + accessPlans +
		fmt.Sprintf("\t\tprojects {\n\t\t\tdir %s\n\t\t}\n", dir)
	gw := testgw.Start(t, global, "\telara_rpc")
	x := app.CurrentAccess()
	p := createProject(t, x, projects.CreateRequest{Plan: "free"})
	c := testgw.Dial(t, gw.WS("/dev/"+p.ID))
	c.Subscribe("chain_subscribeNewHeads", nil)

	handler.StopProjectWatches()
	if _, err := x.Store().Update(context.Background(), p.ID, projects.StatusPatch(projects.Disabled, nil)); err != nil {
		t.Fatal(err)
	}
	testgw.Load(t, gw.Caddyfile(global, "\telara_rpc {\n\t\tmax_batch 10\n\t}"))
	select {
	case err := <-c.Closed:
		var ce *websocket.CloseError
		if !asCloseError(err, &ce) || ce.Code != 1008 || !strings.Contains(ce.Text, "project disabled") {
			t.Fatalf("closed with %v, want 1008 naming the disabled project", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the session of a project disabled during the reload was handed over open")
	}
}
