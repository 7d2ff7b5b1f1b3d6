package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/matcher"
	"github.com/elara-gateway/elara/methods"
	"github.com/elara-gateway/elara/suber"
)

// answer is the outcome of one call: the reply to send (nil for a
// notification), work to run once the reply is queued, and what the
// metrics call the outcome.
type answer struct {
	reply   []byte
	after   func()
	outcome uint8
	// status and retryAfter are set on calls refused by access checks,
	// for the HTTP answer (see refusalStatus).
	status     int
	retryAfter int64
	// cacheHit and node say who answered (see CallInfo).
	cacheHit bool
	node     string
}

// runAfter runs what the answers leave for after their replies are sent.
func runAfter(answers []answer) {
	for _, a := range answers {
		if a.after != nil {
			a.after()
		}
	}
}

// dispatch serves one parsed entry.
func (h *Handler) dispatch(ctx context.Context, rt route, sess *wsSession, c jsonrpc.Call) answer {
	if c.Err != nil {
		return answer{reply: jsonrpc.AppendError(nil, c.ID, c.Err), outcome: outcomeOf(c.Err)}
	}
	req := c.Request
	if !h.policy.Allowed(req.Method) {
		a := reply(req, nil, jsonrpc.ErrMethodNotFound)
		a.outcome = outDenied
		return a
	}
	if matcher.IsSubscriptionMethod(req.Method) {
		if sess == nil {
			return reply(req, nil, jsonrpc.ErrSubscriptionsOnHTTP)
		}
		if methods.IsUnsubscribeName(req.Method) {
			return sess.unsubscribe(ctx, req)
		}
		return sess.subscribe(ctx, req)
	}
	if sess != nil {
		switch {
		case methods.IsFollowScoped(req.Method):
			return sess.callFollowScoped(ctx, req)
		case isBroadcast(req.Method):
			return sess.broadcast(ctx, req)
		case methods.IsBroadcastStop(req.Method):
			return sess.stopBroadcast(ctx, req)
		}
	} else if methods.IsFollowScoped(req.Method) {
		return reply(req, nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Invalid followSubscription"))
	} else if methods.IsBroadcastStop(req.Method) {
		// Over HTTP no broadcast is held: nothing to stop on any node.
		return reply(req, nil, errUnknownOperation)
	}
	ctx, cancel := context.WithTimeout(ctx, rt.chain.RequestTimeout())
	defer cancel()
	result, served, err := rt.chain.Serve(ctx, req.Method, req.Params)
	if err == nil && req.Method == "rpc_methods" {
		result, err = h.policy.FilterMethods(result)
		// A project's own allow/deny narrows the list further: clients are
		// never offered a method they would be refused.
		if err == nil && rt.acc != nil && rt.acc.policy != nil {
			result, err = rt.acc.policy.FilterMethods(result)
		}
	}
	var a answer
	switch {
	case errors.Is(err, suber.ErrTooManyPending):
		// Refused before any node saw it: a 429 over HTTP, like a limit.
		a = refusal(req, http.StatusTooManyRequests, 1, tooManyPending(rt))
	case err != nil:
		a = reply(req, nil, h.clientError(rt, req.Method, err))
	default:
		a = reply(req, result, nil)
	}
	a.cacheHit, a.node = served.Hit, served.Node
	return a
}

func reply(req *jsonrpc.Request, result json.RawMessage, e *jsonrpc.Error) answer {
	if req.IsNotification() {
		return answer{outcome: outcomeOf(e)}
	}
	if e != nil {
		return answer{reply: jsonrpc.AppendError(nil, req.ID, e), outcome: outcomeOf(e)}
	}
	return answer{reply: jsonrpc.AppendResult(nil, req.ID, result)}
}

// clientError turns an upstream failure into the error a client sees:
// the node's own JSON-RPC errors pass through; transport failures become
// gateway errors that say what happened without internal detail.
func (h *Handler) clientError(rt route, method string, err error) *jsonrpc.Error {
	if e, ok := suber.IsUpstreamError(err); ok {
		return e
	}
	switch {
	case errors.Is(err, suber.ErrTooManyPending):
		return tooManyPending(rt) // calls that skip dispatch's own check
	case errors.Is(err, context.DeadlineExceeded):
		h.rlog.warn(logUpstreamTimeout, "upstream call timed out",
			append(rt.logFields(), zap.String("method", method), zap.Duration("request_timeout", rt.chain.RequestTimeout()))...)
		return jsonrpc.NewError(jsonrpc.CodeUpstreamTimeout, "Upstream node did not answer in time")
	case errors.Is(err, context.Canceled):
		return jsonrpc.NewError(jsonrpc.CodeUpstreamUnavailable, "Request canceled")
	case errors.Is(err, suber.ErrUnavailable), errors.Is(err, suber.ErrConnectionLost),
		errors.Is(err, suber.ErrNoSubscriptions), errors.Is(err, suber.ErrNoReadyNode),
		errors.Is(err, suber.ErrClosed), errors.Is(err, matcher.ErrClosed):
		return jsonrpc.NewError(jsonrpc.CodeUpstreamUnavailable, "Upstream node unavailable: "+err.Error())
	}
	if ce := h.log.Check(zap.WarnLevel, "upstream call failed"); ce != nil {
		ce.Write(append(rt.logFields(), zap.String("method", method), zap.Error(err))...)
	}
	return jsonrpc.NewError(jsonrpc.CodeInternalError, fmt.Sprintf("Upstream call failed (%s)", method))
}
