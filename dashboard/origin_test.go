package dashboard

import (
	"net/http/httptest"
	"testing"
)

// TestSameOriginHost: a change from the no-auth operator counts as the
// dashboard's own only at a host that names this machine, even with an
// Origin and Sec-Fetch-Site that match (DNS rebinding); with auth the
// Host is not the credential.
func TestSameOriginHost(t *testing.T) {
	cases := []struct {
		name, host string
		local      bool
		want       bool
	}{
		{"loopback IP", "127.0.0.1:8080", true, true},
		{"localhost", "localhost:8080", true, true},
		{"IPv6 loopback", "[::1]:8080", true, true},
		{"endpoint host", "rpc.example.test:8080", true, true},
		{"rebound name", "evil.example:8080", true, false},
		{"empty host", "", true, false},
		{"a zoned IPv6 that is not loopback", "[fe80::1%25lo]:8080", true, false},
		{"authenticated at a public name", "dash.example.com", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/dashboard/api/projects", nil)
			r.Host = c.host
			r.Header.Set("Origin", "http://"+c.host)
			r.Header.Set("Sec-Fetch-Site", "same-origin")
			if got := sameOrigin(r, c.local, "rpc.example.test"); got != c.want {
				t.Fatalf("sameOrigin at %q (local %v) = %v, want %v", c.host, c.local, got, c.want)
			}
		})
	}
}
