package matcher

import (
	"encoding/json"
	"testing"
)

func TestLookupSubscribe(t *testing.T) {
	cases := []struct {
		method, family, upstream, unsub string
		shared, resumable               bool
	}{
		{"chain_subscribeNewHeads", "newHeads", "chain_subscribeNewHeads", "chain_unsubscribeNewHeads", true, true},
		{"subscribe_newHead", "newHeads", "chain_subscribeNewHeads", "chain_unsubscribeNewHeads", true, true},
		{"chain_subscribeFinalisedHeads", "finalizedHeads", "chain_subscribeFinalizedHeads", "chain_unsubscribeFinalizedHeads", true, true},
		{"chain_subscribeRuntimeVersion", "runtimeVersion", "state_subscribeRuntimeVersion", "state_unsubscribeRuntimeVersion", true, true},
		{"author_submitAndWatchExtrinsic", "extrinsic", "author_submitAndWatchExtrinsic", "author_unwatchExtrinsic", false, false},
		{"chainHead_v1_follow", "chainHead", "chainHead_v1_follow", "chainHead_v1_unfollow", false, false},
		{"eth_subscribe", "eth", "eth_subscribe", "eth_unsubscribe", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.method, func(t *testing.T) {
			f, ok := LookupSubscribe(tc.method)
			if !ok {
				t.Fatal("not found")
			}
			if f.Name != tc.family || f.Subscribe != tc.upstream || f.Unsubscribe != tc.unsub || f.Shared != tc.shared || f.Resumable != tc.resumable {
				t.Fatalf("got %+v", f)
			}
		})
	}
	if _, ok := LookupSubscribe("chain_getHeader"); ok {
		t.Fatal("a plain call is not a subscription")
	}
}

func TestUnsubscribeAliasesShareAFamily(t *testing.T) {
	for _, m := range []string{"chain_unsubscribeNewHeads", "chain_unsubscribeNewHead", "unsubscribe_newHead"} {
		if f, ok := LookupUnsubscribe(m); !ok || f != "newHeads" {
			t.Errorf("%s: %q %v", m, f, ok)
		}
	}
}

func TestIsSubscriptionMethod(t *testing.T) {
	cases := map[string]bool{
		"chain_subscribeNewHeads":  true,
		"state_unsubscribeStorage": true,
		"myPallet_subscribeEvents": true, // chain-specific, by Substrate's naming
		"myPallet_unsubscribeX":    true,
		"chain_getHeader":          false,
		"subscription":             false,
		"rpc_methods":              false,
	}
	for m, want := range cases {
		if got := IsSubscriptionMethod(m); got != want {
			t.Errorf("%s: %v, want %v", m, got, want)
		}
	}
}

func TestGuessUnsubscribe(t *testing.T) {
	cases := map[string]string{
		"myPallet_subscribeEvents": "myPallet_unsubscribeEvents",
		"a_subscribe":              "a_unsubscribe",
		"nothing":                  "",
	}
	for in, want := range cases {
		if got := guessUnsubscribe(in); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

func TestCanonicalParams(t *testing.T) {
	storage, _ := LookupSubscribe("state_subscribeStorage")
	heads, _ := LookupSubscribe("chain_subscribeNewHeads")
	cases := []struct {
		name   string
		fam    Family
		params string
		want   string
		bad    bool
	}{
		{"no params", heads, ``, `[]`, false},
		{"empty array", heads, `[]`, `[]`, false},
		{"null", heads, `null`, `[]`, false},
		{"storage keys sorted, deduplicated, lower-cased", storage, `[["0xBB","0xaa","0xbb"]]`, `[["0xaa","0xbb"]]`, false},
		{"storage all keys", storage, `[null]`, `[]`, false},
		{"storage keys are kept apart", storage, `[["0x12"]]`, `[["0x12"]]`, false},
		{"storage one key vs two", storage, `[["0x1","0x2"]]`, `[["0x1","0x2"]]`, false},
		{"storage key not hex", storage, `[["abc"]]`, ``, true},
		{"storage keys not an array", storage, `["0x12"]`, ``, true},
		{"storage extra params", storage, `[["0x12"],"0xhash"]`, ``, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := canonicalParams(tc.fam, json.RawMessage(tc.params))
			if tc.bad {
				if err == nil {
					t.Fatalf("accepted: %s", got)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %s %v, want %s", got, err, tc.want)
			}
		})
	}
}
