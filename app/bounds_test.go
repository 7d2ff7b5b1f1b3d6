package app

import "testing"

// JSON configs meet only Validate: negative bounds, and a pending bound
// under the in-flight one (which could never be used), are refused.
func TestChainBoundsValidate(t *testing.T) {
	cases := []struct {
		name string
		cc   ChainConfig
		ok   bool
	}{
		{"defaults", ChainConfig{}, true},
		{"set", ChainConfig{MaxUpstreamCalls: 4, MaxPendingCalls: 4, MaxSharedSubscriptions: 1}, true},
		{"negative upstream calls", ChainConfig{MaxUpstreamCalls: -1}, false},
		{"negative pending calls", ChainConfig{MaxPendingCalls: -1}, false},
		{"negative shared subscriptions", ChainConfig{MaxSharedSubscriptions: -1}, false},
		{"pending under in flight", ChainConfig{MaxUpstreamCalls: 10, MaxPendingCalls: 5}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cc.checkBounds(); (err == nil) != tc.ok {
				t.Fatalf("checkBounds: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
