package methods_test

import (
	"slices"
	"testing"

	"github.com/elara-gateway/elara/methods"
)

func TestAliases(t *testing.T) {
	cases := []struct {
		name, method string
		want         []string
	}{
		{"new heads subscribe", "subscribe_newHead", []string{"chain_subscribeNewHeads", "chain_subscribeNewHead", "subscribe_newHead"}},
		{"new heads unsubscribe", "chain_unsubscribeNewHead", []string{"chain_unsubscribeNewHeads", "chain_unsubscribeNewHead", "unsubscribe_newHead"}},
		{"finalised spelling", "chain_subscribeFinalisedHeads", []string{"chain_subscribeFinalizedHeads", "chain_subscribeFinalisedHeads"}},
		{"runtime version", "chain_subscribeRuntimeVersion", []string{"state_subscribeRuntimeVersion", "chain_subscribeRuntimeVersion"}},
		{"block hash", "chain_getHead", []string{"chain_getBlockHash", "chain_getHead"}},
		{"storage at", "state_getStorageAt", []string{"state_getStorage", "state_getStorageAt"}},
		{"no alias", "system_chain", []string{"system_chain"}},
		{"unknown", "foo_bar", []string{"foo_bar"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := slices.Clone(methods.Aliases(tc.method))
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("Aliases(%s) = %v, want %v", tc.method, got, want)
			}
		})
	}
}

func TestEnder(t *testing.T) {
	cases := []struct {
		method string
		starts string // one of the starts; "" = not an ender
	}{
		{"author_unwatchExtrinsic", "author_submitAndWatchExtrinsic"},
		{"unsubscribe_newHead", "chain_subscribeNewHeads"},
		{"transactionWatch_v1_unwatch", "transactionWatch_v1_submitAndWatch"},
		{"chainHead_v1_unfollow", "chainHead_v1_follow"},
		{"chainHead_v1_stopOperation", "chainHead_v1_follow"},
		{"transaction_v1_stop", "transaction_v1_broadcast"},
		{"transaction_unstable_stop", "transaction_unstable_broadcast"},
		{"archive_v1_stopStorageDiff", "archive_v1_storageDiff"},
		{"chain_subscribeNewHeads", ""},
		{"system_chain", ""},
	}
	for _, tc := range cases {
		t.Run(tc.method, func(t *testing.T) {
			starts, ok := methods.Ender(tc.method)
			if ok != (tc.starts != "") || tc.starts != "" && !slices.Contains(starts, tc.starts) {
				t.Fatalf("Ender(%s) = %v %v, want %q", tc.method, starts, ok, tc.starts)
			}
		})
	}
}

func TestBroadcastStopIsOfItsFamily(t *testing.T) {
	for b, want := range map[string]string{
		"transaction_v1_broadcast":       "transaction_v1_stop",
		"transaction_unstable_broadcast": "transaction_unstable_stop",
	} {
		if stop, ok := methods.BroadcastStop(b); !ok || stop != want {
			t.Errorf("BroadcastStop(%s) = %s %v, want %s", b, stop, ok, want)
		}
		if !methods.IsBroadcastStop(want) || !methods.IsWrite(b) {
			t.Errorf("%s / %s not classified", b, want)
		}
	}
}
