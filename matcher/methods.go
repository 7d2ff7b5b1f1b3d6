package matcher

import "strings"

// Family describes one kind of subscription: how it is opened and closed.
type Family struct {
	// Name identifies the family; aliases of one method share it.
	Name string
	// Unsubscribe is the method that closes a subscription opened with the
	// matching subscribe method (aliases pair up: chain_subscribeNewHead
	// is closed by chain_unsubscribeNewHead).
	Unsubscribe string
	// Resumable subscriptions can be re-opened on another connection
	// without the client noticing; the others end when their node is lost.
	Resumable bool
	// Shared subscriptions are opened once upstream per distinct params
	// and fanned out to every client that asks for the same thing.
	Shared bool
	// Subscribe is the method used upstream for shared subscriptions,
	// whichever alias the client used.
	Subscribe string
	// LostEvent, for subscriptions that cannot resume, is the notification
	// result that tells the client it ended (nil: the client is not told).
	LostEvent []byte
	// Notification is the method of the family's notifications (set where
	// LostEvent is): a LostEvent is sent with it, as the node would.
	Notification string
}

// entry pairs a subscribe method with the method that ends it; an entry
// without subscribe only names another method that ends the family's
// subscriptions (a client-side alias).
type entry struct {
	subscribe, unsubscribe, family string
}

// The subscription methods Substrate, polkadot-sdk and Frontier nodes
// serve, with their legacy aliases.
var known = []entry{
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
	bySubscribe   = map[string]entry{}
	byUnsubscribe = map[string]entry{}
	families      = map[string]Family{
		"newHeads":              {Resumable: true, Shared: true, Subscribe: "chain_subscribeNewHeads", Unsubscribe: "chain_unsubscribeNewHeads"},
		"allHeads":              {Resumable: true, Shared: true, Subscribe: "chain_subscribeAllHeads", Unsubscribe: "chain_unsubscribeAllHeads"},
		"finalizedHeads":        {Resumable: true, Shared: true, Subscribe: "chain_subscribeFinalizedHeads", Unsubscribe: "chain_unsubscribeFinalizedHeads"},
		"runtimeVersion":        {Resumable: true, Shared: true, Subscribe: "state_subscribeRuntimeVersion", Unsubscribe: "state_unsubscribeRuntimeVersion"},
		"storage":               {Resumable: true, Shared: true, Subscribe: "state_subscribeStorage", Unsubscribe: "state_unsubscribeStorage"},
		"grandpaJustifications": {Resumable: true, Shared: true, Subscribe: "grandpa_subscribeJustifications", Unsubscribe: "grandpa_unsubscribeJustifications"},
		"beefyJustifications":   {Resumable: true},
		"eth":                   {Resumable: true},
		// The events the specs define for a watch or an operation that
		// cannot continue. None of these resumes on another node: a
		// transaction watch or chainHead follow is bound to its node, and
		// an archive operation started again would repeat its events.
		"extrinsic": {LostEvent: []byte(`"dropped"`), Notification: "author_extrinsicUpdate"},
		"transactionWatch": {LostEvent: []byte(`{"event":"dropped","error":"upstream node lost"}`),
			Notification: "transactionWatch_v1_watchEvent"},
		// The unstable dropped event says whether the transaction was
		// broadcast; it may have been, so it may still be included.
		"transactionWatchUnstable": {LostEvent: []byte(`{"event":"dropped","broadcasted":true,"error":"upstream node lost"}`),
			Notification: "transactionWatch_unstable_watchEvent"},
		"chainHead":         {LostEvent: []byte(`{"event":"stop"}`), Notification: "chainHead_v1_followEvent"},
		"chainHeadUnstable": {LostEvent: []byte(`{"event":"stop"}`), Notification: "chainHead_unstable_followEvent"},
		"archiveStorage": {LostEvent: []byte(`{"event":"storageError","error":"upstream node lost"}`),
			Notification: "archive_v1_storageEvent"},
		"archiveStorageDiff": {LostEvent: []byte(`{"event":"storageDiffError","error":"upstream node lost"}`),
			Notification: "archive_v1_storageDiffEvent"},
		"archiveStorageDiffUnstable": {LostEvent: []byte(`{"event":"storageDiffError","error":"upstream node lost"}`),
			Notification: "archive_unstable_storageDiffEvent"},
	}
)

func init() {
	for _, e := range known {
		if e.subscribe != "" {
			bySubscribe[e.subscribe] = e
		}
		byUnsubscribe[e.unsubscribe] = e
	}
}

// LookupSubscribe reports whether method opens a subscription, and how.
func LookupSubscribe(method string) (Family, bool) {
	e, ok := bySubscribe[method]
	if !ok {
		return Family{}, false
	}
	f := families[e.family]
	f.Name = e.family
	if !f.Shared {
		f.Subscribe, f.Unsubscribe = e.subscribe, e.unsubscribe
	}
	return f, true
}

// LookupUnsubscribe reports whether method closes a subscription, and
// the family it closes.
func LookupUnsubscribe(method string) (family string, ok bool) {
	e, ok := byUnsubscribe[method]
	return e.family, ok
}

// IsSubscriptionMethod reports whether method opens or closes a
// subscription, including chain-specific ones that follow Substrate's
// naming (`x_subscribeY` / `x_unsubscribeY`).
func IsSubscriptionMethod(method string) bool {
	if _, ok := bySubscribe[method]; ok {
		return true
	}
	if _, ok := byUnsubscribe[method]; ok {
		return true
	}
	_, name, ok := strings.Cut(method, "_")
	return ok && (strings.HasPrefix(name, "subscribe") || strings.HasPrefix(name, "unsubscribe"))
}

// Methods lists every subscribe and unsubscribe method the gateway knows.
func Methods() []string {
	out := make([]string, 0, 2*len(known))
	for _, e := range known {
		if e.subscribe != "" {
			out = append(out, e.subscribe)
		}
		out = append(out, e.unsubscribe)
	}
	return out
}
