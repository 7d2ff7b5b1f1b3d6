package examples

import (
	"slices"
	"strings"
	"testing"
)

// The production example is an HTTPS site for its domain: Caddy gets and
// renews the certificate itself (automatic HTTPS left on), and metrics are
// served on a private listener, not on the public site. It runs over TLS
// end to end in e2e (TestProductionExampleOverTLS).
func TestProductionExampleIsHTTPS(t *testing.T) {
	var public, metrics bool
	for name, srv := range adaptServers(t, "production.Caddyfile") {
		if srv.AutoHTTPS != nil && srv.AutoHTTPS.Disable {
			t.Errorf("server %s turns automatic HTTPS off", name)
		}
		if strings.Contains(srv.raw, `"host":["rpc.example.com"]`) {
			public = true
			if !slices.Equal(srv.Listen, []string{":443"}) {
				t.Errorf("the public site listens on %v, want :443", srv.Listen)
			}
			if strings.Contains(srv.raw, `"handler":"metrics"`) {
				t.Error("the public site serves metrics")
			}
		}
		if strings.Contains(srv.raw, `"handler":"metrics"`) {
			metrics = true
			if !slices.Equal(srv.Listen, []string{"127.0.0.1:9180"}) {
				t.Errorf("metrics are served on %v, want 127.0.0.1:9180 only", srv.Listen)
			}
		}
	}
	if !public || !metrics {
		t.Errorf("public site for rpc.example.com: %v, metrics: %v", public, metrics)
	}
}
