// Package methods is the gateway's one catalogue of what it knows about
// Substrate JSON-RPC methods: which names are aliases of one method, which
// open and end subscriptions (and of which family), which start and stop
// transaction broadcasts, which are scoped to a chainHead follow
// subscription, which may change state on the node (writes) and which no
// cache may keep. The handler's policy, the matcher, the cache and the
// upstream pool all ask here, so a method is described once.
package methods
