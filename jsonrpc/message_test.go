package jsonrpc_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/elara-gateway/elara/jsonrpc"
)

var testLimits = jsonrpc.Limits{MaxBatch: 5, MaxDepth: 8}

// req builds a request object with the given raw id member (omitted when
// id is empty) and method/params members written as they are.
func req(id, rest string) string {
	if id == "" {
		return `{"jsonrpc":"2.0",` + rest + `}`
	}
	return `{"jsonrpc":"2.0","id":` + id + `,` + rest + `}`
}

// parseSingle parses body, which must be a single (non-batch) message, both
// with Parse and ParseRequest, checks that they agree, and returns the call.
func parseSingle(t *testing.T, body string, lim jsonrpc.Limits) jsonrpc.Call {
	t.Helper()
	p, perr := jsonrpc.Parse([]byte(body), lim)
	if perr != nil {
		t.Fatalf("Parse(%s): body-level error %v, want one call", body, perr)
	}
	if p.Batch || len(p.Calls) != 1 {
		t.Fatalf("Parse(%s): batch=%v with %d calls, want a single call", body, p.Batch, len(p.Calls))
	}
	c := p.Calls[0]
	c2 := jsonrpc.ParseRequest([]byte(body), lim.MaxDepth)
	if !sameCall(c, c2) {
		t.Fatalf("Parse and ParseRequest disagree on %s:\n Parse:        %s\n ParseRequest: %s", body, describe(c), describe(c2))
	}
	return c
}

func sameCall(a, b jsonrpc.Call) bool {
	return describe(a) == describe(b)
}

func describe(c jsonrpc.Call) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id=%s ", c.ID)
	if c.Request != nil {
		fmt.Fprintf(&b, "request{id=%q method=%q params=%q notification=%v}", c.Request.ID, c.Request.Method, c.Request.Params, c.Request.IsNotification())
	}
	if c.Err != nil {
		fmt.Fprintf(&b, "err{%d %q %s}", c.Err.Code, c.Err.Message, c.Err.Data)
	}
	return b.String()
}

func TestParseIDsPreservedByteForByte(t *testing.T) {
	cases := []struct {
		name string
		id   string
	}{
		{"zero", `0`},
		{"one", `1`},
		{"minus one", `-1`},
		{"negative zero", `-0`},
		{"exponent", `1.5e3`},
		{"upper exponent with sign", `2E+10`},
		{"fraction", `0.25`},
		{"negative exponent", `-1e-7`},
		{"uint64 max", `18446744073709551615`},
		{"over uint64", `18446744073709551616`},
		{"huge int", `123456789012345678901234567890123456789012345678901234567890`},
		{"string", `"abc"`},
		{"empty string", `""`},
		{"string with escaped quote", `"a\"b"`},
		{"string with backslash", `"a\\b"`},
		{"string with unicode escape", `"caf\u00e9"`},
		{"string with surrogate pair escape", `"\ud83d\ude00"`},
		{"string with raw utf8", `"日本語"`},
		{"string with control escapes", `"\n\t\r\b\f\/"`},
		{"numeric string", `"1"`},
		{"null", `null`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := req(tc.id, `"method":"system_chain","params":[]`)
			c := parseSingle(t, body, testLimits)
			if c.Err != nil {
				t.Fatalf("unexpected error %v", c.Err)
			}
			if string(c.Request.ID) != tc.id {
				t.Errorf("Request.ID = %s, want %s", c.Request.ID, tc.id)
			}
			if string(c.ID) != tc.id {
				t.Errorf("reply ID = %s, want %s", c.ID, tc.id)
			}
			if c.Request.IsNotification() {
				t.Errorf("a call with id %s is reported as a notification", tc.id)
			}
			reply := jsonrpc.AppendResult(nil, c.ID, json.RawMessage(`"x"`))
			if want := `{"jsonrpc":"2.0","id":` + tc.id + `,"result":"x"}`; string(reply) != want {
				t.Errorf("reply = %s, want %s", reply, want)
			}
		})
	}
}

func TestParseIDWhitespaceAround(t *testing.T) {
	// Whitespace around the id is not part of it.
	c := parseSingle(t, "{\"jsonrpc\":\"2.0\",\"id\" : \t 42 \n,\"method\":\"a\"}", testLimits)
	if c.Err != nil || string(c.Request.ID) != "42" || string(c.ID) != "42" {
		t.Fatalf("got %s, want id 42", describe(c))
	}
}

func TestParseNotificationVersusNullID(t *testing.T) {
	cases := []struct {
		name             string
		body             string
		wantNotification bool
		wantReqID        string
		wantReplyID      string
	}{
		{"absent id is a notification", req("", `"method":"a"`), true, "", "null"},
		{"null id is a call", req("null", `"method":"a"`), false, "null", "null"},
		{"zero id is a call", req("0", `"method":"a"`), false, "0", "0"},
		{"empty string id is a call", req(`""`, `"method":"a"`), false, `""`, `""`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := parseSingle(t, tc.body, testLimits)
			if c.Err != nil {
				t.Fatalf("unexpected error %v", c.Err)
			}
			if got := c.Request.IsNotification(); got != tc.wantNotification {
				t.Errorf("IsNotification = %v, want %v", got, tc.wantNotification)
			}
			if tc.wantNotification {
				if c.Request.ID != nil {
					t.Errorf("notification Request.ID = %q, want nil", c.Request.ID)
				}
			} else if string(c.Request.ID) != tc.wantReqID {
				t.Errorf("Request.ID = %s, want %s", c.Request.ID, tc.wantReqID)
			}
			if string(c.ID) != tc.wantReplyID {
				t.Errorf("reply ID = %s, want %s", c.ID, tc.wantReplyID)
			}
		})
	}
}

func TestParseInvalidRequests(t *testing.T) {
	cases := []struct {
		name        string
		body        string
		wantReplyID string
		wantDetail  string // substring of the message
	}{
		{"method is a number", req("7", `"method":5`), "7", "method must be a string"},
		{"method is null", req("7", `"method":null`), "7", "method must be a string"},
		{"method is an array", req("7", `"method":["a"]`), "7", "method must be a string"},
		{"method is an object", req("7", `"method":{}`), "7", "method must be a string"},
		{"method is a bool", req("7", `"method":true`), "7", "method must be a string"},
		{"method is empty", req(`"x"`, `"method":""`), `"x"`, "non-empty"},
		{"method is missing", req("7", `"params":[]`), "7", "method must be a string"},
		{"method missing in notification", `{"jsonrpc":"2.0"}`, "null", "method must be a string"},
		{"params is a string", req("7", `"method":"a","params":"x"`), "7", "params must be an array or an object"},
		{"params is a number", req("7", `"method":"a","params":1`), "7", "params must be an array or an object"},
		{"params is a bool", req("7", `"method":"a","params":false`), "7", "params must be an array or an object"},
		{"jsonrpc missing", `{"id":7,"method":"a"}`, "7", `jsonrpc must be "2.0"`},
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","id":7,"method":"a"}`, "7", `jsonrpc must be "2.0"`},
		{"jsonrpc number", `{"jsonrpc":2.0,"id":7,"method":"a"}`, "7", `jsonrpc must be "2.0"`},
		{"jsonrpc null", `{"jsonrpc":null,"id":"s","method":"a"}`, `"s"`, `jsonrpc must be "2.0"`},
		{"jsonrpc with padding", `{"jsonrpc":" 2.0","id":7,"method":"a"}`, "7", `jsonrpc must be "2.0"`},
		{"id is an object", req(`{"a":1}`, `"method":"a"`), "null", "id must be"},
		{"id is an empty object", req(`{}`, `"method":"a"`), "null", "id must be"},
		{"id is an array", req(`[1]`, `"method":"a"`), "null", "id must be"},
		{"id is true", req(`true`, `"method":"a"`), "null", "id must be"},
		{"id is false", req(`false`, `"method":"a"`), "null", "id must be"},
		{"not an object: string", `"hello"`, "null", "expected a JSON object"},
		{"not an object: number", `42`, "null", "expected a JSON object"},
		{"not an object: null", `null`, "null", "expected a JSON object"},
		{"not an object: true", `true`, "null", "expected a JSON object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := parseSingle(t, tc.body, testLimits)
			if c.Request != nil {
				t.Fatalf("got a request %+v, want an error", c.Request)
			}
			if c.Err == nil {
				t.Fatal("got neither request nor error")
			}
			if c.Err.Code != jsonrpc.CodeInvalidRequest {
				t.Errorf("code = %d, want %d (%s)", c.Err.Code, jsonrpc.CodeInvalidRequest, c.Err.Message)
			}
			if !strings.Contains(c.Err.Message, tc.wantDetail) {
				t.Errorf("message %q does not mention %q", c.Err.Message, tc.wantDetail)
			}
			if string(c.ID) != tc.wantReplyID {
				t.Errorf("reply ID = %s, want %s", c.ID, tc.wantReplyID)
			}
			if reply := jsonrpc.AppendError(nil, c.ID, c.Err); !json.Valid(reply) {
				t.Errorf("error reply is not valid JSON: %s", reply)
			}
		})
	}
}

func TestParseErrorsDoNotAliasSharedErrors(t *testing.T) {
	// The detail is added to a copy: the shared ErrInvalidRequest must not change.
	before := jsonrpc.ErrInvalidRequest.Message
	_ = parseSingle(t, req("1", `"method":5`), testLimits)
	if jsonrpc.ErrInvalidRequest.Message != before || jsonrpc.ErrInvalidRequest.Code != jsonrpc.CodeInvalidRequest {
		t.Fatalf("ErrInvalidRequest modified to %+v", *jsonrpc.ErrInvalidRequest)
	}
}

func TestParseMalformed(t *testing.T) {
	cases := []struct {
		name string
		body string
	}{
		{"truncated object", `{"jsonrpc":"2.0","id":1,"method":`},
		{"truncated string", `{"jsonrpc":"2.0","id":1,"method":"abc`},
		{"trailing comma", `{"jsonrpc":"2.0","id":1,"method":"a",}`},
		{"single quotes", `{'jsonrpc':'2.0'}`},
		{"bare word", `hello`},
		{"two objects", `{"jsonrpc":"2.0","id":1,"method":"a"}{"jsonrpc":"2.0","id":2,"method":"b"}`},
		{"trailing garbage", `{"jsonrpc":"2.0","id":1,"method":"a"} x`},
		{"invalid escape", `{"jsonrpc":"2.0","id":1,"method":"\x"}`},
		{"raw control char in string", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\x01\"}"},
		{"leading zero number", `{"jsonrpc":"2.0","id":01,"method":"a"}`},
		{"NaN", `{"jsonrpc":"2.0","id":NaN,"method":"a"}`},
		{"unclosed batch", `[{"jsonrpc":"2.0","id":1,"method":"a"}`},
		{"batch trailing comma", `[{"jsonrpc":"2.0","id":1,"method":"a"},]`},
		{"byte order mark", "\xef\xbb\xbf{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := jsonrpc.Parse([]byte(tc.body), testLimits)
			if err == nil {
				t.Fatalf("Parse: got %+v, want a parse error", p)
			}
			if err.Code != jsonrpc.CodeParseError {
				t.Errorf("Parse: code = %d (%s), want %d", err.Code, err.Message, jsonrpc.CodeParseError)
			}
			if strings.HasPrefix(tc.body, "[") {
				return // ParseRequest is for single messages only
			}
			c := jsonrpc.ParseRequest([]byte(tc.body), testLimits.MaxDepth)
			if c.Request != nil || c.Err == nil || c.Err.Code != jsonrpc.CodeParseError {
				t.Errorf("ParseRequest: got %s, want a parse error", describe(c))
			}
			if string(c.ID) != "null" {
				t.Errorf("ParseRequest: reply ID = %s, want null", c.ID)
			}
		})
	}
}

func TestParseEmptyBody(t *testing.T) {
	for _, body := range []string{"", " ", "\n\t\r "} {
		t.Run(fmt.Sprintf("%q", body), func(t *testing.T) {
			p, err := jsonrpc.Parse([]byte(body), testLimits)
			if err == nil {
				t.Fatalf("got %+v, want an error", p)
			}
			if err.Code != jsonrpc.CodeInvalidRequest || !strings.Contains(err.Message, "empty body") {
				t.Errorf("got %d %q, want -32600 about an empty body", err.Code, err.Message)
			}
			c := jsonrpc.ParseRequest([]byte(body), testLimits.MaxDepth)
			if c.Request != nil || c.Err == nil {
				t.Errorf("ParseRequest: got %s, want an error", describe(c))
			}
		})
	}
}

func TestParseBatch(t *testing.T) {
	one := func(id int) string { return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"m%d"}`, id, id) }
	batchOf := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = one(i)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	t.Run("empty batch", func(t *testing.T) {
		for _, body := range []string{`[]`, `[ ]`, " [\n] "} {
			p, err := jsonrpc.Parse([]byte(body), testLimits)
			if err == nil || err.Code != jsonrpc.CodeInvalidRequest || !strings.Contains(err.Message, "empty batch") {
				t.Errorf("Parse(%q) = %+v, %v; want -32600 empty batch", body, p, err)
			}
		}
	})
	t.Run("at the limit", func(t *testing.T) {
		p, err := jsonrpc.Parse([]byte(batchOf(testLimits.MaxBatch)), testLimits)
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		if !p.Batch || len(p.Calls) != testLimits.MaxBatch {
			t.Fatalf("batch=%v calls=%d, want batch of %d", p.Batch, len(p.Calls), testLimits.MaxBatch)
		}
		for i, c := range p.Calls {
			if c.Err != nil || c.Request.Method != fmt.Sprintf("m%d", i) || string(c.Request.ID) != fmt.Sprint(i) {
				t.Errorf("call %d: %s", i, describe(c))
			}
		}
	})
	t.Run("over the limit", func(t *testing.T) {
		p, err := jsonrpc.Parse([]byte(batchOf(testLimits.MaxBatch+1)), testLimits)
		if err == nil {
			t.Fatalf("got %d calls, want an error", len(p.Calls))
		}
		if err.Code != jsonrpc.CodeInvalidRequest || !strings.Contains(err.Message, "over the limit") {
			t.Errorf("got %d %q", err.Code, err.Message)
		}
		if !strings.Contains(err.Message, fmt.Sprint(testLimits.MaxBatch+1)) || !strings.Contains(err.Message, fmt.Sprint(testLimits.MaxBatch)) {
			t.Errorf("message %q should give the size and the limit", err.Message)
		}
	})
	t.Run("no batch allowed", func(t *testing.T) {
		if _, err := jsonrpc.Parse([]byte(batchOf(1)), jsonrpc.Limits{MaxBatch: 0, MaxDepth: 8}); err == nil || err.Code != jsonrpc.CodeInvalidRequest {
			t.Errorf("MaxBatch 0: got %v, want -32600", err)
		}
	})
	t.Run("batch of one is still a batch", func(t *testing.T) {
		p, err := jsonrpc.Parse([]byte(batchOf(1)), testLimits)
		if err != nil || !p.Batch || len(p.Calls) != 1 {
			t.Fatalf("got %+v, %v", p, err)
		}
	})
	t.Run("mixed entries keep their own errors and ids", func(t *testing.T) {
		body := `[ {"jsonrpc":"2.0","id":1,"method":"a"} , 5, {"jsonrpc":"2.0","id":"x","method":7}, {"jsonrpc":"2.0","method":"n"}, {"jsonrpc":"2.0","id":[],"method":"b"} ]`
		p, err := jsonrpc.Parse([]byte(body), testLimits)
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		want := []struct {
			ok      bool
			replyID string
			notif   bool
		}{
			{true, "1", false},
			{false, "null", false},
			{false, `"x"`, false},
			{true, "null", true},
			{false, "null", false},
		}
		if len(p.Calls) != len(want) {
			t.Fatalf("%d calls, want %d", len(p.Calls), len(want))
		}
		for i, w := range want {
			c := p.Calls[i]
			if (c.Request != nil) != w.ok || (c.Err != nil) == w.ok {
				t.Errorf("call %d: %s, want ok=%v", i, describe(c), w.ok)
				continue
			}
			if string(c.ID) != w.replyID {
				t.Errorf("call %d: reply id %s, want %s", i, c.ID, w.replyID)
			}
			if c.Err != nil && c.Err.Code != jsonrpc.CodeInvalidRequest {
				t.Errorf("call %d: code %d, want -32600", i, c.Err.Code)
			}
			if w.ok && c.Request.IsNotification() != w.notif {
				t.Errorf("call %d: notification=%v, want %v", i, c.Request.IsNotification(), w.notif)
			}
		}
	})
	t.Run("nested batch entry is invalid", func(t *testing.T) {
		p, err := jsonrpc.Parse([]byte(`[[{"jsonrpc":"2.0","id":1,"method":"a"}]]`), testLimits)
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		if len(p.Calls) != 1 || p.Calls[0].Err == nil || p.Calls[0].Err.Code != jsonrpc.CodeInvalidRequest {
			t.Fatalf("got %+v", p.Calls)
		}
	})
	t.Run("ParseRequest rejects a batch", func(t *testing.T) {
		c := jsonrpc.ParseRequest([]byte(batchOf(1)), 8)
		if c.Request != nil || c.Err == nil || c.Err.Code != jsonrpc.CodeInvalidRequest {
			t.Fatalf("got %s, want -32600", describe(c))
		}
	})
}

func TestParseDepthLimit(t *testing.T) {
	// nest wraps a JSON value in n arrays.
	nest := func(n int, inner string) string {
		return strings.Repeat("[", n) + inner + strings.Repeat("]", n)
	}
	const max = 4
	lim := jsonrpc.Limits{MaxBatch: 10, MaxDepth: max}
	cases := []struct {
		name    string
		body    string
		tooDeep bool
	}{
		// The request object itself is depth 1, params depth 2.
		{"params at the limit", req("1", `"method":"a","params":`+nest(max-1, "1")), false},
		{"params one over", req("1", `"method":"a","params":`+nest(max, "1")), true},
		{"objects count too", req("1", `"method":"a","params":{"a":{"b":{"c":{"d":1}}}}`), true},
		{"objects at the limit", req("1", `"method":"a","params":{"a":{"b":{"c":1}}}`), false},
		{"brackets in strings are not counted", req("1", `"method":"a","params":["[[[[[[{{{{{{"]`), false},
		{"closing brackets in strings are not counted", req("1", `"method":"a","params":["]]]]]]","[[[[[[["]`), false},
		{"escaped quote does not end the string", req("1", `"method":"a","params":["\"[[[[[[["]`), false},
		{"escaped backslash ends before the quote", req("1", `"method":"a","params":["\\",[[[1]]]]`), true},
		{"escaped backslash then brackets outside", req("1", `"method":"a","params":["\\",[[1]]]`), false},
		{"deep id value", req(nest(max, "1"), `"method":"a"`), true},
		{"batch counts as a level", "[" + req("1", `"method":"a","params":`+nest(max-2, "1")) + "]", false},
		{"batch one over", "[" + req("1", `"method":"a","params":`+nest(max-1, "1")) + "]", true},
		{"hostile depth", nest(100000, ""), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := jsonrpc.Parse([]byte(tc.body), lim)
			if tc.tooDeep {
				if err == nil {
					t.Fatalf("got %+v, want a depth error", p)
				}
				if err.Code != jsonrpc.CodeInvalidRequest || !strings.Contains(err.Message, "nested deeper") {
					t.Errorf("got %d %q, want -32600 nested deeper", err.Code, err.Message)
				}
				if !strings.HasPrefix(tc.body, "[") {
					c := jsonrpc.ParseRequest([]byte(tc.body), max)
					if c.Err == nil || c.Err.Code != jsonrpc.CodeInvalidRequest || string(c.ID) != "null" {
						t.Errorf("ParseRequest: got %s, want -32600 with null id", describe(c))
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			for i, c := range p.Calls {
				if c.Err != nil {
					t.Errorf("call %d: unexpected error %v", i, c.Err)
				}
			}
		})
	}
	t.Run("zero means unlimited", func(t *testing.T) {
		body := req("1", `"method":"a","params":`+nest(500, "1"))
		if _, err := jsonrpc.Parse([]byte(body), jsonrpc.Limits{MaxBatch: 1}); err != nil {
			t.Fatalf("MaxDepth 0: %v", err)
		}
	})
}

func TestParseMethodNames(t *testing.T) {
	cases := []struct {
		name   string
		method string // raw JSON of the method member
		want   string
	}{
		{"plain", `"system_chain"`, "system_chain"},
		{"escaped underscore", `"system\u005fchain"`, "system_chain"},
		{"fully escaped", `"\u0073\u0079\u0073\u0074\u0065\u006d\u005f\u0063\u0068\u0061\u0069\u006e"`, "system_chain"},
		{"escaped slash", `"a\/b"`, "a/b"},
		{"escaped quote", `"a\"b"`, `a"b`},
		{"unicode", `"m\u00e9thode"`, "méthode"},
		{"raw utf8", `"メソッド"`, "メソッド"},
		{"escaped to unsafe name", `"author\u005frotateKeys"`, "author_rotateKeys"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := parseSingle(t, req("1", `"method":`+tc.method), testLimits)
			if c.Err != nil {
				t.Fatalf("unexpected error %v", c.Err)
			}
			if c.Request.Method != tc.want {
				t.Errorf("method = %q, want %q", c.Request.Method, tc.want)
			}
		})
	}
}

func TestParseDuplicateMembers(t *testing.T) {
	cases := []struct {
		name       string
		body       string
		wantMethod string
		wantID     string
		wantParams string
	}{
		{"duplicate method: last wins", `{"jsonrpc":"2.0","id":1,"method":"system_chain","method":"author_rotateKeys"}`, "author_rotateKeys", "1", ""},
		{"duplicate method: last wins, shorter", `{"jsonrpc":"2.0","id":1,"method":"author_rotateKeys","method":"a"}`, "a", "1", ""},
		{"duplicate id: last wins", `{"jsonrpc":"2.0","id":1,"method":"a","id":"two"}`, "a", `"two"`, ""},
		{"duplicate params: last wins", `{"jsonrpc":"2.0","id":1,"method":"a","params":[1],"params":{"k":2}}`, "a", "1", `{"k":2}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := parseSingle(t, tc.body, testLimits)
			if c.Err != nil {
				t.Fatalf("unexpected error %v", c.Err)
			}
			if c.Request.Method != tc.wantMethod {
				t.Errorf("method = %q, want %q", c.Request.Method, tc.wantMethod)
			}
			if string(c.Request.ID) != tc.wantID || string(c.ID) != tc.wantID {
				t.Errorf("id = %s / reply %s, want %s", c.Request.ID, c.ID, tc.wantID)
			}
			if string(c.Request.Params) != tc.wantParams {
				t.Errorf("params = %s, want %s", c.Request.Params, tc.wantParams)
			}
			// What is forwarded upstream is the method that was checked.
			up := jsonrpc.AppendRequest(nil, 9, c.Request.Method, c.Request.ParamsOrEmpty())
			var m struct{ Method string }
			if err := json.Unmarshal(up, &m); err != nil || m.Method != tc.wantMethod {
				t.Errorf("upstream request %s carries method %q, want %q", up, m.Method, tc.wantMethod)
			}
		})
	}
	t.Run("duplicate method: last one wrong type", func(t *testing.T) {
		c := parseSingle(t, `{"jsonrpc":"2.0","id":1,"method":"a","method":5}`, testLimits)
		if c.Err == nil || c.Err.Code != jsonrpc.CodeInvalidRequest {
			t.Fatalf("got %s, want -32600", describe(c))
		}
	})
}

func TestParseMemberNamesAreCaseSensitive(t *testing.T) {
	// JSON-RPC member names are case-sensitive: "Method" is an unknown
	// member, not the method; "ID" is not the id.
	cases := []struct {
		name string
		body string
		// check returns "" when the call is handled correctly.
		check func(c jsonrpc.Call) string
	}{
		{"upper-case members are unknown", `{"JSONRPC":"2.0","ID":1,"METHOD":"a"}`, func(c jsonrpc.Call) string {
			if c.Err == nil || c.Err.Code != jsonrpc.CodeInvalidRequest {
				return "accepted a request without the jsonrpc and method members"
			}
			return ""
		}},
		{"Method does not override method", `{"jsonrpc":"2.0","id":1,"method":"system_chain","Method":"author_rotateKeys"}`, func(c jsonrpc.Call) string {
			if c.Request == nil || c.Request.Method != "system_chain" {
				return "an unknown member \"Method\" replaced the method"
			}
			return ""
		}},
		{"Id does not make a call", `{"jsonrpc":"2.0","Id":1,"method":"a"}`, func(c jsonrpc.Call) string {
			if c.Request == nil || !c.Request.IsNotification() {
				return "an unknown member \"Id\" was taken as the id"
			}
			return ""
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := parseSingle(t, tc.body, testLimits)
			if msg := tc.check(c); msg != "" {
				t.Fatalf("regression: jsonrpc/scan.go memberName matches member names case-insensitively "+
					"(as encoding/json does for structs): %s (%s). Compare the decoded key byte for byte instead.", msg, describe(c))
			}
		})
	}
}

func TestParseParams(t *testing.T) {
	cases := []struct {
		name string
		raw  string // params member; "" = absent
		want string // Params; "" = nil
	}{
		{"absent", "", ""},
		{"null", `null`, ""},
		{"empty array", `[]`, `[]`},
		{"empty object", `{}`, `{}`},
		{"array compacted", "[ 1 ,\n \"a b\" , { \"k\" : [ ] } ]", `[1,"a b",{"k":[]}]`},
		{"object compacted", "{ \"a\" : 1 }", `{"a":1}`},
		{"strings keep their spaces", `["  x  "]`, `["  x  "]`},
		{"huge number kept", `[123456789012345678901234567890]`, `[123456789012345678901234567890]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rest := `"method":"a"`
			if tc.raw != "" {
				rest += `,"params":` + tc.raw
			}
			c := parseSingle(t, req("1", rest), testLimits)
			if c.Err != nil {
				t.Fatalf("unexpected error %v", c.Err)
			}
			if tc.want == "" {
				if c.Request.Params != nil {
					t.Errorf("Params = %s, want nil", c.Request.Params)
				}
				if string(c.Request.ParamsOrEmpty()) != "[]" {
					t.Errorf("ParamsOrEmpty = %s, want []", c.Request.ParamsOrEmpty())
				}
				return
			}
			if string(c.Request.Params) != tc.want {
				t.Errorf("Params = %s, want %s", c.Request.Params, tc.want)
			}
			if string(c.Request.ParamsOrEmpty()) != tc.want {
				t.Errorf("ParamsOrEmpty = %s, want %s", c.Request.ParamsOrEmpty(), tc.want)
			}
		})
	}
}

func TestParseUnknownMembersIgnored(t *testing.T) {
	c := parseSingle(t, `{"jsonrpc":"2.0","id":3,"method":"a","extra":{"deep":[1,2]},"x":null}`, testLimits)
	if c.Err != nil || c.Request.Method != "a" || string(c.Request.ID) != "3" {
		t.Fatalf("got %s", describe(c))
	}
}

func TestParseDoesNotAliasInput(t *testing.T) {
	body := []byte(`{"jsonrpc":"2.0","id":"abc","method":"m","params":[1]}`)
	c := jsonrpc.ParseRequest(body, 8)
	if c.Err != nil {
		t.Fatal(c.Err)
	}
	for i := range body {
		body[i] = ' '
	}
	if string(c.Request.ID) != `"abc"` || string(c.Request.Params) != `[1]` || c.Request.Method != "m" {
		t.Fatalf("request changed when the input buffer was reused: %s", describe(c))
	}
}

// A request that is not valid UTF-8 anywhere (method, id, params, between
// members) is refused whole with -32700: its params would be forwarded as
// they came, and a node closes a connection on a text frame that is not
// UTF-8.
func TestParseRefusesInvalidUTF8(t *testing.T) {
	cases := []struct{ name, body string }{
		{"params string", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"state_getStorage\",\"params\":[\"0x\xff\"]}"},
		{"params object key", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{\"\xc0\xaf\":1}}"},
		{"method", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"system_\xffchain\"}"},
		{"id", "{\"jsonrpc\":\"2.0\",\"id\":\"\xfe\",\"method\":\"system_chain\"}"},
		{"unknown member", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"x\":\"\xed\xa0\x80\"}"},
		{"truncated rune", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":[\"\xe6\x97\"]}"},
		{"batch entry", "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"},{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"m\",\"params\":[\"\x80\"]}]"},
		{"outside strings", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"}\xff"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := jsonrpc.Parse([]byte(tc.body), jsonrpc.Limits{MaxBatch: 4, MaxDepth: 8})
			if p != nil || err == nil || err.Code != jsonrpc.CodeParseError || !strings.Contains(err.Message, "UTF-8") {
				t.Fatalf("Parse = %+v, %+v; want -32700 invalid UTF-8", p, err)
			}
			if !strings.HasPrefix(tc.body, "[") {
				c := jsonrpc.ParseRequest([]byte(tc.body), 8)
				if c.Request != nil || c.Err == nil || c.Err.Code != jsonrpc.CodeParseError || string(c.ID) != "null" {
					t.Fatalf("ParseRequest = %+v; want -32700 with a null id", c)
				}
			}
		})
	}
	// Valid multi-byte text still passes, unchanged.
	c := jsonrpc.ParseRequest([]byte(`{"jsonrpc":"2.0","id":"日","method":"m","params":["メソッド"]}`), 8)
	if c.Err != nil || string(c.Request.Params) != `["メソッド"]` || string(c.ID) != `"日"` {
		t.Fatalf("valid UTF-8: %+v %+v", c.Request, c.Err)
	}
}
