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
	// ErrSubscriptionFailed means the node ended a subscription with an
	// error notification; the error wraps the node's error as well.
	ErrSubscriptionFailed = errors.New("upstream node ended the subscription with an error")
	// ErrNoSubscriptions means the node's transport has no notifications.
	ErrNoSubscriptions = errors.New("upstream node has no WebSocket transport for subscriptions")
)
