package suber

import (
	"crypto/tls"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Options tune one upstream node.
type Options struct {
	// PoolSize is how many WebSocket connections to keep to the node.
	PoolSize int
	// DialTimeout bounds one connection attempt, handshake included.
	DialTimeout time.Duration
	// PingInterval is how often a WebSocket ping is sent; a connection that
	// shows no traffic for two intervals is considered dead.
	PingInterval time.Duration
	// ReadLimit is the largest message accepted from the node.
	ReadLimit int64
	// BackoffMin and BackoffMax bound the wait between reconnect attempts;
	// the wait doubles on each failure and is jittered.
	BackoffMin, BackoffMax time.Duration
	// HealthInterval is how often the node's system_health is polled
	// (and, for HTTP nodes, its heads).
	HealthInterval time.Duration
	// TLS configures wss:// and https:// connections: trusted roots,
	// client certificate, server name. Nil uses the system's roots.
	TLS *tls.Config
	// Header is sent on every WebSocket handshake and HTTP call, e.g. a
	// provider's API key. Its values are never logged.
	Header http.Header
	// Logger receives connection events.
	Logger *zap.Logger
	// Observer, when set, is told of every request sent to the node.
	Observer Observer
	// MaxSubscriptionsPerConnection is how many subscriptions one
	// connection is given before another is used (default 1000, below
	// polkadot-sdk's 1024 per connection).
	MaxSubscriptionsPerConnection int
	// MaxExtraConnections bounds the connections opened beyond PoolSize
	// when the pool's hold all the subscriptions they may (default 16).
	MaxExtraConnections int
	// ExtraIdle is how long an extra connection stays open without a
	// subscription (default 30s).
	ExtraIdle time.Duration
}

// Observer watches the requests sent to a node (calls, subscribes,
// unsubscribes, health checks), for metrics.
type Observer interface {
	// Observe runs on the caller's goroutine once a request is answered
	// or has failed: err is nil, the node's *jsonrpc.Error, or why no
	// answer came.
	Observe(took time.Duration, err error)
}

// Defaults for Options fields left zero.
const (
	DefaultPoolSize       = 4
	DefaultDialTimeout    = 5 * time.Second
	DefaultPingInterval   = 20 * time.Second
	DefaultReadLimit      = 64 << 20
	DefaultBackoffMin     = 200 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	DefaultHealthInterval = 5 * time.Second
)

func (o Options) withDefaults() Options {
	if o.PoolSize <= 0 {
		o.PoolSize = DefaultPoolSize
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = DefaultReadLimit
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = DefaultBackoffMin
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = DefaultBackoffMax
		if o.BackoffMax < o.BackoffMin {
			o.BackoffMax = o.BackoffMin
		}
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = DefaultHealthInterval
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.MaxSubscriptionsPerConnection <= 0 {
		o.MaxSubscriptionsPerConnection = DefaultMaxSubscriptionsPerConnection
	}
	if o.MaxExtraConnections < 0 {
		o.MaxExtraConnections = 0
	} else if o.MaxExtraConnections == 0 {
		o.MaxExtraConnections = DefaultMaxExtraConnections
	}
	if o.ExtraIdle <= 0 {
		o.ExtraIdle = DefaultExtraIdle
	}
	return o
}
