package app

import (
	"slices"
	"strings"
	"testing"
)

// Node labels name a node without anything secret a URL may carry, and
// stay distinct within a chain.
func TestNodeLabels(t *testing.T) {
	cases := []struct {
		name string
		urls []string
		want []string
	}{
		{"host and port", []string{"ws://127.0.0.1:9944"}, []string{"127.0.0.1:9944"}},
		{"default ports", []string{"wss://rpc.example.com", "https://rpc.example.org", "ws://a.example", "http://b.example"},
			[]string{"rpc.example.com:443", "rpc.example.org:443", "a.example:80", "b.example:80"}},
		{"credentials, path and query dropped", []string{"wss://user:s3cret@rpc.example.com/polkadot/KEY123?apikey=KEY456#frag"},
			[]string{"rpc.example.com:443"}},
		{"IPv6", []string{"ws://[::1]:9944"}, []string{"[::1]:9944"}},
		{"one provider, two keys", []string{"wss://rpc.example.com/KEY1", "wss://rpc.example.com/KEY2", "ws://127.0.0.1:9944"},
			[]string{"rpc.example.com:443#0", "rpc.example.com:443#1", "127.0.0.1:9944"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := nodeLabels(tc.urls)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for _, l := range got {
				for _, secret := range []string{"s3cret", "KEY", "user", "apikey"} {
					if strings.Contains(l, secret) {
						t.Fatalf("label %q holds %q", l, secret)
					}
				}
			}
		})
	}
}
