package handler_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/testgw"
	"github.com/elara-gateway/elara/limits"
	"github.com/elara-gateway/elara/projects"
)

// An ending call naming nothing the client holds is a call like any
// other: counted, refused over the day, and answered by the gateway
// without reaching a node.
func TestAccessEndingUnheld(t *testing.T) {
	gw, x, _, node := startAccessNode(t, "")
	cases := []struct {
		name, method, params string
		ws                   bool
		wantCode             int    // the local answer's error code, or 0
		wantResult           string // the local answer's result otherwise
	}{
		{"http v1 stop", "transaction_v1_stop", `["abcdef"]`, false, -32602, ""},
		{"http unstable stop", "transaction_unstable_stop", `["abcdef"]`, false, -32602, ""},
		{"ws v1 stop of an unknown broadcast", "transaction_v1_stop", `["abcdef"]`, true, -32602, ""},
		{"ws unstable stop of an unknown broadcast", "transaction_unstable_stop", `["abcdef"]`, true, -32602, ""},
		{"ws stopOperation without a follow", "chainHead_v1_stopOperation", `["nosub","op1"]`, true, -32602, ""},
		{"ws unsubscribe of an unknown id", "chain_unsubscribeNewHeads", `["nosub"]`, true, 0, "false"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// An owner cap of 3 a day: it refuses without suspending, which
			// would close the WebSocket mid-batch.
			p := createProject(t, x, projects.CreateRequest{Plan: "team", Owner: "owner " + tc.name})
			before := node.Calls(tc.method)
			var entries []string
			for i := range 20 {
				entries = append(entries, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, i, tc.method, tc.params))
			}
			batch := "[" + strings.Join(entries, ",") + "]"
			var body []byte
			if tc.ws {
				c := testgw.Dial(t, gw.WS("/dev/"+p.ID))
				c.SendRaw([]byte(batch))
				body = c.RawBatch(5 * time.Second)
			} else {
				_, body = postRaw(t, gw.HTTP("/dev/"+p.ID), batch, nil)
			}
			var answers []rpcErr
			if err := json.Unmarshal(body, &answers); err != nil || len(answers) != 20 {
				t.Fatalf("%v: %s", err, body)
			}
			answered, limited := 0, 0
			for _, a := range answers {
				switch {
				case a.Error != nil && a.Error.Code == -32029 && a.Error.Data.Limit == limits.OwnerRequestsPerDay:
					limited++
				case tc.wantCode != 0 && a.Error != nil && a.Error.Code == tc.wantCode,
					tc.wantCode == 0 && a.Error == nil && string(a.Result) == tc.wantResult:
					answered++
				default:
					t.Errorf("unexpected answer: %+v %s", a.Error, a.Result)
				}
			}
			if answered != 3 || limited != 17 {
				t.Errorf("20 calls on a plan of 3 a day: %d answered, %d refused: %s", answered, limited, body)
			}
			if n := node.Calls(tc.method) - before; n != 0 {
				t.Errorf("%d of them reached the node", n)
			}
		})
	}
}

// Ending what the client holds goes past the daily limit (and is still
// counted), but not past the rate.
func TestAccessEndingHeld(t *testing.T) {
	gw, x, _, node := startAccessNode(t, "")
	t.Run("daily", func(t *testing.T) {
		p := createProject(t, x, projects.CreateRequest{Plan: "daily"}) // 3 requests a day
		c := testgw.Dial(t, gw.WS("/dev/"+p.ID))
		sub := c.Subscribe("chain_subscribeNewHeads", []any{})    // 1
		b := c.Call("transaction_v1_broadcast", []string{"0x01"}) // 2
		if b.Error != nil {
			t.Fatal(string(b.Raw))
		}
		follow := c.Subscribe("chainHead_v1_follow", []bool{false}) // 3
		stops := node.Calls("transaction_v1_stop")
		if r := c.Call("transaction_v1_stop", []json.RawMessage{b.Result}); r.Error != nil { // 4
			t.Fatalf("stopping its own broadcast over the day: %s", r.Raw)
		}
		if node.Calls("transaction_v1_stop") != stops+1 {
			t.Fatal("the stop did not reach the node running the broadcast")
		}
		if r := c.Call("chain_unsubscribeNewHeads", []json.RawMessage{sub}); r.Error != nil || string(r.Result) != "true" { // 5
			t.Fatalf("ending its own subscription over the day: %s", r.Raw)
		}
		// The follow is served by the gateway's shared upstream follow:
		// stopping an operation the client does not run is answered
		// there (null, as a node does), never refused for the day.
		if r := c.Call("chainHead_v1_stopOperation", []json.RawMessage{follow, json.RawMessage(`"op-1"`)}); r.Error != nil || string(r.Result) != "null" { // 6
			t.Fatalf("stopping an operation of its own follow over the day: %s", r.Raw)
		}
		r := decodeErr(t, c.Call("system_chain", []any{}).Raw)
		if r.Error == nil || r.Error.Code != -32029 || r.Error.Data.Used != 6 {
			t.Fatalf("the endings were not counted: %+v", r.Error)
		}
	})
	t.Run("rate", func(t *testing.T) {
		p := createProject(t, x, projects.CreateRequest{Plan: "rate"}) // 1 a second, burst 2
		c := testgw.Dial(t, gw.WS("/dev/"+p.ID))
		c.SendRaw([]byte(`[{"jsonrpc":"2.0","id":1,"method":"transaction_v1_broadcast","params":["0x01"]},` +
			`{"jsonrpc":"2.0","id":2,"method":"transaction_v1_broadcast","params":["0x02"]}]`))
		var started []rpcErr
		raw := c.RawBatch(5 * time.Second)
		if err := json.Unmarshal(raw, &started); err != nil || len(started) != 2 || started[0].Error != nil || started[1].Error != nil {
			t.Fatalf("both broadcasts within the burst: %v %s", err, raw)
		}
		stops := node.Calls("transaction_v1_stop")
		r := decodeErr(t, c.Call("transaction_v1_stop", []json.RawMessage{started[0].Result}).Raw)
		if r.Error == nil || r.Error.Code != -32029 || r.Error.Data.Limit != limits.RequestsPerSecond {
			t.Fatalf("a stop over the rate: %+v %s", r.Error, r.Result)
		}
		if node.Calls("transaction_v1_stop") != stops {
			t.Fatal("a stop over the rate reached the node")
		}
	})
}

// A batch of subscribes over the plan's subscriptions per connection:
// exactly as many succeed as the plan allows, however they interleave
// (a few rounds, as the interleaving varies).
func TestAccessSubscriptionLimitInBatch(t *testing.T) {
	gw, x, _ := startAccess(t, "")
	var entries []string
	for i := range 16 {
		entries = append(entries, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"chain_subscribeNewHeads","params":[]}`, i))
	}
	batch := []byte("[" + strings.Join(entries, ",") + "]")
	for round := range 10 {
		p := createProject(t, x, projects.CreateRequest{Plan: "conns"}) // subscriptions 1
		c := testgw.Dial(t, gw.WS("/dev/"+p.ID))
		c.SendRaw(batch)
		var answers []rpcErr
		if err := json.Unmarshal(c.RawBatch(5*time.Second), &answers); err != nil || len(answers) != 16 {
			t.Fatalf("%v %+v", err, answers)
		}
		opened, refused := 0, 0
		for _, a := range answers {
			switch {
			case a.Error == nil:
				opened++
			case a.Error.Code == -32029 && a.Error.Data.Limit == limits.Subscriptions:
				refused++
			default:
				t.Errorf("unexpected answer: %+v", a.Error)
			}
		}
		if opened != 1 || refused != 15 {
			t.Fatalf("round %d: 16 subscribes with subscriptions 1: %d opened, %d refused", round, opened, refused)
		}
	}
}
