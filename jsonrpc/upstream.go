package jsonrpc

import "encoding/json"

// Message is any message a node sends: a response (ID set) or a
// subscription notification (Method and Params.Subscription set).
type Message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *Error          `json:"error"`
	Params struct {
		Subscription json.RawMessage `json:"subscription"`
		Result       json.RawMessage `json:"result"`
		Error        json.RawMessage `json:"error"`
	} `json:"params"`
}

// IsNotification reports whether m is a subscription notification.
func (m *Message) IsNotification() bool {
	return m.ID == nil && m.Method != "" && m.Params.Subscription != nil
}

// NotificationResult is the payload of a notification: its result, or the
// error object some nodes send in its place when a subscription fails.
func (m *Message) NotificationResult() json.RawMessage {
	if m.Params.Result != nil {
		return m.Params.Result
	}
	return m.Params.Error
}
