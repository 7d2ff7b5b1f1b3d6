package app

import (
	"context"
	"encoding/json"
)

// Call answers one call for a client of this chain: from the cache when
// it can, otherwise from a node.
func (c *Chain) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if c.Cache != nil {
		return c.Cache.Call(ctx, method, params)
	}
	return c.Upstream.Call(ctx, method, params)
}

// Caller answers calls, possibly from a cache.
type Caller interface {
	Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
}
