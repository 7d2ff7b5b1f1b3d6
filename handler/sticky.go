package handler

import (
	"context"
	"encoding/json"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/matcher"
	"github.com/elara-gateway/elara/methods"
	"github.com/elara-gateway/elara/suber"
)

// Calls scoped to state one node holds must reach that node: chainHead
// calls name a follow subscription; transaction_v1_stop names a broadcast.

// callFollowScoped sends a chainHead call to the connection holding the
// client's follow subscription, with the node's subscription id in place
// of the one the client knows.
func (s *wsSession) callFollowScoped(ctx context.Context, req *jsonrpc.Request) answer {
	var params []json.RawMessage
	if err := json.Unmarshal(req.Params, &params); err != nil || len(params) == 0 {
		return reply(req, nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Invalid params: expected the followSubscription first"))
	}
	// The session lock is released before the subscription's is taken:
	// deliveries take them the other way round.
	var sub *matcher.ClientSub
	if key, ok := subKey(params[0]); ok {
		s.mu.Lock()
		sub = s.subs[key]
		s.mu.Unlock()
	}
	if sub != nil && sub.SharedFollow() {
		return s.callSharedFollow(ctx, req, sub, params)
	}
	var up *suber.Subscription
	if sub != nil {
		up = sub.Upstream()
	}
	if up == nil {
		return reply(req, nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Invalid followSubscription"))
	}
	params[0] = up.ID()
	rewritten, err := json.Marshal(params)
	if err != nil {
		return reply(req, nil, jsonrpc.ErrInvalidRequest)
	}
	ctx, cancel := context.WithTimeout(ctx, s.route().chain.RequestTimeout())
	defer cancel()
	// The call waits for the client's turn on the chain's nodes, as any
	// other client call does, though it must reach this connection.
	done, err := s.route().chain.Upstream.Scheduler().Acquire(ctx)
	if err != nil {
		a := reply(req, nil, s.handler().clientError(s.route(), req.Method, err))
		a.node = up.Node().String()
		return a
	}
	defer done()
	if !methods.IsOperation(req.Method) {
		result, err := up.Call(ctx, req.Method, rewritten)
		a := reply(req, result, nil)
		if err != nil {
			a = reply(req, nil, s.handler().clientError(s.route(), req.Method, err))
		}
		a.node = up.Node().String()
		return a
	}
	// The operation's events wait until its reply is queued.
	op := sub.NewOperation(func(id json.RawMessage) { s.stopOperation(up, req.Method, id) })
	result, err := up.CallThen(ctx, req.Method, rewritten, op.Replied)
	var a answer
	if err != nil {
		a = reply(req, nil, s.handler().clientError(s.route(), req.Method, err))
	} else {
		a = reply(req, result, nil)
	}
	a.after = op.Release
	a.node = up.Node().String()
	return a
}

// stopOperation stops on the node an operation the client must not hear
// of (cut short, or started after the gateway gave up on its call).
func (s *wsSession) stopOperation(up *suber.Subscription, method string, id json.RawMessage) {
	stop := methods.StopOperation(method)
	params, err := json.Marshal([]json.RawMessage{up.ID(), id})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.route().chain.RequestTimeout())
	defer cancel()
	if _, err := up.Call(ctx, stop, params); err != nil {
		if ce := s.logger().Check(zap.DebugLevel, "stopping a chainHead operation failed"); ce != nil {
			ce.Write(zap.String("method", stop), zap.Error(err))
		}
	}
}

// isBroadcast reports whether method starts a transaction broadcast.
func isBroadcast(method string) bool {
	_, ok := methods.BroadcastStop(method)
	return ok
}

// broadcastOp is a broadcast a client started: the node running it and
// the stop method of the family that started it.
type broadcastOp struct {
	node *suber.Node
	stop string
}

// broadcast starts a transaction broadcast and remembers which node runs
// it, so that its stop reaches the same node.
func (s *wsSession) broadcast(ctx context.Context, req *jsonrpc.Request) answer {
	ctx, cancel := context.WithTimeout(ctx, s.route().chain.RequestTimeout())
	defer cancel()
	result, node, err := s.route().chain.Upstream.CallNode(ctx, req.Method, req.Params)
	if err != nil {
		a := reply(req, nil, s.handler().clientError(s.route(), req.Method, err))
		if node != nil {
			a.node = node.String()
		}
		return a
	}
	if string(result) != "null" {
		stop, _ := methods.BroadcastStop(req.Method)
		s.mu.Lock()
		if s.operations == nil {
			s.operations = make(map[string]broadcastOp)
		}
		if len(s.operations) < s.handler().MaxSubscriptions {
			s.operations[string(result)] = broadcastOp{node: node, stop: stop}
		}
		s.mu.Unlock()
	}
	a := reply(req, result, nil)
	a.node = node.String()
	return a
}

// stopBroadcast stops a broadcast on the node running it, with the stop
// method of the family that started it (a v1 stop of an unstable
// broadcast goes up as transaction_unstable_stop). Ids of broadcasts the
// client did not start are answered here: no node runs them for it.
func (s *wsSession) stopBroadcast(ctx context.Context, req *jsonrpc.Request) answer {
	var params []json.RawMessage
	_ = json.Unmarshal(req.Params, &params)
	var op broadcastOp
	if len(params) == 1 {
		s.mu.Lock()
		op = s.operations[string(params[0])]
		delete(s.operations, string(params[0]))
		s.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(ctx, s.route().chain.RequestTimeout())
	defer cancel()
	if op.node == nil {
		return reply(req, nil, errUnknownOperation)
	}
	result, err := op.node.Call(ctx, op.stop, req.Params)
	a := reply(req, result, nil)
	if err != nil {
		a = reply(req, nil, s.handler().clientError(s.route(), req.Method, err))
	}
	a.node = op.node.String()
	return a
}

// stopBroadcasts stops the broadcasts a departed client left running:
// nodes count them per connection, and the connections are shared.
func (s *wsSession) stopBroadcasts(ops map[string]broadcastOp) {
	if len(ops) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.route().chain.RequestTimeout())
	defer cancel()
	for id, op := range ops {
		_, _ = op.node.Call(ctx, op.stop, json.RawMessage("["+id+"]"))
	}
}
