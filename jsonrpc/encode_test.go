package jsonrpc_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/elara-gateway/elara/jsonrpc"
)

// awkward strings for messages and method names.
var awkwardStrings = []struct{ name, s string }{
	{"plain", "hello"},
	{"empty", ""},
	{"double quotes", `say "hi"`},
	{"backslashes", `C:\path\to\thing\`},
	{"json-looking", `"},"result":1,"x":{"`},
	{"newlines and tabs", "a\nb\tc\r"},
	{"control chars", "\x00\x01\x1f"},
	{"unicode", "héllo wörld – 日本語 🙂"},
	{"html", "<script>&</script>"},
	{"line separators", "\u2028\u2029"},
	{"invalid utf8", "a\xffb\xc0"},
}

func mustDecode(t *testing.T, b []byte) map[string]json.RawMessage {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("not valid JSON: %s", b)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %s: %v", b, err)
	}
	if string(m["jsonrpc"]) != `"2.0"` {
		t.Errorf("jsonrpc member = %s in %s", m["jsonrpc"], b)
	}
	return m
}

func TestAppendResult(t *testing.T) {
	cases := []struct {
		name       string
		id, result string
		want       string
	}{
		{"number id", `1`, `"0x00"`, `{"jsonrpc":"2.0","id":1,"result":"0x00"}`},
		{"string id", `"a\"b"`, `{"k":[1,2]}`, `{"jsonrpc":"2.0","id":"a\"b","result":{"k":[1,2]}}`},
		{"null id", `null`, `true`, `{"jsonrpc":"2.0","id":null,"result":true}`},
		{"nil id", ``, `1`, `{"jsonrpc":"2.0","id":null,"result":1}`},
		{"nil result", `7`, ``, `{"jsonrpc":"2.0","id":7,"result":null}`},
		{"null result", `7`, `null`, `{"jsonrpc":"2.0","id":7,"result":null}`},
		{"huge id", `123456789012345678901234567890`, `0`, `{"jsonrpc":"2.0","id":123456789012345678901234567890,"result":0}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var id, result json.RawMessage
			if tc.id != "" {
				id = json.RawMessage(tc.id)
			}
			if tc.result != "" {
				result = json.RawMessage(tc.result)
			}
			got := jsonrpc.AppendResult(nil, id, result)
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			mustDecode(t, got)
		})
	}
	t.Run("appends", func(t *testing.T) {
		got := jsonrpc.AppendResult([]byte("prefix"), json.RawMessage("1"), json.RawMessage("2"))
		if want := `prefix{"jsonrpc":"2.0","id":1,"result":2}`; string(got) != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
}

func TestAppendError(t *testing.T) {
	for _, s := range awkwardStrings {
		t.Run(s.name, func(t *testing.T) {
			e := &jsonrpc.Error{Code: -32000, Message: s.s}
			got := jsonrpc.AppendError(nil, json.RawMessage(`"id"`), e)
			m := mustDecode(t, got)
			var back jsonrpc.Error
			if err := json.Unmarshal(m["error"], &back); err != nil {
				t.Fatalf("error member %s: %v", m["error"], err)
			}
			if back.Code != -32000 {
				t.Errorf("code = %d", back.Code)
			}
			if want := strings.ToValidUTF8(s.s, "\uFFFD"); back.Message != want {
				t.Errorf("message = %q, want %q", back.Message, want)
			}
			if _, ok := m["data"]; ok {
				t.Errorf("top-level data member in %s", got)
			}
			if _, ok := m["result"]; ok {
				t.Errorf("result member in an error reply: %s", got)
			}
		})
	}
	cases := []struct {
		name string
		id   json.RawMessage
		e    *jsonrpc.Error
		want string
	}{
		{"nil id is null", nil, jsonrpc.ErrParse, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`},
		{"with data", json.RawMessage(`5`), &jsonrpc.Error{Code: 1010, Message: "Invalid Transaction", Data: json.RawMessage(`"Inability to pay some fees"`)},
			`{"jsonrpc":"2.0","id":5,"error":{"code":1010,"message":"Invalid Transaction","data":"Inability to pay some fees"}}`},
		{"object data", json.RawMessage(`"x"`), &jsonrpc.Error{Code: -1, Message: "m", Data: json.RawMessage(`{"a":[1]}`)},
			`{"jsonrpc":"2.0","id":"x","error":{"code":-1,"message":"m","data":{"a":[1]}}}`},
		{"empty data omitted", json.RawMessage(`1`), &jsonrpc.Error{Code: 2, Message: "m", Data: json.RawMessage{}},
			`{"jsonrpc":"2.0","id":1,"error":{"code":2,"message":"m"}}`},
		{"positive code", json.RawMessage(`1`), jsonrpc.NewError(1013, "Transaction Already Imported"),
			`{"jsonrpc":"2.0","id":1,"error":{"code":1013,"message":"Transaction Already Imported"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := jsonrpc.AppendError(nil, tc.id, tc.e)
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			mustDecode(t, got)
		})
	}
}

func TestStandardErrors(t *testing.T) {
	cases := []struct {
		name string
		e    *jsonrpc.Error
		code int
	}{
		{"parse", jsonrpc.ErrParse, -32700},
		{"invalid request", jsonrpc.ErrInvalidRequest, -32600},
		{"method not found", jsonrpc.ErrMethodNotFound, -32601},
		{"subscriptions on http", jsonrpc.ErrSubscriptionsOnHTTP, -32090},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.e.Code != tc.code {
				t.Errorf("code = %d, want %d", tc.e.Code, tc.code)
			}
			if s := tc.e.Error(); !strings.Contains(s, tc.e.Message) || !strings.Contains(s, "-32") {
				t.Errorf("Error() = %q", s)
			}
		})
	}
	var err error = jsonrpc.NewError(-32000, "x")
	if err.Error() != "json-rpc error -32000: x" {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestAppendNotification(t *testing.T) {
	for _, s := range awkwardStrings {
		t.Run("method "+s.name, func(t *testing.T) {
			got := jsonrpc.AppendNotification(nil, s.s, json.RawMessage(`"sub\"1"`), json.RawMessage(`{"number":"0x1"}`))
			m := mustDecode(t, got)
			var method string
			if err := json.Unmarshal(m["method"], &method); err != nil {
				t.Fatal(err)
			}
			if want := strings.ToValidUTF8(s.s, "\uFFFD"); method != want {
				t.Errorf("method = %q, want %q", method, want)
			}
			if _, ok := m["id"]; ok {
				t.Errorf("a notification has an id: %s", got)
			}
			var params struct {
				Subscription json.RawMessage
				Result       json.RawMessage
			}
			if err := json.Unmarshal(m["params"], &params); err != nil {
				t.Fatal(err)
			}
			if string(params.Subscription) != `"sub\"1"` || string(params.Result) != `{"number":"0x1"}` {
				t.Errorf("params = %s", m["params"])
			}
		})
	}
	cases := []struct {
		name         string
		subscription string
		result       json.RawMessage
		want         string
	}{
		{"nil result is null", `"abc"`, nil, `{"jsonrpc":"2.0","method":"chain_newHead","params":{"subscription":"abc","result":null}}`},
		{"numeric subscription", `42`, json.RawMessage(`"ready"`), `{"jsonrpc":"2.0","method":"chain_newHead","params":{"subscription":42,"result":"ready"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := jsonrpc.AppendNotification(nil, "chain_newHead", json.RawMessage(tc.subscription), tc.result)
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			mustDecode(t, got)
		})
	}
}

func TestAppendRequest(t *testing.T) {
	for _, s := range awkwardStrings {
		if s.s == "" {
			continue
		}
		t.Run("method "+s.name, func(t *testing.T) {
			got := jsonrpc.AppendRequest(nil, 1, s.s, nil)
			mustDecode(t, got)
			c := jsonrpc.ParseRequest(got, 8)
			if c.Err != nil {
				t.Fatalf("re-parsing %s: %v", got, c.Err)
			}
			if want := strings.ToValidUTF8(s.s, "\uFFFD"); c.Request.Method != want {
				t.Errorf("method = %q, want %q", c.Request.Method, want)
			}
		})
	}
	cases := []struct {
		name   string
		id     uint64
		params json.RawMessage
		want   string
	}{
		{"nil params become []", 1, nil, `{"jsonrpc":"2.0","id":1,"method":"m","params":[]}`},
		{"empty params become []", 2, json.RawMessage{}, `{"jsonrpc":"2.0","id":2,"method":"m","params":[]}`},
		{"array params", 3, json.RawMessage(`["0x1",true]`), `{"jsonrpc":"2.0","id":3,"method":"m","params":["0x1",true]}`},
		{"object params", 4, json.RawMessage(`{"a":1}`), `{"jsonrpc":"2.0","id":4,"method":"m","params":{"a":1}}`},
		{"zero id", 0, nil, `{"jsonrpc":"2.0","id":0,"method":"m","params":[]}`},
		{"max id", ^uint64(0), nil, `{"jsonrpc":"2.0","id":18446744073709551615,"method":"m","params":[]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := jsonrpc.AppendRequest(nil, tc.id, "m", tc.params)
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			mustDecode(t, got)
		})
	}
}

func TestRequestHelpers(t *testing.T) {
	r := &jsonrpc.Request{Method: "m"}
	if !r.IsNotification() {
		t.Error("nil ID should be a notification")
	}
	if string(r.ParamsOrEmpty()) != "[]" {
		t.Errorf("ParamsOrEmpty = %s", r.ParamsOrEmpty())
	}
	r.ID = json.RawMessage("null")
	if r.IsNotification() {
		t.Error("null ID is a call, not a notification")
	}
}
