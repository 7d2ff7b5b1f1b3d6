package jsonrpc

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Request is one validated client call. ID holds the raw bytes of the id as
// the client sent them; it is nil for a notification (no "id" member).
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
func Parse(body []byte, lim Limits) (*Parsed, *Error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, &Error{Code: CodeInvalidRequest, Message: "Invalid request: empty body"}
	}
	if err := checkDepth(body, lim.MaxDepth); err != nil {
		return nil, err
	}
	if body[0] != '[' {
		// Unmarshal checks the syntax of the whole body before decoding,
		// so a separate validity pass would read it twice.
		c := parseOne(body)
		if c.Err == ErrParse {
			return nil, ErrParse
		}
		return &Parsed{Calls: []Call{c}}, nil
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(body, &entries); err != nil {
		return nil, ErrParse
	}
	if len(entries) == 0 {
		return nil, &Error{Code: CodeInvalidRequest, Message: "Invalid request: empty batch"}
	}
	if len(entries) > lim.MaxBatch {
		return nil, &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("Invalid request: batch of %d calls is over the limit of %d", len(entries), lim.MaxBatch)}
	}
	p := &Parsed{Batch: true, Calls: make([]Call, len(entries))}
	for i, e := range entries {
		p.Calls[i] = parseOne(e)
	}
	return p, nil
}

// ParseRequest parses a single (non-batch) message, such as one WebSocket
// frame that is known not to be an array.
func ParseRequest(body []byte, maxDepth int) Call {
	if err := checkDepth(body, maxDepth); err != nil {
		return Call{Err: err, ID: nullID}
	}
	return parseOne(bytes.TrimSpace(body))
}

// wireRequest holds every member as raw JSON so types can be checked by
// hand: a wrong type is an invalid request, not a parse error.
type wireRequest struct {
	JSONRPC, ID, Method, Params json.RawMessage
}

// decodeRequest reads the members by their exact names. Decoding into a
// struct would match names case-insensitively, letting a "Method" member
// stand in for "method" unseen.
func decodeRequest(raw []byte) (wireRequest, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return wireRequest{}, err
	}
	return wireRequest{JSONRPC: members["jsonrpc"], ID: members["id"], Method: members["method"], Params: members["params"]}, nil
}

func parseOne(raw []byte) Call {
	if len(raw) == 0 || raw[0] != '{' {
		if !json.Valid(raw) {
			return Call{Err: ErrParse, ID: nullID}
		}
		return Call{Err: withDetail(ErrInvalidRequest, "expected a JSON object"), ID: nullID}
	}
	w, err := decodeRequest(raw)
	if err != nil {
		return Call{Err: ErrParse, ID: nullID}
	}
	// Absent and null ids differ: absent is a notification, null is a call
	// whose reply carries a null id.
	id := w.ID
	if id != nil && !validID(id) {
		return Call{Err: withDetail(ErrInvalidRequest, "id must be a string, a number or null"), ID: nullID}
	}
	replyID := id
	if replyID == nil {
		replyID = nullID
	}
	if string(w.JSONRPC) != `"2.0"` {
		return Call{Err: withDetail(ErrInvalidRequest, `jsonrpc must be "2.0"`), ID: replyID}
	}
	if len(w.Method) == 0 || w.Method[0] != '"' {
		return Call{Err: withDetail(ErrInvalidRequest, "method must be a string"), ID: replyID}
	}
	var method string
	if err := json.Unmarshal(w.Method, &method); err != nil || method == "" {
		return Call{Err: withDetail(ErrInvalidRequest, "method must be a non-empty string"), ID: replyID}
	}
	var params json.RawMessage
	if w.Params != nil && string(w.Params) != "null" {
		if w.Params[0] != '[' && w.Params[0] != '{' {
			return Call{Err: withDetail(ErrInvalidRequest, "params must be an array or an object"), ID: replyID}
		}
		params = w.Params
		// Canonical (compact) params make equal calls byte-equal; most
		// clients already send them compact, which costs one scan to see.
		if bytes.IndexAny(params, " \t\r\n") >= 0 {
			var buf bytes.Buffer
			if err := json.Compact(&buf, w.Params); err != nil {
				return Call{Err: ErrParse, ID: replyID}
			}
			params = buf.Bytes()
		}
	}
	return Call{Request: &Request{ID: id, Method: method, Params: params}, ID: replyID}
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

// checkDepth rejects bodies nested deeper than max before any decoder
// walks them, so a hostile body costs one linear scan and nothing more.
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
				return &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("Invalid request: JSON nested deeper than %d levels", max)}
			}
		case ']', '}':
			depth--
		}
	}
	return nil
}
