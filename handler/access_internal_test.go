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

func TestIPLimitKey(t *testing.T) {
	cases := []struct{ name, ip, want string }{
		{"IPv4 as it is", "203.0.113.7", "203.0.113.7"},
		{"IPv4-mapped IPv6 as IPv4", "::ffff:203.0.113.7", "203.0.113.7"},
		{"IPv6 by its /64", "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{"another address of the same /64", "2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"another /64", "2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"loopback", "::1", "::/64"},
		{"not an address", "unknown", "unknown"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ipLimitKey(tc.ip); got != tc.want {
				t.Fatalf("ipLimitKey(%q) = %q, want %q", tc.ip, got, tc.want)
			}
		})
	}
}
