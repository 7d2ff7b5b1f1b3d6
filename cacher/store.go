package cacher

import (
	"context"
	"errors"
	"time"
)

// ErrMiss is returned by Store.Get when the key holds nothing.
var ErrMiss = errors.New("cache miss")

// ErrStoreUnavailable is returned while a remote store is known to be down.
var ErrStoreUnavailable = errors.New("cache store unavailable")

// Store keeps raw JSON results by key. Implementations are safe for
// concurrent use. A Store error is never fatal: callers treat it as a miss.
type Store interface {
	// Get returns the value under key, ErrMiss, or another error when the
	// store could not be asked.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key. The store may decline (too big for the
	// entry's share); that is not an error.
	Set(ctx context.Context, key string, value []byte, opts SetOptions) error
	// Close releases the store's resources.
	Close() error
}

// SetOptions describe one entry.
type SetOptions struct {
	// TTL bounds the entry's life; 0 means no expiry (memory store only:
	// remote stores always get a TTL from the cache).
	TTL time.Duration
	// Chain and Method label the entry for accounting and metrics.
	Chain, Method string
	// Share is the fraction (0, 1] of the store's capacity that the
	// entries of one chain and method may use together. 0 means 1.
	Share float64
}
