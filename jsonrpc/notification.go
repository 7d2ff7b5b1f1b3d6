package jsonrpc

import "encoding/json"

// Notification is a subscription notification encoded once for every
// client that shares it: only the subscription id differs between their
// frames, so each frame is the shared head, the client's id and the
// shared tail, copied into one allocation of the exact size.
type Notification struct {
	head, tail []byte
}

// NewNotification encodes the parts of a notification every subscriber
// shares. result must be valid JSON.
func NewNotification(method string, result json.RawMessage) Notification {
	head := make([]byte, 0, 64+len(method))
	head = append(head, `{"jsonrpc":"2.0","method":`...)
	head = appendString(head, method)
	head = append(head, `,"params":{"subscription":`...)
	tail := make([]byte, 0, len(`,"result":`)+len(orNull(result))+2)
	tail = append(tail, `,"result":`...)
	tail = append(tail, orNull(result)...)
	tail = append(tail, "}}"...)
	return Notification{head: head, tail: tail}
}

// For returns the frame for one subscription id: exactly what
// AppendNotification(nil, method, subscription, result) returns.
func (n Notification) For(subscription json.RawMessage) []byte {
	return n.AppendFor(make([]byte, 0, n.Len(subscription)), subscription)
}

// Len is the size of the frame for one subscription id.
func (n Notification) Len(subscription json.RawMessage) int {
	return len(n.head) + len(subscription) + len(n.tail)
}

// AppendFor appends the frame for one subscription id to dst.
func (n Notification) AppendFor(dst []byte, subscription json.RawMessage) []byte {
	dst = append(dst, n.head...)
	dst = append(dst, subscription...)
	return append(dst, n.tail...)
}
