// Package matcher binds client subscriptions to upstream ones. Each client
// subscription gets an id issued by the gateway; notifications from the
// node are re-addressed to it, and anything that arrives before the client
// has its subscribe reply is held back and delivered right after it.
package matcher
