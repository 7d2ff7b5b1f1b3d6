package handler

import (
	"context"
	"encoding/json"

	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/matcher"
)

// callSharedFollow serves a chainHead call naming a client follow that
// shares an upstream follow with others (matcher/follow.go): the matcher
// checks the client's pins and operations and runs it upstream.
func (s *wsSession) callSharedFollow(ctx context.Context, req *jsonrpc.Request, sub *matcher.ClientSub, params []json.RawMessage) answer {
	b := s.b.Load()
	ctx, cancel := context.WithTimeout(ctx, b.rt.chain.RequestTimeout())
	defer cancel()
	result, node, after, err := sub.FollowCall(ctx, req.Method, params)
	// The matcher's own refusals (a block the client does not hold) are
	// JSON-RPC errors and pass through clientError as they are.
	a := reply(req, result, nil)
	if err != nil {
		a = reply(req, nil, b.h.clientError(b.rt, req.Method, err))
	}
	a.after = after
	if node != nil {
		a.node = node.String()
	}
	return a
}
