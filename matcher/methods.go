package matcher

import "github.com/elara-gateway/elara/methods"

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

// families add what the matcher does with each subscription family of
// the catalogue (package methods) to the methods that open and end it.
var (
	families = map[string]Family{
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

// LookupSubscribe reports whether method opens a subscription, and how.
func LookupSubscribe(method string) (Family, bool) {
	e, ok := methods.LookupSubscribe(method)
	if !ok {
		return Family{}, false
	}
	f := families[e.Family]
	f.Name = e.Family
	if !f.Shared {
		f.Subscribe, f.Unsubscribe = e.Subscribe, e.Unsubscribe
	}
	return f, true
}

// LookupUnsubscribe reports whether method closes a subscription, and
// the family it closes.
func LookupUnsubscribe(method string) (family string, ok bool) {
	e, ok := methods.LookupUnsubscribe(method)
	return e.Family, ok
}

// IsSubscriptionMethod reports whether method opens or closes a
// subscription, including chain-specific ones that follow Substrate's
// naming (`x_subscribeY` / `x_unsubscribeY`).
func IsSubscriptionMethod(method string) bool { return methods.IsSubscription(method) }
