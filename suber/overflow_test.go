package suber_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/suber"
)

// Subscriptions that cannot be shared never meet a node's per-connection
// limit: beyond what the pool's connections may hold, extra connections
// are opened, and closed again once idle. Without extra connections the
// node's refusal reaches the caller.
func TestSubscriptionsOverflowToExtraConnections(t *testing.T) {
	cases := []struct {
		name       string
		nodeLimits fakenode.ChainHeadLimits
		maxPerConn int
		maxExtra   int
		method     string
		count      int
		wantCode   int // the node's refusal when no extra connection may be opened
	}{
		{name: "node refuses beyond 5 subscriptions", nodeLimits: fakenode.ChainHeadLimits{SubscriptionsPerConnection: 5},
			method: "author_submitAndWatchExtrinsic", count: 20},
		{name: "counted below the node's limit", maxPerConn: 5,
			method: "author_submitAndWatchExtrinsic", count: 20},
		{name: "4 chainHead follows per connection", method: "chainHead_v1_follow", count: 10},
		{name: "no extra connections allowed", nodeLimits: fakenode.ChainHeadLimits{SubscriptionsPerConnection: 5}, maxExtra: -1,
			method: "author_submitAndWatchExtrinsic", count: 20, wantCode: fakenode.CodeTooManySubscriptions},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakenode.Start(t, fakenode.WithChainHeadLimits(tc.nodeLimits))
			opts := fastOptions(1)
			opts.MaxSubscriptionsPerConnection = tc.maxPerConn
			opts.MaxExtraConnections = tc.maxExtra
			opts.ExtraIdle = 100 * time.Millisecond
			n := startNode(t, fake.URL(), opts)
			var subs []*suber.Subscription
			var refused error
			for i := range tc.count {
				params := json.RawMessage(fmt.Sprintf(`["0x%04x"]`, i))
				if tc.method == "chainHead_v1_follow" {
					params = json.RawMessage(`[false]`)
				}
				sub, err := n.Subscribe(ctxTimeout(t, 5*time.Second), tc.method, params, "", newSink(t))
				if err != nil {
					refused = err
					break
				}
				subs = append(subs, sub)
			}
			if tc.wantCode != 0 {
				if e, ok := suber.IsUpstreamError(refused); !ok || e.Code != tc.wantCode {
					t.Fatalf("want the node's refusal %d, got %v", tc.wantCode, refused)
				}
				if n.ExtraConnections() != 0 {
					t.Fatalf("%d extra connections opened", n.ExtraConnections())
				}
				return
			}
			if refused != nil {
				t.Fatalf("subscription %d refused: %v", len(subs), refused)
			}
			if n.ExtraConnections() == 0 || fake.Connections() < 2 {
				t.Fatalf("extra connections %d, node connections %d", n.ExtraConnections(), fake.Connections())
			}
			for _, sub := range subs {
				_, _ = sub.Unsubscribe(ctxTimeout(t, 5*time.Second))
			}
			waitFor(t, 5*time.Second, "idle extra connections closed", func() bool {
				return n.ExtraConnections() == 0 && fake.Connections() == 1
			})
		})
	}
}
