package handler

import (
	"encoding/json"
	"testing"

	"github.com/elara-gateway/elara/jsonrpc"
)

func TestIsErrorReply(t *testing.T) {
	e := jsonrpc.NewError(-32029, "over")
	for _, tc := range []struct {
		name  string
		id    json.RawMessage
		reply []byte
		want  bool
	}{
		{"result", json.RawMessage(`1`), jsonrpc.AppendResult(nil, json.RawMessage(`1`), json.RawMessage(`{"x":1,"error":{"code":1}}`)), false},
		{"error", json.RawMessage(`1`), jsonrpc.AppendError(nil, json.RawMessage(`1`), e), true},
		{"string id like an error", json.RawMessage(`",\"error\":"`), jsonrpc.AppendResult(nil, json.RawMessage(`",\"error\":"`), json.RawMessage(`1`)), false},
		{"null id error", nil, jsonrpc.AppendError(nil, nil, e), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isErrorReply(tc.reply, tc.id); got != tc.want {
				t.Fatalf("isErrorReply(%s) = %v", tc.reply, got)
			}
		})
	}
}
