package methods

// aliasGroups are the plain (not subscription) methods nodes serve under
// more than one name; the first is the canonical one.
var aliasGroups = [][]string{
	{"chain_getBlockHash", "chain_getHead"},
	{"chain_getFinalizedHead", "chain_getFinalisedHead"},
	{"state_getRuntimeVersion", "chain_getRuntimeVersion"},
	{"state_getStorage", "state_getStorageAt"},
	{"state_getStorageHash", "state_getStorageHashAt"},
	{"state_getStorageSize", "state_getStorageSizeAt"},
	{"state_getKeysPaged", "state_getKeysPagedAt"},
	{"state_call", "state_callAt"},
}

var aliasOf = map[string][]string{}

// initAliases runs once the subscription families are known.
func initAliases() {
	for _, g := range aliasGroups {
		for _, m := range g {
			aliasOf[m] = g
		}
	}
	// Subscription methods: the subscribe aliases of a family are one
	// group, and its unsubscribe aliases another.
	for _, s := range subscriptions {
		if s.Subscribe != "" {
			aliasOf[s.Subscribe] = starters[s.Family]
		}
		aliasOf[s.Unsubscribe] = enders[s.Family]
	}
}

// Aliases returns every name of method, itself included (first when it
// has no other). The result must not be modified.
func Aliases(method string) []string {
	if g, ok := aliasOf[method]; ok {
		return g
	}
	return []string{method}
}

// Ender reports whether method ends something a client started itself (a
// subscription, a watch, a follow, a broadcast, a chainHead operation),
// and returns the methods that start it. A client may always end what it
// holds, so the policy admits an ender whenever it admits one of these.
func Ender(method string) (starts []string, ok bool) {
	if s, ok := byUnsubscribe[method]; ok {
		return starters[s.Family], len(starters[s.Family]) > 0
	}
	if b, ok := broadcastByStop[method]; ok {
		return []string{b}, true
	}
	if f, ok := followOfStopOperation[method]; ok {
		return []string{f}, true
	}
	return nil, false
}
