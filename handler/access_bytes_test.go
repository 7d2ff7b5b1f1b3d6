package handler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
	"github.com/elara-gateway/elara/projects"
)

// A client that only subscribes makes no call to refuse: reaching
// bytes_per_day with notifications suspends its project (which closes
// its WebSocket with 1008) or, for public access, closes the connection.
func TestAccessBytesPerDayOnlySubscribing(t *testing.T) {
	cases := []struct {
		name       string
		public     bool
		wantReason string
	}{
		{"project", false, "project suspended"},
		{"public", true, "bytes_per_day"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.public {
				body = "\t\t\tpublic bytes"
			}
			gw, x, _, node := startAccessNode(t, body)
			path := "/dev"
			var p projects.Project
			if !tc.public {
				p = createProject(t, x, projects.CreateRequest{Plan: "bytes"}) // bytes_per_day 300
				path += "/" + p.ID
			}
			// Two connections of one subject: each is closed (by the
			// suspension, or by its own next frame for public access).
			conns := []*testgw.WSClient{testgw.Dial(t, gw.WS(path))}
			if tc.public {
				conns = append(conns, testgw.Dial(t, gw.WS(path)))
			}
			for _, c := range conns {
				// Not waiting for the reply: with the first notification (a
				// header of ~400 bytes) the limit may close the connection
				// before the reply is written.
				c.SendRaw([]byte(`{"jsonrpc":"2.0","id":1,"method":"chain_subscribeNewHeads","params":[]}`))
			}
			for i, c := range conns {
				waitClosedOverBytes(t, c, node, tc.wantReason, i)
			}
			if !tc.public {
				if q, _ := x.Store().Lookup(p.ID); q.Status != projects.Suspended || q.SuspendedUntil == nil {
					t.Fatalf("project %s, want suspended until the reset", q.Status)
				}
			}
		})
	}
}

// waitClosedOverBytes makes blocks until c is closed, and checks it was
// closed with 1008 and reason.
func waitClosedOverBytes(t *testing.T, c *testgw.WSClient, node *fakenode.Node, reason string, i int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-c.Closed:
			var ce *websocket.CloseError
			if !asCloseError(err, &ce) || ce.Code != 1008 || !strings.Contains(ce.Text, reason) {
				t.Fatalf("connection %d closed with %v, want 1008 with %q", i, err, reason)
			}
			return
		case <-tick.C:
			node.Chain().NewBlock()
		case <-deadline:
			t.Fatalf("connection %d: notifications went on past bytes_per_day", i)
		}
	}
}
