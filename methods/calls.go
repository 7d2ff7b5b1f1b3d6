package methods

import "strings"

// broadcasts maps each transaction broadcast method to the stop method of
// its own family: a broadcast started with the unstable method is stopped
// with the unstable stop.
var broadcasts = map[string]string{
	"transaction_v1_broadcast":       "transaction_v1_stop",
	"transaction_unstable_broadcast": "transaction_unstable_stop",
}

var broadcastByStop = map[string]string{}

// followOfStopOperation maps chainHead stopOperation to its follow.
var followOfStopOperation = map[string]string{
	"chainHead_v1_stopOperation":       "chainHead_v1_follow",
	"chainHead_unstable_stopOperation": "chainHead_unstable_follow",
}

func init() {
	for b, stop := range broadcasts {
		broadcastByStop[stop] = b
	}
}

// BroadcastStop reports whether method starts a transaction broadcast,
// and the method that stops it.
func BroadcastStop(method string) (stop string, ok bool) {
	stop, ok = broadcasts[method]
	return stop, ok
}

// IsBroadcastStop reports whether method stops a transaction broadcast.
func IsBroadcastStop(method string) bool {
	_, ok := broadcastByStop[method]
	return ok
}

// IsFollowScoped reports whether method's first param is a chainHead
// follow subscription (all chainHead methods but follow and unfollow).
func IsFollowScoped(method string) bool {
	rest, ok := strings.CutPrefix(method, "chainHead_v1_")
	if !ok {
		rest, ok = strings.CutPrefix(method, "chainHead_unstable_")
	}
	return ok && rest != "follow" && rest != "unfollow"
}

// IsOperation reports whether method starts a chainHead operation, whose
// events follow its reply.
func IsOperation(method string) bool {
	switch method {
	case "chainHead_v1_body", "chainHead_v1_call", "chainHead_v1_storage",
		"chainHead_unstable_body", "chainHead_unstable_call", "chainHead_unstable_storage":
		return true
	}
	return false
}

// StopOperation returns the method that stops an operation started by
// method (of the same chainHead version).
func StopOperation(method string) string {
	if strings.HasPrefix(method, "chainHead_unstable_") {
		return "chainHead_unstable_stopOperation"
	}
	return "chainHead_v1_stopOperation"
}

// IsWrite reports whether method may change state on the node (submit a
// transaction, say): such calls are never retried on another node.
func IsWrite(method string) bool {
	return strings.HasPrefix(method, "author_") ||
		strings.HasPrefix(method, "transaction") ||
		strings.HasPrefix(method, "eth_send") ||
		strings.Contains(method, "submit") ||
		strings.Contains(method, "broadcast")
}

// NeverCached reports whether method's answers change with every call or
// come with side effects: no configuration may make a cache keep them.
func NeverCached(method string) bool {
	return strings.HasPrefix(method, "author_") ||
		method == "system_accountNextIndex" ||
		strings.Contains(method, "_subscribe") || strings.Contains(method, "_unsubscribe") ||
		strings.Contains(method, "_submit")
}
