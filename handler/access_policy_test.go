package handler_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/testgw"
	"github.com/elara-gateway/elara/projects"
	"github.com/gorilla/websocket"
)

// A project's own deny list refuses its methods (and their aliases) on the
// project's paths only, and rpc_methods never offers them there.
func TestAccessProjectMethodPolicy(t *testing.T) {
	gw, x, _, node := startAccessNode(t, "")
	p := createProject(t, x, projects.CreateRequest{Plan: "free", Deny: []string{"chain_getBlockHash"}})
	project, public := gw.HTTP("/dev/"+p.ID), gw.HTTP("/dev")

	cases := []struct {
		name, url, method string
		refused           bool
	}{
		{"denied on the project", project, "chain_getBlockHash", true},
		{"its alias too", project, "chain_getHead", true},
		{"other methods served", project, "system_chain", false},
		{"public path unaffected", public, "chain_getBlockHash", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := node.Calls(tc.method)
			r := testgw.PostCall(t, tc.url, tc.method, nil)
			if got := r.ErrCode() == -32601; got != tc.refused {
				t.Fatalf("refused=%v, want %v: %s", got, tc.refused, r.Raw)
			}
			if tc.refused && node.Calls(tc.method) != before {
				t.Fatalf("%s reached the node", tc.method)
			}
		})
	}

	offered := func(url string) []string {
		t.Helper()
		r := testgw.PostCall(t, url, "rpc_methods", nil)
		var res struct {
			Methods []string `json:"methods"`
		}
		if err := json.Unmarshal(r.Result, &res); err != nil {
			t.Fatalf("rpc_methods: %v %s", err, r.Raw)
		}
		return res.Methods
	}
	if m := offered(project); slices.Contains(m, "chain_getBlockHash") || slices.Contains(m, "chain_getHead") || !slices.Contains(m, "system_chain") {
		t.Errorf("rpc_methods on the project offers %v", m)
	}
	if m := offered(public); !slices.Contains(m, "chain_getBlockHash") {
		t.Errorf("rpc_methods on the public path lacks chain_getBlockHash: %v", m)
	}
}

// A change of a project's restrictions ends the connections admitted under
// the old ones (a reconnect gets the new rules); other changes keep them.
func TestAccessRestrictionsChangeClosesConnections(t *testing.T) {
	gw, x, _, _ := startAccessNode(t, "")
	cases := []struct {
		name  string
		patch projects.Patch
		close bool
	}{
		{"renamed: kept", projects.Patch{"name": json.RawMessage(`"renamed"`)}, false},
		{"deny list: closed", projects.Patch{"deny": json.RawMessage(`["state_getStorage"]`)}, true},
		{"networks: closed", projects.Patch{"networks": json.RawMessage(`["127.0.0.0/8"]`)}, true},
		{"chains: closed", projects.Patch{"chains": json.RawMessage(`["dev"]`)}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := createProject(t, x, projects.CreateRequest{Plan: "free"})
			c := testgw.Dial(t, gw.WS("/dev/"+p.ID))
			if r := c.Call("system_chain", []any{}); r.Error != nil {
				t.Fatal(string(r.Raw))
			}
			if _, err := x.Store().Update(context.Background(), p.ID, tc.patch); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-c.Closed:
				var ce *websocket.CloseError
				if !tc.close {
					t.Fatalf("closed (%v), want kept", err)
				}
				if !asCloseError(err, &ce) || ce.Code != 1008 || !strings.Contains(ce.Text, "restrictions changed") {
					t.Fatalf("closed with %v, want 1008 restrictions changed", err)
				}
			case <-time.After(1500 * time.Millisecond):
				if tc.close {
					t.Fatal("the connection was not closed within 1.5 s")
				}
				if r := c.Call("system_chain", []any{}); r.Error != nil {
					t.Fatalf("kept connection: %s", r.Raw)
				}
			}
		})
	}
}
