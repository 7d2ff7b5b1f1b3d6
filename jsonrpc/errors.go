package jsonrpc

import (
	"encoding/json"
	"strconv"
)

// Standard JSON-RPC 2.0 error codes, and the few server codes Substrate uses.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603

	// CodeSubscriptionsUnavailable is what Substrate nodes answer when a
	// subscription method is called over a transport without notifications.
	CodeSubscriptionsUnavailable = -32090
	// CodeUpstreamUnavailable reports that no upstream node could answer.
	CodeUpstreamUnavailable = -32000
	// CodeUpstreamTimeout reports that the upstream node did not answer in time.
	CodeUpstreamTimeout = -32001
	// CodeLimitExceeded reports a per-connection limit such as open subscriptions.
	CodeLimitExceeded = -32005
)

// Error is a JSON-RPC error object. It implements error so upstream errors
// can travel through Go error returns and be sent to clients unchanged.
type Error struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *Error) Error() string {
	return "json-rpc error " + strconv.Itoa(e.Code) + ": " + e.Message
}

// NewError returns an error object with no data.
func NewError(code int, message string) *Error {
	return &Error{Code: code, Message: message}
}

// Errors the gateway gives itself. Messages follow what Substrate nodes say
// where one exists, so clients see the same text through the gateway.
var (
	ErrParse = NewError(CodeParseError, "Parse error")
	// ErrInvalidUTF8 refuses a message that is not valid UTF-8 (see Parse).
	ErrInvalidUTF8         = NewError(CodeParseError, "Parse error: invalid UTF-8")
	ErrInvalidRequest      = NewError(CodeInvalidRequest, "Invalid request")
	ErrMethodNotFound      = NewError(CodeMethodNotFound, "Method not found")
	ErrSubscriptionsOnHTTP = NewError(CodeSubscriptionsUnavailable, "Subscriptions are not available on this transport.")
)
