package suber

import "errors"

var (
	// ErrUnavailable means no connection to any suitable node is up.
	ErrUnavailable = errors.New("no upstream node available")
	// ErrConnectionLost means the connection carrying a call or a
	// subscription closed before it completed.
	ErrConnectionLost = errors.New("upstream connection lost")
	// ErrClosed means the node or group was shut down.
	ErrClosed = errors.New("upstream closed")
	// ErrNoSubscriptions means the node's transport has no notifications.
	ErrNoSubscriptions = errors.New("upstream node has no WebSocket transport for subscriptions")
)
