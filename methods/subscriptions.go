package methods

import (
	"slices"
	"strings"
)

// Subscription pairs a subscribe method with the method that ends what it
// opens. An entry without Subscribe only names another method that ends
// the family's subscriptions (a client-side alias).
type Subscription struct {
	Subscribe, Unsubscribe, Family string
}

// subscriptions are the subscription methods Substrate, polkadot-sdk and
// Frontier nodes serve, with their legacy aliases; entries of one Family
// are aliases of each other.
var subscriptions = []Subscription{
	{"chain_subscribeNewHeads", "chain_unsubscribeNewHeads", "newHeads"},
	{"chain_subscribeNewHead", "chain_unsubscribeNewHead", "newHeads"},
	{"subscribe_newHead", "unsubscribe_newHead", "newHeads"},
	{"chain_subscribeAllHeads", "chain_unsubscribeAllHeads", "allHeads"},
	{"chain_subscribeFinalizedHeads", "chain_unsubscribeFinalizedHeads", "finalizedHeads"},
	{"chain_subscribeFinalisedHeads", "chain_unsubscribeFinalisedHeads", "finalizedHeads"},
	{"state_subscribeRuntimeVersion", "state_unsubscribeRuntimeVersion", "runtimeVersion"},
	{"chain_subscribeRuntimeVersion", "chain_unsubscribeRuntimeVersion", "runtimeVersion"},
	{"state_subscribeStorage", "state_unsubscribeStorage", "storage"},
	{"grandpa_subscribeJustifications", "grandpa_unsubscribeJustifications", "grandpaJustifications"},
	{"beefy_subscribeJustifications", "beefy_unsubscribeJustifications", "beefyJustifications"},
	{"author_submitAndWatchExtrinsic", "author_unwatchExtrinsic", "extrinsic"},
	{"transactionWatch_v1_submitAndWatch", "transactionWatch_v1_unwatch", "transactionWatch"},
	{"transactionWatch_unstable_submitAndWatch", "transactionWatch_unstable_unwatch", "transactionWatchUnstable"},
	{"chainHead_v1_follow", "chainHead_v1_unfollow", "chainHead"},
	{"chainHead_unstable_follow", "chainHead_unstable_unfollow", "chainHeadUnstable"},
	// The archive methods that answer with notifications. polkadot-sdk
	// names the stop of storageDiff <method>_stopStorageDiff; the spec
	// names it archive_*_stopStorageDiff, accepted from clients as well.
	{"archive_v1_storage", "archive_v1_stopStorage", "archiveStorage"},
	{"archive_v1_storageDiff", "archive_v1_storageDiff_stopStorageDiff", "archiveStorageDiff"},
	{"", "archive_v1_stopStorageDiff", "archiveStorageDiff"},
	{"archive_unstable_storageDiff", "archive_unstable_storageDiff_stopStorageDiff", "archiveStorageDiffUnstable"},
	{"", "archive_unstable_stopStorageDiff", "archiveStorageDiffUnstable"},
	{"eth_subscribe", "eth_unsubscribe", "eth"},
}

var (
	bySubscribe   = map[string]Subscription{}
	byUnsubscribe = map[string]Subscription{}
	// starters holds, per family, its subscribe methods (aliases).
	starters = map[string][]string{}
	enders   = map[string][]string{}
)

func init() {
	for _, s := range subscriptions {
		if s.Subscribe != "" {
			bySubscribe[s.Subscribe] = s
			starters[s.Family] = append(starters[s.Family], s.Subscribe)
		}
		byUnsubscribe[s.Unsubscribe] = s
		enders[s.Family] = append(enders[s.Family], s.Unsubscribe)
	}
	initAliases()
}

// Subscriptions returns every entry of the catalogue.
func Subscriptions() []Subscription { return slices.Clone(subscriptions) }

// LookupSubscribe returns the entry of a known subscribe method.
func LookupSubscribe(method string) (Subscription, bool) {
	s, ok := bySubscribe[method]
	return s, ok
}

// LookupUnsubscribe returns the entry of a known method that ends a
// subscription.
func LookupUnsubscribe(method string) (Subscription, bool) {
	s, ok := byUnsubscribe[method]
	return s, ok
}

// IsSubscription reports whether method opens or ends a subscription,
// including chain-specific ones that follow Substrate's naming
// (`x_subscribeY` / `x_unsubscribeY`).
func IsSubscription(method string) bool {
	if _, ok := bySubscribe[method]; ok {
		return true
	}
	if _, ok := byUnsubscribe[method]; ok {
		return true
	}
	_, name, ok := strings.Cut(method, "_")
	return ok && (strings.HasPrefix(name, "subscribe") || strings.HasPrefix(name, "unsubscribe"))
}

// IsUnsubscribeName reports whether method ends a subscription by
// Substrate's naming (`x_unsubscribeY`), known to the catalogue or not.
func IsUnsubscribeName(method string) bool {
	if _, ok := byUnsubscribe[method]; ok {
		return true
	}
	_, name, ok := strings.Cut(method, "_")
	return ok && strings.HasPrefix(name, "unsubscribe")
}
