package jsonrpc

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is a single-pass JSON scanner for request bodies. It validates
// the syntax exactly as encoding/json does (same grammar, same handling of
// invalid UTF-8, same nesting limit) while noting where the members the
// gateway needs sit, so that a body is read once instead of once per
// check. FuzzScanMatchesEncodingJSON compares it with the encoding/json
// implementation it replaced.

// scanErr is why a scan stopped.
type scanErr uint8

const (
	scanOK     scanErr = iota
	scanSyntax         // not JSON: -32700
	scanDepth          // nested deeper than Limits.MaxDepth: -32600
)

// jsonMaxNesting is encoding/json's own nesting limit: a body nested
// deeper is a syntax error there, so it is one here too.
const jsonMaxNesting = 10000

// parser scans one body. It is used by value: nothing in it escapes.
type parser struct {
	data     []byte
	maxDepth int  // 0 or less: no limit but jsonMaxNesting
	ws       bool // skipSpace skipped something since it was cleared
}

// span locates a value in parser.data; end == 0 means absent (no value can
// end at 0, as every member sits inside an object).
type span struct{ start, end int }

// members are the last occurrence of each member call looks at; like
// encoding/json, a duplicate member replaces an earlier one.
type members struct {
	jsonrpc, id, method, params span
	methodEscaped               bool // the method string may need decoding
	paramsSpaced                bool // params hold whitespace to remove
}

const (
	memberOther = iota
	memberJSONRPC
	memberID
	memberMethod
	memberParams
)

// enter checks the depth of a container being opened: the gateway's limit
// first (as checkDepth runs before any decoding), then encoding/json's.
func (p *parser) enter(depth int) scanErr {
	if p.maxDepth > 0 && depth > p.maxDepth {
		return scanDepth
	}
	if depth > jsonMaxNesting {
		return scanSyntax
	}
	return scanOK
}

// fail turns a scan error into the error for the whole body. A syntax error
// stops the scan early, but the depth check used to read the whole body
// first, so a body that is both malformed and too deep further on still
// reports the depth.
func (p *parser) fail(err scanErr) *Error {
	if err == scanDepth {
		return depthError(p.maxDepth)
	}
	if e := checkDepth(p.data, p.maxDepth); e != nil {
		return e
	}
	return ErrParse
}

// one parses a body that holds a single value, which should be a request
// object.
func (p *parser) one() (Call, scanErr) {
	d := p.data
	if len(d) == 0 {
		return Call{}, scanSyntax
	}
	if d[0] != '{' {
		i, err := p.skipValue(0, 0)
		if err != scanOK {
			return Call{}, err
		}
		if p.skipSpace(i) != len(d) {
			return Call{}, scanSyntax
		}
		return Call{Err: withDetail(ErrInvalidRequest, "expected a JSON object"), ID: nullID}, scanOK
	}
	i, m, err := p.object(0, 0)
	if err != scanOK {
		return Call{}, err
	}
	// Trailing bytes make the whole body invalid: check before building.
	if p.skipSpace(i) != len(d) {
		return Call{}, scanSyntax
	}
	return p.call(&m), scanOK
}

// batch parses a body that starts with '['. It returns the calls for the
// first maxBatch entries and the number of entries; the rest are only
// validated, since an oversized batch is refused whole.
func (p *parser) batch(maxBatch int) ([]Call, int, scanErr) {
	d := p.data
	if err := p.enter(1); err != scanOK {
		return nil, 0, err
	}
	i := p.skipSpace(1)
	var calls []Call
	n := 0
	if i < len(d) && d[i] == ']' {
		i++
	} else {
		for {
			var c Call
			var err scanErr
			if i < len(d) && d[i] == '{' {
				var m members
				i, m, err = p.object(i, 1)
				if err == scanOK && n < maxBatch {
					c = p.call(&m)
				}
			} else {
				i, err = p.skipValue(i, 1)
				if err == scanOK && n < maxBatch {
					c = Call{Err: withDetail(ErrInvalidRequest, "expected a JSON object"), ID: nullID}
				}
			}
			if err != scanOK {
				return nil, 0, err
			}
			if n < maxBatch {
				if calls == nil {
					calls = make([]Call, 0, min(maxBatch, 16))
				}
				calls = append(calls, c)
			}
			n++
			i = p.skipSpace(i)
			if i < len(d) && d[i] == ',' {
				i = p.skipSpace(i + 1)
				continue
			}
			if i < len(d) && d[i] == ']' {
				i++
				break
			}
			return nil, 0, scanSyntax
		}
	}
	if p.skipSpace(i) != len(d) {
		return nil, 0, scanSyntax
	}
	return calls, n, scanOK
}

// object scans the object starting at d[i] == '{', opened at depth+1, and
// returns the index just past it and where its members are.
func (p *parser) object(i, depth int) (int, members, scanErr) {
	var m members
	d := p.data
	if err := p.enter(depth + 1); err != scanOK {
		return 0, m, err
	}
	i = p.skipSpace(i + 1)
	if i < len(d) && d[i] == '}' {
		return i + 1, m, scanOK
	}
	for {
		if i >= len(d) || d[i] != '"' {
			return 0, m, scanSyntax
		}
		ke, escaped := scanString(d, i)
		if ke < 0 {
			return 0, m, scanSyntax
		}
		which := memberName(d[i+1:ke-1], escaped)
		i = p.skipSpace(ke)
		if i >= len(d) || d[i] != ':' {
			return 0, m, scanSyntax
		}
		vs := p.skipSpace(i + 1)
		var err scanErr
		if which == memberMethod && vs < len(d) && d[vs] == '"' {
			// Scanned here to learn whether it needs decoding.
			i, m.methodEscaped = scanString(d, vs)
			if i < 0 {
				return 0, m, scanSyntax
			}
		} else {
			p.ws = false
			if i, err = p.skipValue(vs, depth+1); err != scanOK {
				return 0, m, err
			}
		}
		switch which {
		case memberJSONRPC:
			m.jsonrpc = span{vs, i}
		case memberID:
			m.id = span{vs, i}
		case memberMethod:
			m.method = span{vs, i}
		case memberParams:
			m.params = span{vs, i}
			m.paramsSpaced = p.ws
		}
		i = p.skipSpace(i)
		if i < len(d) && d[i] == ',' {
			i = p.skipSpace(i + 1)
			continue
		}
		if i < len(d) && d[i] == '}' {
			return i + 1, m, scanOK
		}
		return 0, m, scanSyntax
	}
}

// memberName tells which member a key names, comparing the decoded key
// exactly (case-sensitive, as the specification wants), so an escaped
// "meth\u006fd" is the method but "Method" is not.
func memberName(key []byte, escaped bool) int {
	if escaped {
		// Every byte of a decoded key comes from at most six raw ones, so
		// a longer key cannot decode to a seven-byte name: no need to
		// decode it (nor to let a huge key cost a buffer).
		if len(key) > 6*len("jsonrpc") {
			return memberOther
		}
		var buf [3 * 6 * len("jsonrpc")]byte // invalid UTF-8 triples in size
		key = appendUnquoted(buf[:0], key)
	}
	switch string(key) {
	case "jsonrpc":
		return memberJSONRPC
	case "id":
		return memberID
	case "method":
		return memberMethod
	case "params":
		return memberParams
	}
	return memberOther
}

// skipValue scans the value starting at d[i] (whitespace already skipped)
// whose enclosing containers reach depth, and returns the index just past
// it. Nesting is tracked with a bit stack rather than recursion, so a deep
// body costs no Go stack.
func (p *parser) skipValue(i, depth int) (int, scanErr) {
	d := p.data
	var small uint64 // bit k: container k opened here is an object
	var big []uint64 // the same for containers 64 and deeper, rarely used
	n := 0           // containers open in this call
	for {
		if i >= len(d) {
			return 0, scanSyntax
		}
		switch c := d[i]; c {
		case '{', '[':
			if err := p.enter(depth + n + 1); err != scanOK {
				return 0, err
			}
			obj := c == '{'
			if n < 64 {
				small = small&^(1<<n) | b2u(obj)<<n
			} else {
				w := (n - 64) >> 6
				if w == len(big) {
					big = append(big, 0)
				}
				big[w] = big[w]&^(1<<(n&63)) | b2u(obj)<<(n&63)
			}
			n++
			i = p.skipSpace(i + 1)
			if i < len(d) && d[i] == c+2 { // '['+2 is ']', '{'+2 is '}'
				i++
				n--
				break
			}
			if obj {
				var ok bool
				if i, ok = p.skipKey(i); !ok {
					return 0, scanSyntax
				}
			}
			continue
		case '"':
			if i, _ = scanString(d, i); i < 0 {
				return 0, scanSyntax
			}
		case 't':
			if i = literal(d, i, "true"); i < 0 {
				return 0, scanSyntax
			}
		case 'f':
			if i = literal(d, i, "false"); i < 0 {
				return 0, scanSyntax
			}
		case 'n':
			if i = literal(d, i, "null"); i < 0 {
				return 0, scanSyntax
			}
		default:
			if i = scanNumber(d, i); i < 0 {
				return 0, scanSyntax
			}
		}
		// A value ended: close containers until one wants another value.
		for {
			if n == 0 {
				return i, scanOK
			}
			i = p.skipSpace(i)
			if i >= len(d) {
				return 0, scanSyntax
			}
			k := n - 1
			var obj bool
			if k < 64 {
				obj = small>>k&1 == 1
			} else {
				obj = big[(k-64)>>6]>>(k&63)&1 == 1
			}
			c := d[i]
			if c == ',' {
				i = p.skipSpace(i + 1)
				if obj {
					var ok bool
					if i, ok = p.skipKey(i); !ok {
						return 0, scanSyntax
					}
				}
				break
			}
			if obj && c == '}' || !obj && c == ']' {
				i++
				n--
				continue
			}
			return 0, scanSyntax
		}
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// skipKey scans `"key" :` and the whitespace after it, returning the index
// of the member's value.
func (p *parser) skipKey(i int) (int, bool) {
	d := p.data
	if i >= len(d) || d[i] != '"' {
		return 0, false
	}
	if i, _ = scanString(d, i); i < 0 {
		return 0, false
	}
	i = p.skipSpace(i)
	if i >= len(d) || d[i] != ':' {
		return 0, false
	}
	return p.skipSpace(i + 1), true
}

// skipSpace skips JSON whitespace (only these four bytes), and notes in ws
// that it did, which is how params learn they need compacting.
func (p *parser) skipSpace(i int) int {
	d := p.data
	j := i
	for j < len(d) && isSpace(d[j]) {
		j++
	}
	if j != i {
		p.ws = true
	}
	return j
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// plain marks the string bytes that need no further look: printable ASCII
// other than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString scans the string starting at d[i] == '"' and returns the index
// just past it, or -1 if it is not valid JSON. escaped reports that the
// contents differ from their decoded form: an escape, or a byte at or over
// 0x80, which may be invalid UTF-8 that decoding replaces. Like
// encoding/json, invalid UTF-8 is accepted; control bytes are not.
func scanString(d []byte, i int) (end int, escaped bool) {
	i++
	for {
		// Long strings (hashes, hex-encoded calls) are most of a body: skip
		// eight plain bytes at a time, then stop at the first other byte.
		for i+8 <= len(d) {
			if t := special(binary.LittleEndian.Uint64(d[i:])); t != 0 {
				i += bits.TrailingZeros64(t) >> 3
				break
			}
			i += 8
		}
		if i >= len(d) {
			return -1, false
		}
		c := d[i]
		if plain[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			return i + 1, escaped
		case c == '\\':
			escaped = true
			if i+1 >= len(d) {
				return -1, false
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+5 >= len(d) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
					return -1, false
				}
				i += 6
			default:
				return -1, false
			}
		case c < 0x20:
			return -1, false
		default: // 0x80 and over
			escaped = true
			i++
		}
	}
}

const (
	lsbs = 0x0101010101010101
	msbs = 0x8080808080808080
)

// special flags, in the top bit of each byte, the bytes of x (eight string
// bytes, little-endian) that are not plain: under 0x20, over 0x7f, '"' or
// '\\'. Borrows can only flag bytes after a flagged one, so the lowest flag
// is exact.
func special(x uint64) uint64 {
	q := x ^ lsbs*'"'
	b := x ^ lsbs*'\\'
	return ((x-lsbs*0x20)&^x | (q-lsbs)&^q | (b-lsbs)&^b | x) & msbs
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scanNumber scans a number by the JSON grammar: -?(0|[1-9][0-9]*)
// (\.[0-9]+)?([eE][+-]?[0-9]+)?, and returns the index past it or -1. What
// follows is checked by the caller, which makes "01" or "1x" an error.
func scanNumber(d []byte, i int) int {
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i >= len(d):
		return -1
	case d[i] == '0':
		i++
	case '1' <= d[i] && d[i] <= '9':
		i = digits(d, i+1)
	default:
		return -1
	}
	if i < len(d) && d[i] == '.' {
		j := digits(d, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := digits(d, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits(d []byte, i int) int {
	for i < len(d) && '0' <= d[i] && d[i] <= '9' {
		i++
	}
	return i
}

func literal(d []byte, i int, lit string) int {
	if len(d)-i < len(lit) || string(d[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// call applies the request rules to a scanned object, in the order the
// checks have always run, so each body earns the same error as before.
// The request owns its bytes: ID and Params are copied out of the body
// (into one allocation), so a caller may reuse the body afterwards.
func (p *parser) call(m *members) Call {
	d := p.data
	var id []byte
	if m.id.end != 0 {
		id = d[m.id.start:m.id.end]
	}
	// Absent and null ids differ: absent is a notification, null is a call
	// whose reply carries a null id.
	if id != nil && !validID(id) {
		return Call{Err: withDetail(ErrInvalidRequest, "id must be a string, a number or null"), ID: nullID}
	}
	if string(d[m.jsonrpc.start:m.jsonrpc.end]) != `"2.0"` {
		return Call{Err: withDetail(ErrInvalidRequest, `jsonrpc must be "2.0"`), ID: replyID(id)}
	}
	if m.method.end == 0 || d[m.method.start] != '"' {
		return Call{Err: withDetail(ErrInvalidRequest, "method must be a string"), ID: replyID(id)}
	}
	raw := d[m.method.start+1 : m.method.end-1]
	if len(raw) == 0 {
		return Call{Err: withDetail(ErrInvalidRequest, "method must be a non-empty string"), ID: replyID(id)}
	}
	var method string
	if m.methodEscaped && (hasByte(raw, '\\') || !utf8.Valid(raw)) {
		var buf [64]byte
		method = string(appendUnquoted(buf[:0], raw))
	} else {
		method = string(raw)
	}
	var params []byte
	if m.params.end != 0 {
		params = d[m.params.start:m.params.end]
		if string(params) == "null" {
			params = nil
		} else if params[0] != '[' && params[0] != '{' {
			return Call{Err: withDetail(ErrInvalidRequest, "params must be an array or an object"), ID: replyID(id)}
		}
	}
	// Canonical (compact) params make equal calls byte-equal; most clients
	// already send them compact, so mostly this is a plain copy.
	r := &Request{Method: method}
	if id != nil || params != nil {
		buf := make([]byte, len(id), len(id)+len(params))
		copy(buf, id)
		if id != nil {
			r.ID = buf[:len(id):len(id)]
		}
		if params != nil {
			if m.paramsSpaced {
				r.Params = appendCompact(buf, params)[len(id):]
			} else {
				r.Params = append(buf, params...)[len(id):]
			}
		}
	}
	if r.ID == nil {
		return Call{Request: r, ID: nullID}
	}
	return Call{Request: r, ID: r.ID}
}

// replyID is the id an error reply carries: a copy of the id, or null for
// a notification.
func replyID(id []byte) json.RawMessage {
	if id == nil {
		return nullID
	}
	return append(json.RawMessage(nil), id...)
}

func hasByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

// appendCompact appends valid JSON src to dst without its insignificant
// whitespace; string contents are kept as they are.
func appendCompact(dst, src []byte) []byte {
	start := 0
	for i := 0; i < len(src); i++ {
		switch c := src[i]; {
		case c == '"':
			i, _ = scanString(src, i) // src is valid: never -1
			i--
		case isSpace(c):
			dst = append(dst, src[start:i]...)
			start = i + 1
		}
	}
	return append(dst, src[start:]...)
}

// appendUnquoted appends the decoded contents of a valid JSON string (the
// bytes between the quotes), exactly as encoding/json decodes it: invalid
// UTF-8 and unpaired surrogate escapes become U+FFFD.
func appendUnquoted(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch e := s[i+1]; e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(s[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					// A pair needs a second \u escape right after.
					r2 := rune(-1)
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						r2 = hex4(s[i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						dst = utf8.AppendRune(dst, dec)
						i += 6
						continue
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, e)
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			dst = utf8.AppendRune(dst, r)
			i += size
		}
	}
	return dst
}

// hex4 decodes the four hex digits at the start of s, already validated.
func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
