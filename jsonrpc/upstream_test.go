package jsonrpc_test

import (
	"encoding/json"
	"testing"

	"github.com/elara-gateway/elara/jsonrpc"
)

func TestMessageFromNode(t *testing.T) {
	cases := []struct {
		name         string
		raw          string
		notification bool
		id           string
		result       string
		errCode      int
		noteResult   string
	}{
		{"result", `{"jsonrpc":"2.0","id":4,"result":"0xab"}`, false, "4", `"0xab"`, 0, ""},
		{"null result", `{"jsonrpc":"2.0","id":4,"result":null}`, false, "4", "null", 0, ""},
		{"error", `{"jsonrpc":"2.0","id":5,"error":{"code":-32601,"message":"Method not found"}}`, false, "5", "", -32601, ""},
		{"notification", `{"jsonrpc":"2.0","method":"chain_newHead","params":{"subscription":"abc","result":{"number":"0x1"}}}`, true, "", "", 0, `{"number":"0x1"}`},
		{"numeric subscription", `{"jsonrpc":"2.0","method":"m","params":{"subscription":7,"result":1}}`, true, "", "", 0, "1"},
		{"notification with error", `{"jsonrpc":"2.0","method":"m","params":{"subscription":"s","error":{"code":1,"message":"x"}}}`, true, "", "", 0, `{"code":1,"message":"x"}`},
		{"method without subscription is not a notification", `{"jsonrpc":"2.0","method":"m","params":[1]}`, false, "", "", 0, ""},
		{"request with an id is not a notification", `{"jsonrpc":"2.0","id":1,"method":"m","params":{"subscription":"s","result":1}}`, false, "1", "", 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m jsonrpc.Message
			if err := json.Unmarshal([]byte(tc.raw), &m); err != nil {
				// params as an array cannot fill the struct; that is a
				// message the session ignores anyway.
				if tc.notification {
					t.Fatal(err)
				}
				return
			}
			if got := m.IsNotification(); got != tc.notification {
				t.Errorf("IsNotification = %v, want %v", got, tc.notification)
			}
			if string(m.ID) != tc.id {
				t.Errorf("ID = %s, want %s", m.ID, tc.id)
			}
			if string(m.Result) != tc.result {
				t.Errorf("Result = %s, want %s", m.Result, tc.result)
			}
			if tc.errCode != 0 {
				if m.Error == nil || m.Error.Code != tc.errCode {
					t.Errorf("Error = %+v, want code %d", m.Error, tc.errCode)
				}
			} else if m.Error != nil {
				t.Errorf("unexpected Error %+v", m.Error)
			}
			if tc.notification {
				if got := string(m.NotificationResult()); got != tc.noteResult {
					t.Errorf("NotificationResult = %s, want %s", got, tc.noteResult)
				}
			}
		})
	}
}
