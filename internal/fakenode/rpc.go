package fakenode

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// JSON-RPC error codes used by jsonrpsee (and so by Substrate).
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
)

// Error is a JSON-RPC error object.
type Error struct {
	Code    int
	Message string
	Data    any // omitted from the JSON when nil
}

func (e *Error) Error() string { return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message) }

// MarshalJSON encodes e as {"code":..,"message":..[,"data":..]}.
func (e *Error) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}{e.Code, e.Message, e.Data})
}

// jsonrpsee's messages for the standard codes.
func errParse() *Error          { return &Error{Code: CodeParseError, Message: "Parse error"} }
func errInvalidRequest() *Error { return &Error{Code: CodeInvalidRequest, Message: "Invalid request"} }
func errMethodNotFound() *Error { return &Error{Code: CodeMethodNotFound, Message: "Method not found"} }
func errInternal() *Error       { return &Error{Code: CodeInternalError, Message: "Internal error"} }

// errInvalidParams carries the parse problem in data, as jsonrpsee does.
func errInvalidParams(detail string) *Error {
	e := &Error{Code: CodeInvalidParams, Message: "Invalid params"}
	if detail != "" {
		e.Data = detail
	}
	return e
}

// request is one JSON-RPC request object (or something that tried to be one).
type request struct {
	id      json.RawMessage // nil when absent: a notification
	method  string
	params  json.RawMessage
	raw     json.RawMessage // the whole object, for LastRequest
	invalid *Error          // set when raw is not a valid request object
}

// parseMessage splits a WebSocket message or HTTP body into requests.
// perr is set when the message as a whole gets a single error reply.
func parseMessage(data []byte) (reqs []*request, batch bool, perr *Error) {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 {
		return nil, false, errParse()
	}
	if data[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(data, &raws); err != nil {
			return nil, false, errParse()
		}
		if len(raws) == 0 {
			return nil, false, errInvalidRequest()
		}
		reqs = make([]*request, len(raws))
		for i, raw := range raws {
			reqs[i] = parseRequest(raw)
		}
		return reqs, true, nil
	}
	if data[0] != '{' || !json.Valid(data) {
		return nil, false, errParse()
	}
	return []*request{parseRequest(data)}, false, nil
}

func parseRequest(raw json.RawMessage) *request {
	r := &request{raw: raw}
	var w struct {
		JSONRPC json.RawMessage `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  json.RawMessage `json:"method"`
		Params  json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		r.invalid = errInvalidRequest()
		return r
	}
	if len(w.ID) > 0 {
		switch w.ID[0] {
		case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			r.id = w.ID
		default: // objects, arrays and booleans are not ids
			r.invalid = errInvalidRequest()
			return r
		}
	}
	if string(w.JSONRPC) != `"2.0"` || json.Unmarshal(w.Method, &r.method) != nil {
		r.invalid = errInvalidRequest()
		return r
	}
	r.params = w.Params
	return r
}

// params are positional parameters; absent or null params are empty.
type params []json.RawMessage

func parseParams(raw json.RawMessage) (params, *Error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '[' {
		return nil, errInvalidParams("fakenode supports positional (array) params only")
	}
	var p params
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, errInvalidParams(err.Error())
	}
	return p, nil
}

// has reports whether parameter i is present and not null (Substrate treats
// a trailing null like an omitted optional parameter).
func (p params) has(i int) bool { return i < len(p) && string(p[i]) != "null" }

func (p params) decode(i int, v any) *Error {
	if !p.has(i) {
		return errInvalidParams(fmt.Sprintf("missing parameter %d", i))
	}
	if err := json.Unmarshal(p[i], v); err != nil {
		return errInvalidParams(err.Error())
	}
	return nil
}

func (p params) str(i int) (string, *Error) {
	var s string
	return s, p.decode(i, &s)
}

func encodeResult(id, result json.RawMessage) []byte {
	if id == nil {
		id = json.RawMessage("null")
	}
	b := make([]byte, 0, 36+len(id)+len(result))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"result":`...)
	b = append(b, result...)
	return append(b, '}')
}

func encodeError(id json.RawMessage, e *Error) []byte {
	if id == nil {
		id = json.RawMessage("null")
	}
	ej, err := json.Marshal(e)
	if err != nil { // unmarshalable Data from a custom handler
		ej, _ = json.Marshal(&Error{Code: e.Code, Message: e.Message})
	}
	b := make([]byte, 0, 36+len(id)+len(ej))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"error":`...)
	b = append(b, ej...)
	return append(b, '}')
}

func encodeNotification(method, subID string, result json.RawMessage) []byte {
	b := make([]byte, 0, 64+len(method)+len(subID)+len(result))
	b = append(b, `{"jsonrpc":"2.0","method":"`...)
	b = append(b, method...)
	b = append(b, `","params":{"subscription":"`...)
	b = append(b, subID...)
	b = append(b, `","result":`...)
	b = append(b, result...)
	return append(b, "}}"...)
}

// marshalResult turns a handler's result into JSON; json.RawMessage is used
// as is so cached payloads (headers, metadata) are not re-encoded.
func marshalResult(v any) (json.RawMessage, *Error) {
	switch r := v.(type) {
	case json.RawMessage:
		if r == nil {
			return json.RawMessage("null"), nil
		}
		return r, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &Error{Code: CodeInternalError, Message: "Internal error", Data: err.Error()}
	}
	return b, nil
}
