package examples

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/elara-gateway/elara/internal/testgw"
)

// The production example is an HTTPS site for its domain: Caddy gets and
// renews the certificate itself (automatic HTTPS left on), and metrics are
// served on a private listener, not on the public site. It runs over TLS
// end to end in e2e (TestProductionExampleOverTLS).
func TestProductionExampleIsHTTPS(t *testing.T) {
	src, err := os.ReadFile("production.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := testgw.Adapt(string(src))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]json.RawMessage `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	var public, metrics bool
	for name, rawSrv := range cfg.Apps.HTTP.Servers {
		var srv struct {
			Listen    []string `json:"listen"`
			AutoHTTPS *struct {
				Disable bool `json:"disable"`
			} `json:"automatic_https"`
		}
		if err := json.Unmarshal(rawSrv, &srv); err != nil {
			t.Fatal(err)
		}
		if srv.AutoHTTPS != nil && srv.AutoHTTPS.Disable {
			t.Errorf("server %s turns automatic HTTPS off", name)
		}
		if strings.Contains(string(rawSrv), `"host":["rpc.example.com"]`) {
			public = true
			if !slices.Equal(srv.Listen, []string{":443"}) {
				t.Errorf("the public site listens on %v, want :443", srv.Listen)
			}
			if strings.Contains(string(rawSrv), `"handler":"metrics"`) {
				t.Error("the public site serves metrics")
			}
		}
		if strings.Contains(string(rawSrv), `"handler":"metrics"`) {
			metrics = true
			if !slices.Equal(srv.Listen, []string{"127.0.0.1:9180"}) {
				t.Errorf("metrics are served on %v, want 127.0.0.1:9180 only", srv.Listen)
			}
		}
	}
	if !public || !metrics {
		t.Errorf("public site for rpc.example.com: %v, metrics: %v\n%s", public, metrics, raw)
	}
}
