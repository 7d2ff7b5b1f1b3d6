// Package testgw runs the gateway inside the test process: a Caddyfile is
// adapted and loaded with caddy.Load, exactly as `caddy run` would, and
// stopped when the test ends. It also has small JSON-RPC clients.
package testgw

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	// The plugin and the standard modules, as in the built binary.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/elara-gateway/elara"
)

var setupOnce sync.Once

// Isolate keeps Caddy from writing under $HOME (autosave, storage, locks).
// Start, Load and Adapt call it; tests that use Caddy directly call it too.
func Isolate() { isolate() }

func isolate() {
	setupOnce.Do(func() {
		dir, err := os.MkdirTemp("", "elara-caddy-")
		if err != nil {
			panic(err)
		}
		_ = os.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
		_ = os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
		caddy.ConfigAutosavePath = filepath.Join(dir, "autosave.json")
	})
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Gateway is a running Caddy config.
type Gateway struct {
	Port int
}

// HTTP is the base http:// URL of the site.
func (g *Gateway) HTTP(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", g.Port, path) }

// WS is the base ws:// URL of the site.
func (g *Gateway) WS(path string) string { return fmt.Sprintf("ws://127.0.0.1:%d%s", g.Port, path) }

// Adapt turns a Caddyfile into Caddy's JSON config.
func Adapt(caddyfile string) ([]byte, error) {
	isolate()
	adapter := caddyconfig.GetAdapter("caddyfile")
	cfg, warnings, err := adapter.Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		if !strings.Contains(w.Message, "formatted") {
			return nil, fmt.Errorf("caddyfile warning: %s", w.String())
		}
	}
	return cfg, nil
}

// Start loads a site on a free port. site is the body of the site block;
// global is the body of the `elara` global option. The config is stopped
// when the test ends.
func Start(t testing.TB, global, site string) *Gateway {
	t.Helper()
	g := &Gateway{Port: FreePort(t)}
	Load(t, g.Caddyfile(global, site))
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Logf("stopping caddy: %v", err)
		}
	})
	return g
}

// Caddyfile renders a full Caddyfile for this gateway's port.
func (g *Gateway) Caddyfile(global, site string) string {
	return fmt.Sprintf(`{
	admin off
	default_bind 127.0.0.1
	auto_https off
	skip_install_trust
	persist_config off
	log {
		level {$ELARA_TEST_LOG:ERROR}
	}
	elara {
%s
	}
}
http://127.0.0.1:%d {
%s
}
`, global, g.Port, site)
}

// Load adapts and loads a Caddyfile, replacing the running config (a
// reload, when one is running).
func Load(t testing.TB, caddyfile string) {
	t.Helper()
	isolate()
	cfg, err := Adapt(caddyfile)
	if err != nil {
		t.Fatalf("adapting Caddyfile: %v\n%s", err, caddyfile)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading config: %v\n%s", err, caddyfile)
	}
	awaitListeners(t, cfg)
}

// awaitListeners waits until every HTTP server of cfg answers a request:
// right after a reload Caddy may still be handing its sockets from the old
// servers to the new ones, and a client dialling then is reset.
func awaitListeners(t testing.TB, cfg []byte) {
	t.Helper()
	var c struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string `json:"listen"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatalf("reading the config's listeners: %v", err)
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, srv := range c.Apps.HTTP.Servers {
		for _, l := range srv.Listen {
			addr, err := caddy.ParseNetworkAddress(l)
			if err != nil || addr.IsUnixNetwork() || addr.StartPort != addr.EndPort {
				continue
			}
			host := addr.Host
			if host == "" {
				host = "127.0.0.1"
			}
			url := "http://" + net.JoinHostPort(host, strconv.FormatUint(uint64(addr.StartPort), 10)) + "/"
			deadline := time.Now().Add(5 * time.Second)
			for {
				resp, err := client.Get(url)
				if err == nil {
					resp.Body.Close()
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the reloaded server at %s never answered: %v", url, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}
