package jsonrpc

import (
	"encoding/json"
	"strconv"
)

// AppendResult appends a success response to dst. id and result must be
// valid JSON; they are written as they are.
func AppendResult(dst []byte, id, result json.RawMessage) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = append(dst, orNull(id)...)
	dst = append(dst, `,"result":`...)
	dst = append(dst, orNull(result)...)
	return append(dst, '}')
}

// AppendError appends an error response to dst.
func AppendError(dst []byte, id json.RawMessage, e *Error) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = append(dst, orNull(id)...)
	dst = append(dst, `,"error":{"code":`...)
	dst = strconv.AppendInt(dst, int64(e.Code), 10)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, e.Message)
	if len(e.Data) > 0 {
		dst = append(dst, `,"data":`...)
		dst = append(dst, e.Data...)
	}
	return append(dst, "}}"...)
}

// AppendNotification appends a subscription notification to dst.
func AppendNotification(dst []byte, method string, subscription, result json.RawMessage) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","method":`...)
	dst = appendString(dst, method)
	dst = append(dst, `,"params":{"subscription":`...)
	dst = append(dst, subscription...)
	dst = append(dst, `,"result":`...)
	dst = append(dst, orNull(result)...)
	return append(dst, "}}"...)
}

// AppendRequest appends a request with a numeric id, as the gateway sends
// upstream. The method is re-encoded from its decoded form so that what
// reaches a node is exactly what the policy checked.
func AppendRequest(dst []byte, id uint64, method string, params json.RawMessage) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"method":`...)
	dst = appendString(dst, method)
	if len(params) == 0 {
		params = emptyParams
	}
	dst = append(dst, `,"params":`...)
	dst = append(dst, params...)
	return append(dst, '}')
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nullID
	}
	return raw
}

func appendString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // marshalling a string cannot fail
	return append(dst, b...)
}
