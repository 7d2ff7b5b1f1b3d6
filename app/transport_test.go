package app

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// JSON configs get the checks the Caddyfile adapter makes, naming the
// chain and node, never a header value.
func TestNodeTransportValidate(t *testing.T) {
	const secret = "s3cr3t"
	cases := []struct {
		name     string
		node     *NodeConfig
		mentions string // "" = valid
	}{
		{"headers and TLS", &NodeConfig{URL: "wss://n", Headers: http.Header{"X-Api-Key": {secret}}, TLS: &NodeTLS{ServerName: "n"}}, ""},
		{"bad header name", &NodeConfig{URL: "wss://n", Headers: http.Header{"X Key": {secret}}}, "chain a node 0: header name"},
		{"reserved header", &NodeConfig{URL: "wss://n", Headers: http.Header{"Upgrade": {secret}}}, "Upgrade"},
		{"header without value", &NodeConfig{URL: "wss://n", Headers: http.Header{"X-Api-Key": {}}}, "no value"},
		{"certificate without key", &NodeConfig{URL: "wss://n", TLS: &NodeTLS{ClientCertificateFile: "/c.pem"}}, "key file"},
		{"key without certificate", &NodeConfig{URL: "wss://n", TLS: &NodeTLS{ClientCertificateKeyFile: "/k.pem"}}, "key file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &App{Chains: map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{tc.node}}}}
			err := a.Validate()
			if tc.mentions == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.mentions) {
				t.Fatalf("error %v does not mention %q", err, tc.mentions)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the header value", err)
			}
		})
	}
}

// What is known once placeholders are replaced and files read.
func TestNodeTransportProvisionErrors(t *testing.T) {
	const secret = "s3cr3t"
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ELARA_TEST_MULTILINE", secret+"\r\nX-Injected: 1")
	cases := []struct {
		name     string
		scheme   string
		node     *NodeConfig
		mentions string
	}{
		{"unset variable", "wss", &NodeConfig{Headers: http.Header{"X-Api-Key": {"{env.ELARA_TEST_UNSET_VARIABLE}"}}}, "header X-Api-Key: empty value (unset environment variable?)"},
		{"line break in a value", "wss", &NodeConfig{Headers: http.Header{"X-Api-Key": {"{env.ELARA_TEST_MULTILINE}"}}}, "line break"},
		{"TLS on a ws URL from a placeholder", "ws", &NodeConfig{TLS: &NodeTLS{ServerName: "n"}}, "not ws://"},
		{"missing CA file", "wss", &NodeConfig{TLS: &NodeTLS{CAFiles: []string{filepath.Join(dir, "none.pem")}}}, "none.pem"},
		{"CA file without a certificate", "wss", &NodeConfig{TLS: &NodeTLS{CAFiles: []string{notPEM}}}, "holds no PEM certificate"},
		{"CA PEM without a certificate", "https", &NodeConfig{TLS: &NodeTLS{CAPEM: []string{"nothing"}}}, "PEM 0 holds no certificate"},
		{"missing client certificate", "wss", &NodeConfig{TLS: &NodeTLS{ClientCertificateFile: filepath.Join(dir, "c.pem"), ClientCertificateKeyFile: notPEM}}, "client certificate"},
		{"client certificate not PEM", "wss", &NodeConfig{TLS: &NodeTLS{ClientCertificateFile: notPEM, ClientCertificateKeyFile: notPEM}}, "client certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.node.provisionTransport(tc.scheme, caddy.NewReplacer())
			if err == nil || !strings.Contains(err.Error(), tc.mentions) {
				t.Fatalf("error %v does not mention %q", err, tc.mentions)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the header value", err)
			}
		})
	}
}
