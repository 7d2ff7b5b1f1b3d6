package jsonrpc_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/elara-gateway/elara/jsonrpc"
)

var nodeMessages = []string{
	`{"jsonrpc":"2.0","id":7,"result":"0x1234"}`,
	`{"jsonrpc":"2.0","id":7,"result":null}`,
	`{"jsonrpc":"2.0","id":7,"result":{"methods":["a","b"]}}`,
	` { "jsonrpc" : "2.0" , "id" : 7 , "result" : [ 1 , 2 ] } `,
	`{"jsonrpc":"2.0","id":8,"error":{"code":-32601,"message":"Method not found"}}`,
	`{"jsonrpc":"2.0","id":8,"error":{"code":4003,"message":"Client error","data":"x"}}`,
	`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`,
	`{"jsonrpc":"2.0","method":"chain_newHead","params":{"subscription":"abc","result":{"number":"0x1"}}}`,
	`{"jsonrpc":"2.0","method":"chain_newHead","params":{"subscription":12,"result":null}}`,
	`{"jsonrpc":"2.0","method":"x","params":{"subscription":"abc","error":{"code":1,"message":"gone"}}}`,
	`{"jsonrpc":"2.0","me\u0074hod":"a\u005fb","params":{"subscr\u0069ption":"s","result":1}}`,
	`{"id":1,"result":"` + strings.Repeat("ab", 5000) + `"}`,
	`{"id":1,"result":1,"result":2}`,
}

var badNodeMessages = []string{``, `[]`, `"x"`, `{"id":1,}`, `{"id":1} x`, `{"id":01}`, `{"id":1,"result":tru}`, `{"id":1,"error":"oops"}`}

// ParseMessage must agree with encoding/json on every message a node sends.
func TestParseMessageMatchesEncodingJSON(t *testing.T) {
	for _, raw := range nodeMessages {
		t.Run(raw[:min(len(raw), 40)], func(t *testing.T) {
			var want jsonrpc.Message
			if err := json.Unmarshal([]byte(raw), &want); err != nil {
				t.Fatalf("reference: %v", err)
			}
			got, err := jsonrpc.ParseMessage([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			if !sameMessage(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
	for _, raw := range badNodeMessages {
		if _, err := jsonrpc.ParseMessage([]byte(raw)); err == nil {
			t.Errorf("%q accepted", raw)
		}
	}
}

func sameMessage(a, b jsonrpc.Message) bool {
	return bytes.Equal(a.ID, b.ID) && a.Method == b.Method && bytes.Equal(a.Result, b.Result) &&
		reflect.DeepEqual(a.Error, b.Error) && bytes.Equal(a.Params.Subscription, b.Params.Subscription) &&
		bytes.Equal(a.Params.Result, b.Params.Result) && bytes.Equal(a.Params.Error, b.Params.Error)
}

func FuzzParseMessage(f *testing.F) {
	for _, m := range append(nodeMessages, badNodeMessages...) {
		f.Add([]byte(m))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := jsonrpc.ParseMessage(data)
		var want jsonrpc.Message
		werr := json.Unmarshal(data, &want)
		var typeErr *json.UnmarshalTypeError
		if errors.As(werr, &typeErr) || caseVariantKeys(data) {
			// Members of the wrong type are ignored, and names matched
			// exactly (encoding/json folds case): no reference to compare.
			return
		}
		if werr == nil && len(bytes.TrimSpace(data)) > 0 && bytes.TrimSpace(data)[0] == '{' {
			if err != nil {
				t.Fatalf("%q: rejected what encoding/json accepts: %v", data, err)
			}
			if !sameMessage(got, want) {
				t.Fatalf("%q:\ngot  %+v\nwant %+v", data, got, want)
			}
			return
		}
		if err == nil && werr != nil {
			t.Fatalf("%q: accepted what encoding/json rejects (%v)", data, werr)
		}
	})
}

func BenchmarkParseMessageMetadata(b *testing.B) {
	msg := []byte(`{"jsonrpc":"2.0","id":1,"result":"0x` + strings.Repeat("0123456789abcdef", 40000) + `"}`)
	b.SetBytes(int64(len(msg)))
	b.Run("ParseMessage", func(b *testing.B) {
		for b.Loop() {
			if _, err := jsonrpc.ParseMessage(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var m jsonrpc.Message
			if err := json.Unmarshal(msg, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// caseVariantKeys reports a member whose name differs from a known one
// only in case, at the top level or in params.
func caseVariantKeys(data []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return false
	}
	known := map[string]bool{"id": true, "method": true, "result": true, "error": true, "params": true, "subscription": true, "code": true, "message": true, "data": true}
	check := func(m map[string]json.RawMessage) bool {
		for k := range m {
			if l := strings.ToLower(k); known[l] && l != k {
				return true
			}
		}
		return false
	}
	if check(top) {
		return true
	}
	for _, name := range []string{"params", "error"} {
		var inner map[string]json.RawMessage
		if json.Unmarshal(top[name], &inner) == nil && check(inner) {
			return true
		}
	}
	return false
}
