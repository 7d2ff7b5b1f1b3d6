package fakenode

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Each operation answers "started" and sends its events right behind the
// reply, in the spec's order and shapes.
func TestChainHeadOperations(t *testing.T) {
	n := Start(t)
	c := n.Chain()
	c.SetStorage("0x0a01", "0xaa")
	c.SetStorage("0x0a02", "0xbb")
	ws := dial(t, n)
	ws.call("author_submitExtrinsic", "0x0102")
	b := c.NewBlockFinalized()
	sub := follow(t, ws, false)
	ws.mustNext() // initialized
	unknown := "0x" + strings.Repeat("ab", 32)

	cases := []struct {
		name    string
		method  string
		params  []any
		events  []string // after the reply, with %s for the operation id
		wantErr int
	}{
		{"body", "chainHead_v1_body", []any{sub, b.Hash},
			[]string{`{"event":"operationBodyDone","operationId":"%s","value":["0x0102"]}`}, 0},
		{"call", "chainHead_v1_call", []any{sub, b.Hash, "Core_version", "0x"},
			[]string{`{"event":"operationCallDone","operationId":"%s","output":"0x"}`}, 0},
		{"storage value and hash", "chainHead_v1_storage", []any{sub, b.Hash, []map[string]string{{"key": "0x0a01", "type": "value"}, {"key": "0x0a02", "type": "hash"}, {"key": "0x0bad", "type": "value"}}, nil},
			[]string{`{"event":"operationStorageItems","operationId":"%s","items":[{"key":"0x0a01","value":"0xaa"},{"key":"0x0a02","hash":"` + hashHex("0xbb") + `"}]}`,
				`{"event":"operationStorageDone","operationId":"%s"}`}, 0},
		{"storage descendants", "chainHead_v1_storage", []any{sub, b.Hash, []map[string]string{{"key": "0x0a", "type": "descendantsValues"}}, nil},
			[]string{`{"event":"operationStorageItems","operationId":"%s","items":[{"key":"0x0a01","value":"0xaa"},{"key":"0x0a02","value":"0xbb"}]}`,
				`{"event":"operationStorageDone","operationId":"%s"}`}, 0},
		{"storage of nothing", "chainHead_v1_storage", []any{sub, b.Hash, []map[string]string{{"key": "0x0bad", "type": "value"}}, nil},
			[]string{`{"event":"operationStorageDone","operationId":"%s"}`}, 0},
		{"unknown block", "chainHead_v1_body", []any{sub, unknown}, nil, -32801},
		{"unknown subscription", "chainHead_v1_body", []any{"abcdefghijklmnop", b.Hash}, nil, CodeInvalidParams},
		{"bad call params", "chainHead_v1_call", []any{sub, b.Hash, "Core_version", "zz"}, nil, CodeInvalidParams},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := ws.send(tc.method, tc.params...)
			r := ws.mustNext()
			if string(r.ID) != fmt.Sprint(id) {
				t.Fatalf("first message is not the reply: %s", r.raw)
			}
			if tc.wantErr != 0 {
				wantError(t, r, tc.wantErr, "")
				ws.expectNothing(50 * time.Millisecond)
				return
			}
			var started struct{ Result, OperationID string }
			if r.Error != nil || json.Unmarshal(r.Result, &started) != nil || started.Result != "started" || started.OperationID == "" {
				t.Fatalf("reply %s", r.raw)
			}
			for _, ev := range tc.events {
				expectEvent(t, ws, sub, strings.ReplaceAll(ev, "%s", started.OperationID))
			}
		})
	}
	t.Run("limitReached", func(t *testing.T) {
		n.LimitOperations(2)
		defer n.LimitOperations(0)
		var got []string
		for range 4 {
			r := ws.call("chainHead_v1_body", sub, b.Hash)
			var res struct{ Result string }
			_ = json.Unmarshal(r.Result, &res)
			got = append(got, res.Result)
			if res.Result == "started" {
				ws.mustNext() // operationBodyDone
			}
		}
		if strings.Join(got, ",") != "started,limitReached,started,limitReached" {
			t.Fatalf("results %v", got)
		}
		ws.expectNothing(50 * time.Millisecond)
	})
	t.Run("continue and stopOperation", func(t *testing.T) {
		wantError(t, ws.call("chainHead_v1_continue", sub, "op"), CodeInvalidParams, "Invalid operation id")
		if r := ws.call("chainHead_v1_stopOperation", sub, "op"); r.Error != nil || string(r.Result) != "null" {
			t.Fatalf("stopOperation: %s", r.raw)
		}
	})
}
