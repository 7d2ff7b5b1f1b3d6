package jsonrpc

import (
	"encoding/json"
	"errors"
)

// errMessage is returned for a node message that is not one JSON object.
var errMessage = errors.New("node message is not a JSON object")

// ParseMessage decodes a message from a node. It validates the whole
// message as encoding/json would but reads it once and copies nothing:
// Result, ID and the params' members alias data, which must not change
// afterwards. Replies such as runtime metadata run to megabytes, so a
// decoder that scans and copies them twice costs more than the rest of
// the gateway's work on them.
func ParseMessage(data []byte) (Message, error) {
	var m Message
	p := parser{data: data}
	i := p.skipSpace(0)
	if i >= len(data) || data[i] != '{' {
		return m, errMessage
	}
	var merr error
	end, err := p.eachMember(i, 0, func(key []byte, vs, ve int) {
		v := data[vs:ve]
		switch string(key) {
		case "id":
			m.ID = v
		case "method":
			m.Method, _ = p.stringValue(vs, ve)
		case "result":
			m.Result = v
		case "error":
			if string(v) != "null" {
				var e Error
				if jerr := json.Unmarshal(v, &e); jerr != nil {
					merr = jerr
					return
				}
				m.Error = &e
			}
		case "params":
			if v[0] != '{' {
				return
			}
			_, _ = p.eachMember(vs, 1, func(key []byte, vs, ve int) {
				switch string(key) {
				case "subscription":
					m.Params.Subscription = data[vs:ve]
				case "result":
					m.Params.Result = data[vs:ve]
				case "error":
					m.Params.Error = data[vs:ve]
				}
			})
		}
	})
	if err != scanOK || p.skipSpace(end) != len(data) {
		return Message{}, errMessage
	}
	if merr != nil {
		return Message{}, merr
	}
	return m, nil
}

// eachMember scans the object at data[i] and calls fn with each member's
// decoded name and value span. It returns the index just past the object.
func (p *parser) eachMember(i, depth int, fn func(key []byte, vs, ve int)) (int, scanErr) {
	d := p.data
	if err := p.enter(depth + 1); err != scanOK {
		return 0, err
	}
	i = p.skipSpace(i + 1)
	if i < len(d) && d[i] == '}' {
		return i + 1, scanOK
	}
	for {
		if i >= len(d) || d[i] != '"' {
			return 0, scanSyntax
		}
		ke, escaped := scanString(d, i)
		if ke < 0 {
			return 0, scanSyntax
		}
		key := d[i+1 : ke-1]
		if escaped {
			key = appendUnquoted(nil, key)
		}
		i = p.skipSpace(ke)
		if i >= len(d) || d[i] != ':' {
			return 0, scanSyntax
		}
		vs := p.skipSpace(i + 1)
		ve, err := p.skipValue(vs, depth+1)
		if err != scanOK {
			return 0, err
		}
		fn(key, vs, ve)
		i = p.skipSpace(ve)
		if i < len(d) && d[i] == ',' {
			i = p.skipSpace(i + 1)
			continue
		}
		if i < len(d) && d[i] == '}' {
			return i + 1, scanOK
		}
		return 0, scanSyntax
	}
}

// stringValue decodes the JSON string at data[vs:ve]; ok is false for
// any other kind of value.
func (p *parser) stringValue(vs, ve int) (string, bool) {
	v := p.data[vs:ve]
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	if _, escaped := scanString(p.data, vs); escaped {
		return string(appendUnquoted(nil, v[1:len(v)-1])), true
	}
	return string(v[1 : len(v)-1]), true
}
