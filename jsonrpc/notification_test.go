package jsonrpc

import (
	"encoding/json"
	"testing"
)

// A notification encoded once and spliced per subscriber is byte for
// byte the one encoded for that subscriber alone.
func TestNotificationForMatchesAppendNotification(t *testing.T) {
	for _, tc := range []struct {
		name, method string
		id, result   json.RawMessage
	}{
		{"string id", "chain_newHead", json.RawMessage(`"abcDEF123"`), json.RawMessage(`{"number":"0x1"}`)},
		{"number id", "state_storage", json.RawMessage(`42`), json.RawMessage(`{"block":"0x00","changes":[]}`)},
		{"no result", "chain_finalizedHead", json.RawMessage(`"x"`), nil},
		{"method to escape", "a\"b\\c\u2028", json.RawMessage(`"id"`), json.RawMessage(`null`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := NewNotification(tc.method, tc.result)
			got, want := n.For(tc.id), AppendNotification(nil, tc.method, tc.id, tc.result)
			if string(got) != string(want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
			if !json.Valid(got) {
				t.Fatalf("not JSON: %s", got)
			}
			// Frames of different subscribers share no bytes: a client's
			// queue may hold its frame while the next is built.
			other := n.For(json.RawMessage(`"other"`))
			if &other[0] == &got[0] || string(n.For(tc.id)) != string(want) {
				t.Fatal("frames share memory")
			}
		})
	}
}
