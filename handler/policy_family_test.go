package handler_test

import (
	"strings"
	"testing"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// policyStep is one call of a client and what it must earn: an error code
// (0 for a result), and optionally the exact result.
type policyStep struct {
	method string
	params any
	code   int
	result string
	// unsubscribe, when set, makes the params the subscription id got
	// from the step that many steps back.
	unsubscribe int
}

// Policy entries cover a method's family: its aliases, and for a
// subscription the methods that end it. A client may always end what it
// started, whatever the allow list says. Through Caddy, against a node.
func TestPolicyByFamily(t *testing.T) {
	cases := []struct {
		name   string
		policy string
		steps  []policyStep
		// upstream subscribe methods the node must never receive
		never []string
	}{
		{
			name:   "deny covers subscribe aliases and their unsubscribes",
			policy: "deny chain_subscribeNewHeads",
			steps: []policyStep{
				{method: "chain_subscribeNewHeads", params: []any{}, code: -32601},
				{method: "chain_subscribeNewHead", params: []any{}, code: -32601},
				{method: "subscribe_newHead", params: []any{}, code: -32601},
				{method: "chain_unsubscribeNewHead", params: []any{"x"}, code: -32601},
				{method: "unsubscribe_newHead", params: []any{"x"}, code: -32601},
				{method: "chain_subscribeFinalizedHeads", params: []any{}}, // another family stays open
			},
			never: []string{"chain_subscribeNewHeads", "chain_subscribeNewHead", "subscribe_newHead"},
		},
		{
			name:   "deny covers plain aliases",
			policy: "deny chain_getBlockHash",
			steps: []policyStep{
				{method: "chain_getBlockHash", params: []any{0}, code: -32601},
				{method: "chain_getHead", params: []any{0}, code: -32601},
				{method: "chain_getHeader", params: []any{}},
			},
			never: []string{"chain_getBlockHash", "chain_getHead"},
		},
		{
			name:   "allow covers aliases",
			policy: "allow chain_subscribeNewHeads",
			steps: []policyStep{
				{method: "subscribe_newHead", params: []any{}},
				{method: "unsubscribe_newHead", unsubscribe: 1, result: "true"},
				{method: "system_chain", params: []any{}, code: -32601},
			},
		},
		{
			name:   "an allow list without the unwatch still lets a client end its watch",
			policy: "allow author_submitAndWatchExtrinsic system_chain",
			steps: []policyStep{
				{method: "author_submitAndWatchExtrinsic", params: []string{"0x0badc0de"}},
				{method: "author_unwatchExtrinsic", unsubscribe: 1, result: "true"},
				{method: "author_unwatchExtrinsic", params: []any{"nothing-of-mine"}, result: "false"},
				{method: "chain_unsubscribeNewHeads", params: []any{"x"}, code: -32601}, // its subscribe is not allowed
			},
		},
		{
			name:   "an allow list without unfollow lets a client end its follow",
			policy: "allow chainHead_v1_follow",
			steps: []policyStep{
				{method: "chainHead_v1_follow", params: []any{false}},
				{method: "chainHead_v1_unfollow", unsubscribe: 1, result: "null"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := fakenode.Start(t)
			gw := testgw.Start(t, chainBlock("dev", testChainOpts, node.URL()), "\telara_rpc {\n\t\t"+tc.policy+"\n\t}")
			baseline(t, node, "") // the gateway's own head subscriptions are up
			before := map[string]int{}
			for _, m := range tc.never {
				before[m] = node.Calls(m)
			}
			c := testgw.Dial(t, gw.WS("/dev"))
			results := make([]*testgw.Response, len(tc.steps))
			for i, s := range tc.steps {
				params := s.params
				if s.unsubscribe > 0 {
					params = []any{rawJSON(results[i-s.unsubscribe].Result)}
				}
				r := c.Call(s.method, params)
				results[i] = r
				if r.ErrCode() != s.code {
					t.Fatalf("step %d %s: %s, want code %d", i, s.method, r.Raw, s.code)
				}
				if s.result != "" && string(r.Result) != s.result {
					t.Fatalf("step %d %s: result %s, want %s", i, s.method, r.Result, s.result)
				}
			}
			for _, m := range tc.never {
				if n := node.Calls(m) - before[m]; n != 0 {
					t.Errorf("the node received %s %d times for the client", m, n)
				}
			}
		})
	}
}

// rawJSON is a JSON value passed through as it is.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

// A broadcast is stopped with the stop method of the family that started
// it: by the client (whichever stop it calls) and by the gateway when the
// client leaves without stopping it.
func TestBroadcastStoppedByItsFamily(t *testing.T) {
	cases := []struct {
		name, broadcast, clientStop, wantStop string
	}{
		{"v1 stopped by the client", "transaction_v1_broadcast", "transaction_v1_stop", "transaction_v1_stop"},
		{"unstable stopped by the client", "transaction_unstable_broadcast", "transaction_unstable_stop", "transaction_unstable_stop"},
		{"unstable stopped with the v1 name", "transaction_unstable_broadcast", "transaction_v1_stop", "transaction_unstable_stop"},
		{"v1 left running", "transaction_v1_broadcast", "", "transaction_v1_stop"},
		{"unstable left running", "transaction_unstable_broadcast", "", "transaction_unstable_stop"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := fakenode.Start(t)
			gw := testgw.Start(t, chainBlock("dev", testChainOpts, node.URL()), "\telara_rpc")
			c := testgw.Dial(t, gw.WS("/dev"))
			r := c.Call(tc.broadcast, []string{"0x0badc0de"})
			if r.Error != nil {
				t.Fatalf("%s: %s", tc.broadcast, r.Raw)
			}
			if tc.clientStop != "" {
				if s := c.Call(tc.clientStop, []any{rawJSON(r.Result)}); s.Error != nil {
					t.Fatalf("%s: %s", tc.clientStop, s.Raw)
				}
			} else {
				_ = c.Conn.Close()
			}
			waitFor(t, "the broadcast stopped", func() bool { return node.ActiveBroadcasts() == 0 })
			other := "transaction_v1_stop"
			if strings.HasPrefix(tc.wantStop, "transaction_v1") {
				other = "transaction_unstable_stop"
			}
			if node.Calls(tc.wantStop) != 1 || node.Calls(other) != 0 {
				t.Fatalf("the node got %s %d times and %s %d times", tc.wantStop, node.Calls(tc.wantStop), other, node.Calls(other))
			}
		})
	}
}
