package matcher

import (
	"encoding/json"
	"testing"

	"github.com/elara-gateway/elara/methods"
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
		{"chainHead_unstable_follow", "chainHeadUnstable", "chainHead_unstable_follow", "chainHead_unstable_unfollow", false, false},
		{"transactionWatch_unstable_submitAndWatch", "transactionWatchUnstable", "transactionWatch_unstable_submitAndWatch", "transactionWatch_unstable_unwatch", false, false},
		{"archive_v1_storage", "archiveStorage", "archive_v1_storage", "archive_v1_stopStorage", false, false},
		{"archive_v1_storageDiff", "archiveStorageDiff", "archive_v1_storageDiff", "archive_v1_storageDiff_stopStorageDiff", false, false},
		{"archive_unstable_storageDiff", "archiveStorageDiffUnstable", "archive_unstable_storageDiff", "archive_unstable_storageDiff_stopStorageDiff", false, false},
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
	for _, m := range []string{"chain_getHeader", "archive_v1_body", "archive_v1_call", "transaction_v1_broadcast", ""} {
		if _, ok := LookupSubscribe(m); ok {
			t.Errorf("%q: a plain call is not a subscription", m)
		}
	}
}

// Subscriptions that end with their node tell the client so with the event
// their spec defines, sent as the node's notification method would be.
func TestLostEvents(t *testing.T) {
	cases := []struct {
		method, notification, event string
	}{
		{"author_submitAndWatchExtrinsic", "author_extrinsicUpdate", ""},
		{"transactionWatch_v1_submitAndWatch", "transactionWatch_v1_watchEvent", "dropped"},
		{"transactionWatch_unstable_submitAndWatch", "transactionWatch_unstable_watchEvent", "dropped"},
		{"chainHead_v1_follow", "chainHead_v1_followEvent", "stop"},
		{"chainHead_unstable_follow", "chainHead_unstable_followEvent", "stop"},
		{"archive_v1_storage", "archive_v1_storageEvent", "storageError"},
		{"archive_v1_storageDiff", "archive_v1_storageDiffEvent", "storageDiffError"},
		{"archive_unstable_storageDiff", "archive_unstable_storageDiffEvent", "storageDiffError"},
	}
	for _, tc := range cases {
		t.Run(tc.method, func(t *testing.T) {
			f, ok := LookupSubscribe(tc.method)
			if !ok {
				t.Fatal("not a subscription")
			}
			if f.Resumable || f.Shared {
				t.Errorf("resumable %v, shared %v", f.Resumable, f.Shared)
			}
			if f.Notification != tc.notification {
				t.Errorf("notification %q, want %q", f.Notification, tc.notification)
			}
			if tc.event == "" {
				if string(f.LostEvent) != `"dropped"` {
					t.Errorf("LostEvent %s", f.LostEvent)
				}
				return
			}
			var ev struct {
				Event       string `json:"event"`
				Error       string `json:"error"`
				Broadcasted *bool  `json:"broadcasted"`
			}
			if err := json.Unmarshal(f.LostEvent, &ev); err != nil || ev.Event != tc.event {
				t.Fatalf("LostEvent %s (%v), want event %q", f.LostEvent, err, tc.event)
			}
			if tc.event != "stop" && ev.Error == "" {
				t.Errorf("LostEvent %s has no error", f.LostEvent)
			}
			// Only the unstable watch's dropped event has broadcasted, and
			// the transaction may have been: true.
			unstableWatch := tc.method == "transactionWatch_unstable_submitAndWatch"
			if (ev.Broadcasted != nil) != unstableWatch || (unstableWatch && !*ev.Broadcasted) {
				t.Errorf("LostEvent %s: broadcasted", f.LostEvent)
			}
		})
	}
	// Every family with a LostEvent names its notification method.
	for name, f := range families {
		if (f.LostEvent != nil) != (f.Notification != "") {
			t.Errorf("family %s: LostEvent %s, Notification %q", name, f.LostEvent, f.Notification)
		}
		if f.LostEvent != nil && !json.Valid(f.LostEvent) {
			t.Errorf("family %s: LostEvent %s is not JSON", name, f.LostEvent)
		}
	}
}

// Every unsubscribe method, aliases included, closes a family that a
// subscribe method opens, and the one sent upstream is among them.
func TestUnsubscribeMethods(t *testing.T) {
	cases := map[string]string{
		"transactionWatch_unstable_unwatch":            "transactionWatchUnstable",
		"archive_v1_stopStorage":                       "archiveStorage",
		"archive_v1_storageDiff_stopStorageDiff":       "archiveStorageDiff",
		"archive_v1_stopStorageDiff":                   "archiveStorageDiff",
		"archive_unstable_storageDiff_stopStorageDiff": "archiveStorageDiffUnstable",
		"archive_unstable_stopStorageDiff":             "archiveStorageDiffUnstable",
		"chainHead_unstable_unfollow":                  "chainHeadUnstable",
	}
	for m, want := range cases {
		if f, ok := LookupUnsubscribe(m); !ok || f != want {
			t.Errorf("LookupUnsubscribe(%s) = %q %v, want %q", m, f, ok, want)
		}
		if !IsSubscriptionMethod(m) {
			t.Errorf("IsSubscriptionMethod(%s) = false", m)
		}
	}
	opened := map[string]bool{}
	for _, e := range methods.Subscriptions() {
		m := e.Subscribe
		if m == "" {
			continue
		}
		f, _ := LookupSubscribe(m)
		opened[f.Name] = true
		if fam, ok := LookupUnsubscribe(f.Unsubscribe); !ok || fam != f.Name {
			t.Errorf("%s: upstream unsubscribe %s closes %q", m, f.Unsubscribe, fam)
		}
	}
	for _, e := range methods.Subscriptions() {
		if !opened[e.Family] {
			t.Errorf("%s closes family %q that nothing opens", e.Unsubscribe, e.Family)
		}
	}
	if _, ok := methods.LookupSubscribe(""); ok {
		t.Error("an unsubscribe-only alias was registered as a subscribe method")
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
		"chain_subscribeNewHeads":                  true,
		"state_unsubscribeStorage":                 true,
		"myPallet_subscribeEvents":                 true, // chain-specific, by Substrate's naming
		"myPallet_unsubscribeX":                    true,
		"chain_getHeader":                          false,
		"archive_v1_storage":                       true, // new-spec names, no subscribe in them
		"archive_v1_storageDiff":                   true,
		"archive_unstable_storageDiff":             true,
		"transactionWatch_unstable_submitAndWatch": true,
		"archive_v1_body":                          false,
		"archive_v1_hashByHeight":                  false,
		"subscription":                             false,
		"rpc_methods":                              false,
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
		{"storage key with non-hex digits", storage, `[["0x12zz"]]`, ``, true},
		{"storage key 0X prefix", storage, `[["0X12"]]`, ``, true},
		{"storage key not a string", storage, `[[18]]`, ``, true},
		{"storage empty key", storage, `[["0x"]]`, `[["0x"]]`, false},
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
