package handler

import (
	"encoding/json"

	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/matcher"
	"github.com/elara-gateway/elara/methods"
)

// errUnknownOperation answers a broadcast stop naming no broadcast the
// client started, as polkadot-sdk answers an unknown operation id.
var errUnknownOperation = jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Invalid operation id")

// holdsEnded reports whether an ending call (methods.Ender) names
// something this session holds: a subscription of the method's family, a
// broadcast it started, or (for stopOperation) a follow it holds, whose
// node checks the operation id. Such a call is exempt from daily limits
// and suspension; any other ending call is admitted like any call and
// answered by the gateway, never by a node. Over HTTP nothing is held.
func (s *wsSession) holdsEnded(req *jsonrpc.Request) bool {
	if s == nil {
		return false
	}
	var params []json.RawMessage
	if json.Unmarshal(req.Params, &params) != nil || len(params) == 0 {
		return false
	}
	if methods.IsBroadcastStop(req.Method) {
		if len(params) != 1 {
			return false
		}
		s.mu.Lock()
		_, ok := s.operations[string(params[0])]
		s.mu.Unlock()
		return ok
	}
	key, ok := subKey(params[0])
	if !ok {
		return false
	}
	s.mu.Lock()
	sub := s.subs[key]
	s.mu.Unlock()
	if sub == nil {
		return false
	}
	if methods.IsFollowScoped(req.Method) { // chainHead stopOperation
		starts, _ := methods.Ender(req.Method)
		for _, follow := range starts {
			if f, ok := methods.LookupSubscribe(follow); ok && sub.Family().Unsubscribe == f.Unsubscribe {
				return true
			}
		}
		return false
	}
	family, _ := matcher.LookupUnsubscribe(req.Method)
	return sub.Family().Name == family || sub.Family().Unsubscribe == req.Method
}
