// Package suber is the upstream side of the gateway: connections to
// Substrate nodes. A Node keeps a small pool of WebSocket connections and
// multiplexes every client's calls over them, rewriting request ids so any
// number of clients share a few sockets. Connections reconnect with backoff
// and jitter, are kept alive with pings, and every call has a deadline.
// A Group spreads calls over the nodes of one chain.
package suber
