package jsonrpc_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/elara-gateway/elara/jsonrpc"
)

func FuzzParse(f *testing.F) {
	seeds := []string{
		``,
		` `,
		`{}`,
		`[]`,
		`[1]`,
		`null`,
		`"x"`,
		`{"jsonrpc":"2.0","id":1,"method":"system_chain","params":[]}`,
		`{"jsonrpc":"2.0","id":"a\"b","method":"state_getStorage","params":["0x26aa",null]}`,
		`{"jsonrpc":"2.0","id":null,"method":"m"}`,
		`{"jsonrpc":"2.0","method":"notify","params":{"a":[1,{"b":2}]}}`,
		`{"jsonrpc":"2.0","id":1.5e3,"method":"m\u005fx"}`,
		`{"jsonrpc":"2.0","id":-0,"method":"m","method":"n"}`,
		`{"jsonrpc":"2.0","id":{},"method":"m"}`,
		`{"jsonrpc":"2.0","id":[1],"method":"m"}`,
		`{"jsonrpc":"2.0","id":true,"method":"m"}`,
		`{"jsonrpc":"1.0","id":1,"method":"m"}`,
		`{"jsonrpc":"2.0","id":1,"method":5}`,
		`{"jsonrpc":"2.0","id":1,"method":""}`,
		`{"jsonrpc":"2.0","id":1,"method":"m","params":"x"}`,
		`{"jsonrpc":"2.0","id":1,"method":"m","params":["[[[[\"{{{{"]}`,
		`{"jsonrpc":"2.0","id":1,"method":"\ud800"}`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\xffb\"}",
		`[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":2,"method":"b"},5,"x",[]]`,
		`[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]`,
		`{"jsonrpc":"2.0","id":1,"method":`,
		`{"JSONRPC":"2.0","ID":1,"METHOD":"a"}`,
		`{"jsonrpc":"2.0","id":18446744073709551616,"method":"<&>"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint8(3), uint8(8))
	}
	f.Fuzz(func(t *testing.T, body []byte, maxBatch, maxDepth uint8) {
		lim := jsonrpc.Limits{MaxBatch: int(maxBatch % 16), MaxDepth: int(maxDepth % 32)}
		p, perr := jsonrpc.Parse(body, lim)
		if perr != nil {
			if p != nil {
				t.Fatalf("Parse returned both %+v and %v", p, perr)
			}
			checkErrReply(t, nil, perr)
		} else {
			if p == nil || len(p.Calls) == 0 {
				t.Fatalf("Parse returned no calls and no error")
			}
			if !p.Batch && len(p.Calls) != 1 {
				t.Fatalf("non-batch with %d calls", len(p.Calls))
			}
			if p.Batch && len(p.Calls) > lim.MaxBatch {
				t.Fatalf("batch of %d over the limit %d", len(p.Calls), lim.MaxBatch)
			}
			for _, c := range p.Calls {
				checkCall(t, c)
			}
		}
		checkCall(t, jsonrpc.ParseRequest(body, lim.MaxDepth))
	})
}

func checkErrReply(t *testing.T, id json.RawMessage, e *jsonrpc.Error) {
	t.Helper()
	if reply := jsonrpc.AppendError(nil, id, e); !json.Valid(reply) {
		t.Fatalf("error reply is not valid JSON: %s", reply)
	}
}

func checkCall(t *testing.T, c jsonrpc.Call) {
	t.Helper()
	if (c.Request == nil) == (c.Err == nil) {
		t.Fatalf("call must have exactly one of Request and Err: %+v", c)
	}
	if len(c.ID) == 0 {
		t.Fatalf("call without a reply id: %+v", c)
	}
	if c.Err != nil {
		checkErrReply(t, c.ID, c.Err)
		return
	}
	r := c.Request
	if r.Method == "" {
		t.Fatalf("request with an empty method")
	}
	if r.ID != nil && !bytes.Equal(r.ID, c.ID) {
		t.Fatalf("request id %s differs from reply id %s", r.ID, c.ID)
	}
	if r.ID == nil && string(c.ID) != "null" {
		t.Fatalf("notification with reply id %s", c.ID)
	}
	if r.Params != nil && r.Params[0] != '[' && r.Params[0] != '{' {
		t.Fatalf("params %s are not an array or object", r.Params)
	}
	if res := jsonrpc.AppendResult(nil, c.ID, json.RawMessage("1")); !json.Valid(res) {
		t.Fatalf("result reply is not valid JSON: %s", res)
	}
	// What goes upstream is what was checked: re-encoding round-trips.
	up := jsonrpc.AppendRequest(nil, 42, r.Method, r.Params)
	if !json.Valid(up) {
		t.Fatalf("upstream request is not valid JSON: %s", up)
	}
	// A node closes a connection on a text frame that is not UTF-8.
	if !utf8.Valid(up) {
		t.Fatalf("upstream request is not valid UTF-8: %q", up)
	}
	// No depth limit here: nil params are sent as [], one level deeper.
	back := jsonrpc.ParseRequest(up, 0)
	if back.Err != nil {
		t.Fatalf("re-parsing %s: %v", up, back.Err)
	}
	if back.Request.Method != r.Method {
		t.Fatalf("method %q came back as %q", r.Method, back.Request.Method)
	}
	if string(back.Request.ParamsOrEmpty()) != string(r.ParamsOrEmpty()) {
		t.Fatalf("params %s came back as %s", r.ParamsOrEmpty(), back.Request.ParamsOrEmpty())
	}
	if string(back.Request.ID) != "42" {
		t.Fatalf("id came back as %s", back.Request.ID)
	}
}
