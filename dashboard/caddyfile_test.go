package dashboard

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	cases := []struct {
		name, input, endpoint, err string
	}{
		{"defaults", `elara_dashboard`, "", ""},
		{"endpoint", "elara_dashboard {\n endpoint https://rpc.example.com\n}", "https://rpc.example.com", ""},
		{"endpoint not http", "elara_dashboard {\n endpoint ftp://x\n}", "", "want an http:// or https:// URL"},
		{"endpoint without a host", "elara_dashboard {\n endpoint https://\n}", "", "want an http:// or https:// URL with a host"},
		{"endpoint missing", "elara_dashboard {\n endpoint\n}", "", "wrong argument count"},
		{"endpoint twice on a line", "elara_dashboard {\n endpoint https://a https://b\n}", "", "wrong argument count"},
		{"argument", `elara_dashboard /x`, "", "wrong argument count"},
		{"user", "elara_dashboard {\n user {http.request.header.Remote-User}\n}", "", ""},
		{"user not a placeholder", "elara_dashboard {\n user alice\n}", "", "want a placeholder"},
		{"unknown option", "elara_dashboard {\n theme dark\n}", "", "unrecognized elara_dashboard option 'theme'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var d Dashboard
			err := d.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || d.Endpoint != c.endpoint {
				t.Fatalf("endpoint %q, err %v; want %q", d.Endpoint, err, c.endpoint)
			}
		})
	}
}
