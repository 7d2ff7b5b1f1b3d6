package app

import (
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// nodeBlock is an elara option with one chain and one node whose block
// holds body (the node line is line 3, the body starts on line 4).
func nodeBlock(url, body string) string {
	return "elara {\n chain a {\n  node " + url + " {\n" + body + "\n  }\n }\n}"
}

func TestNodeTransportCaddyfile(t *testing.T) {
	cases := []struct {
		name string
		url  string
		body string
		want *NodeConfig
	}{
		{"trust pool files", "wss://n", "   tls_trust_pool file /etc/ca.pem /etc/ca2.pem",
			&NodeConfig{TLS: &NodeTLS{CAFiles: []string{"/etc/ca.pem", "/etc/ca2.pem"}}}},
		{"trust pool repeated", "wss://n", "   tls_trust_pool file /a.pem\n   tls_trust_pool file /b.pem",
			&NodeConfig{TLS: &NodeTLS{CAFiles: []string{"/a.pem", "/b.pem"}}}},
		{"trust pool pem placeholder", "https://n", "   tls_trust_pool pem {env.NODE_CA}",
			&NodeConfig{TLS: &NodeTLS{CAPEM: []string{"{env.NODE_CA}"}}}},
		{"trust pool pem heredoc", "wss://n", "   tls_trust_pool pem <<PEM\n   -----BEGIN CERTIFICATE-----\n   AAAA\n   -----END CERTIFICATE-----\n   PEM",
			&NodeConfig{TLS: &NodeTLS{CAPEM: []string{"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}}}},
		{"mutual TLS", "wss://n", "   tls_client_auth /c.pem /k.pem",
			&NodeConfig{TLS: &NodeTLS{ClientCertificateFile: "/c.pem", ClientCertificateKeyFile: "/k.pem"}}},
		{"server name and skip verify", "wss://10.0.0.1", "   tls_server_name node.internal\n   tls_insecure_skip_verify",
			&NodeConfig{TLS: &NodeTLS{ServerName: "node.internal", InsecureSkipVerify: true}}},
		{"every TLS option", "wss://n", "   tls_trust_pool file /ca.pem\n   tls_client_auth /c.pem /k.pem\n   tls_server_name n.example",
			&NodeConfig{TLS: &NodeTLS{CAFiles: []string{"/ca.pem"}, ClientCertificateFile: "/c.pem", ClientCertificateKeyFile: "/k.pem", ServerName: "n.example"}}},
		{"TLS options on a placeholder URL", "{env.NODE}", "   tls_server_name n",
			&NodeConfig{TLS: &NodeTLS{ServerName: "n"}}},
		{"upper-case scheme", "WSS://n", "   tls_server_name n",
			&NodeConfig{TLS: &NodeTLS{ServerName: "n"}}},
		{"headers", "ws://n", "   header X-Api-Key {env.KEY}\n   header Authorization \"Bearer abc\"\n   header X-Api-Key second",
			&NodeConfig{Headers: map[string][]string{"X-Api-Key": {"{env.KEY}", "second"}, "Authorization": {"Bearer abc"}}}},
		{"header and pool", "http://n", "   pool 2\n   header Host rpc.example",
			&NodeConfig{Pool: 2, Headers: map[string][]string{"Host": {"rpc.example"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a App
			if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(nodeBlock(tc.url, tc.body))); err != nil {
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			}
			tc.want.URL = tc.url
			want := map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{tc.want}}}
			if got, want := chainsJSON(t, a.Chains), chainsJSON(t, want); got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestNodeTransportCaddyfileErrors(t *testing.T) {
	const secret = "s3cr3t-api-key"
	cases := []struct {
		name     string
		url      string
		body     string
		line     int
		mentions string
	}{
		{"trust pool without source", "wss://n", "   tls_trust_pool", 4, "source"},
		{"trust pool without files", "wss://n", "   tls_trust_pool file", 4, "source"},
		{"trust pool unknown source", "wss://n", "   pool 1\n   tls_trust_pool inline AAAA", 5, "inline"},
		{"client auth without key", "wss://n", "   tls_client_auth /c.pem", 4, "key file"},
		{"client auth three args", "wss://n", "   tls_client_auth /c.pem /k.pem /x.pem", 4, "key file"},
		{"client auth twice", "wss://n", "   tls_client_auth /c.pem /k.pem\n   tls_client_auth /d.pem /l.pem", 5, "twice"},
		{"server name without arg", "wss://n", "   tls_server_name", 4, "one name"},
		{"server name two args", "wss://n", "   tls_server_name a b", 4, "one name"},
		{"skip verify with arg", "wss://n", "   tls_insecure_skip_verify yes", 4, "no argument"},
		{"TLS on ws://", "ws://n", "   tls_trust_pool file /ca.pem", 4, "wss://"},
		{"TLS on http://", "http://n", "   pool 2\n   tls_server_name n", 5, "https://"},
		{"header without value", "wss://n", "   header X-Api-Key", 4, "name and a value"},
		{"header with two values", "wss://n", "   header X-Api-Key " + secret + " more", 4, "name and a value"},
		{"header empty value", "wss://n", "   header X-Api-Key \"\"", 4, "empty"},
		{"header bad name", "wss://n", "   header X:Key " + secret, 4, "X:Key"},
		{"header name with space", "wss://n", "   header \"X Key\" " + secret, 4, "not a valid"},
		{"header the handshake sets", "wss://n", "   header Sec-WebSocket-Key " + secret, 4, "Sec-Websocket-Key"},
		{"header upgrade", "wss://n", "   header upgrade " + secret, 4, "Upgrade"},
		{"header content-type", "https://n", "   header Content-Type " + secret, 4, "Content-Type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a App
			err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(nodeBlock(tc.url, tc.body)))
			if err == nil {
				t.Fatalf("accepted, got %s", chainsJSON(t, a.Chains))
			}
			if want := "Testfile:" + strconv.Itoa(tc.line); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not give the line (%s)", err, want)
			}
			if !strings.Contains(err.Error(), tc.mentions) {
				t.Errorf("error %q does not mention %q", err, tc.mentions)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the header value", err)
			}
		})
	}
}
