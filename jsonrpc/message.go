package jsonrpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Request is one validated client call. ID holds the raw bytes of the id as
// the client sent them; it is nil for a notification (no "id" member).
// ID and Params are copies: they never alias the body they were parsed
// from, so requests may outlive a reused read buffer and do not pin a large
// body in memory.
type Request struct {
	ID     json.RawMessage
	Method string
	// Params is the compact JSON of the params member: an array or an
	// object, or nil when the member was absent or null.
	Params json.RawMessage
}

// IsNotification reports whether the client expects no reply.
func (r *Request) IsNotification() bool { return r.ID == nil }

// ParamsOrEmpty returns the params, or an empty array when there were none,
// which is what Substrate nodes expect for a call without params.
func (r *Request) ParamsOrEmpty() json.RawMessage {
	if r.Params == nil {
		return emptyParams
	}
	return r.Params
}

var (
	emptyParams = json.RawMessage("[]")
	nullID      = json.RawMessage("null")
)

// Call is one entry of a parsed body: either a valid request or the error
// that entry earns. ID is kept for the error reply when it could be read.
type Call struct {
	Request *Request
	Err     *Error
	ID      json.RawMessage
}

// Limits bound what Parse accepts.
type Limits struct {
	// MaxBatch is the most entries in one batch; 0 means no batch allowed.
	MaxBatch int
	// MaxDepth is the deepest nesting of arrays and objects in the body.
	MaxDepth int
	// MaxBatchName, when set, is what the user calls the batch limit
	// (a config option); the oversized-batch error names it so they know
	// what to raise.
	MaxBatchName string
}

// Parsed is a parsed body: one call, or a batch of calls.
type Parsed struct {
	Batch bool
	Calls []Call
}

// Parse decodes a request body. It returns a body-level error (to be sent
// once, with a null id) when the body is not JSON, too deep, an empty
// batch or an oversized batch; otherwise every entry carries its own
// request or error.
//
// A body that is not valid UTF-8 is refused whole with ErrInvalidUTF8
// (-32700), before anything else: encoding/json would accept it and
// replace the bad bytes, but the params are forwarded as they came, and a
// node closes a WebSocket connection whose text frame is not UTF-8 (1007),
// costing every call in flight on it. Refusing keeps the client's bytes
// from being silently changed, too. The body is read in one pass (see scan.go), and the
// result does not alias it.
func Parse(body []byte, lim Limits) (*Parsed, *Error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, &Error{Code: CodeInvalidRequest, Message: "Invalid request: empty body"}
	}
	if !utf8.Valid(body) {
		return nil, ErrInvalidUTF8
	}
	p := parser{data: body, maxDepth: lim.MaxDepth}
	if body[0] != '[' {
		c, err := p.one()
		if err != scanOK {
			return nil, p.fail(err)
		}
		// One allocation for the result and its only call.
		one := &struct {
			p Parsed
			c [1]Call
		}{c: [1]Call{c}}
		one.p.Calls = one.c[:]
		return &one.p, nil
	}
	calls, n, err := p.batch(lim.MaxBatch)
	if err != scanOK {
		return nil, p.fail(err)
	}
	if n == 0 {
		return nil, &Error{Code: CodeInvalidRequest, Message: "Invalid request: empty batch"}
	}
	if n > lim.MaxBatch {
		msg := fmt.Sprintf("Invalid request: batch of %d calls is over the limit of %d", n, lim.MaxBatch)
		if lim.MaxBatchName != "" {
			msg += " (" + lim.MaxBatchName + ")"
		}
		return nil, &Error{Code: CodeInvalidRequest, Message: msg}
	}
	return &Parsed{Batch: true, Calls: calls}, nil
}

// ParseRequest parses a single (non-batch) message, such as one WebSocket
// frame that is known not to be an array. The result does not alias body.
func ParseRequest(body []byte, maxDepth int) Call {
	if !utf8.Valid(body) {
		return Call{Err: ErrInvalidUTF8, ID: nullID}
	}
	p := parser{data: bytes.TrimSpace(body), maxDepth: maxDepth}
	c, err := p.one()
	if err != scanOK {
		return Call{Err: p.fail(err), ID: nullID}
	}
	return c
}

func validID(id json.RawMessage) bool {
	switch c := id[0]; {
	case c == '"', c == '-', c >= '0' && c <= '9':
		return true
	default:
		return string(id) == "null"
	}
}

func withDetail(base *Error, detail string) *Error {
	return &Error{Code: base.Code, Message: base.Message + ": " + detail}
}

// checkDepth reports whether body, read lexically (brackets outside strings,
// whether or not the JSON is valid), nests deeper than max. The scanner
// checks the depth of valid JSON as it goes; this decides, for a body it
// found malformed, whether the depth error (which used to be checked
// first, over the whole body) wins over the parse error.
func checkDepth(body []byte, max int) *Error {
	if max <= 0 {
		return nil
	}
	depth, inString, escaped := 0, false, false
	for _, c := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > max {
				return depthError(max)
			}
		case ']', '}':
			depth--
		}
	}
	return nil
}

func depthError(max int) *Error {
	return &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("Invalid request: JSON nested deeper than %d levels", max)}
}
