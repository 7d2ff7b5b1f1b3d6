package app

import (
	"context"
	"encoding/json"

	"github.com/elara-gateway/elara/cacher"
	"github.com/elara-gateway/elara/suber"
)

// Call answers one call for a client of this chain: from the cache when
// it can, otherwise from a node.
func (c *Chain) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if cache := c.cache.Load(); cache != nil {
		return cache.Call(ctx, method, params)
	}
	return c.Upstream.Call(ctx, method, params)
}

// Serve is Call that also says how the call was answered: from the
// cache, or by which node.
func (c *Chain) Serve(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, cacher.Served, error) {
	if cache := c.cache.Load(); cache != nil {
		return cache.Serve(ctx, method, params)
	}
	v, node, err := callFrom(c.Upstream, ctx, method, params)
	return v, cacher.Served{Node: node}, err
}

// callFrom calls a node of g and names the one that answered (its
// address without credentials).
func callFrom(g *suber.Group, ctx context.Context, method string, params json.RawMessage) (json.RawMessage, string, error) {
	v, n, err := g.CallFrom(ctx, method, params)
	if n == nil {
		return v, "", err
	}
	return v, n.String(), err
}

// Caller answers calls, possibly from a cache.
type Caller interface {
	Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
}
