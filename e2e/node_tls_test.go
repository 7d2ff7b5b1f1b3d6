package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/testpki"
)

// runCaddy starts the built binary on a Caddyfile and waits for its admin
// endpoint only: whether it serves is for the test to find out. The
// process is stopped at cleanup.
func runCaddy(t *testing.T, name, caddyfile string, adminPort int, env ...string) *gateway {
	t.Helper()
	dir := t.TempDir()
	g := &gateway{adminPort: adminPort, done: make(chan struct{})}
	cfgPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	g.logPath = filepath.Join(dir, name+".log")
	logf, err := os.Create(g.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	g.cmd = exec.Command(gatewayBinary(t), "run", "--config", cfgPath, "--adapter", "caddyfile")
	g.cmd.Dir = dir
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	g.cmd.Env = append(append(os.Environ(),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config")), env...)
	g.cmd.SysProcAttr = childProcAttr()
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.cmd.Wait(); close(g.done) }()
	t.Cleanup(func() {
		g.stop()
		if t.Failed() {
			t.Logf("%s log tail (%s):\n%s", name, g.logPath, logTail(g.logPath, 40))
		}
	})
	deadline := time.Now().Add(gatewayStartTimeout)
	for {
		select {
		case <-g.done:
			t.Fatalf("%s exited during start-up (%v); log tail:\n%s", name, g.cmd.ProcessState, logTail(g.logPath, 40))
		default:
		}
		resp, err := httpClient.Get(fmt.Sprintf("http://127.0.0.1:%d/config/", adminPort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: admin endpoint not up within %v: %v", name, gatewayStartTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// upstreamReport is the admin API's view of the gateway's only node.
func upstreamReport(g *gateway) (connected bool, lastError string, err error) {
	resp, err := httpClient.Get(fmt.Sprintf("http://127.0.0.1:%d/elara/upstreams", g.adminPort))
	if err != nil {
		return false, "", err
	}
	defer resp.Body.Close()
	var reports []struct {
		Nodes []struct {
			Connected bool   `json:"connected"`
			LastError string `json:"last_error"`
		} `json:"nodes"`
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &reports); err != nil || len(reports) != 1 || len(reports[0].Nodes) != 1 {
		return false, "", fmt.Errorf("GET /elara/upstreams: %v: %s", err, body)
	}
	return reports[0].Nodes[0].Connected, reports[0].Nodes[0].LastError, nil
}

// TestNodeBehindCaddyTLS puts Chopsticks behind a second Caddy that
// terminates TLS with its own local CA (`tls internal`), once plainly and
// once requiring a client certificate and an API key, and points the
// gateway (the built binary) at it over wss:// and https://.
func TestNodeBehindCaddyTLS(t *testing.T) {
	n := realNode(t)
	var directChain string
	if err := rpcResult(n.httpURL(), "system_chain", nil, &directChain); err != nil {
		t.Fatal(err)
	}
	const apiKey = "e2e-pr0vider-k3y"
	clientCA := testpki.NewCA(t, "gateway-clients")
	client := clientCA.Client(t, "elara")

	// The terminator: https://localhost:P1 for anyone, https://localhost:P2
	// for holders of a client certificate of clientCA sending the API key.
	termAdmin, p1, p2 := freePort(t), freePort(t), freePort(t)
	term := runCaddy(t, "terminator", fmt.Sprintf(`{
	admin 127.0.0.1:%d
	default_bind 127.0.0.1
	skip_install_trust
	http_port %d
}
https://localhost:%d {
	tls internal
	reverse_proxy %s
}
https://localhost:%d {
	tls internal {
		client_auth {
			mode require_and_verify
			trust_pool file %s
		}
	}
	@nokey not header X-Api-Key {env.E2E_NODE_KEY}
	respond @nokey 401
	reverse_proxy %s
}
`, termAdmin, freePort(t), p1, n.addr(), p2, clientCA.File, n.addr()), termAdmin, "E2E_NODE_KEY="+apiKey)
	root := filepath.Join(filepath.Dir(term.logPath), "data", "caddy", "pki", "authorities", "local", "root.crt")
	// Ready once its certificate for localhost is issued: a client that
	// trusts the root gets the node's answer through it.
	deadline := time.Now().Add(gatewayStartTimeout)
	for {
		c, err := trustingClient(root)
		if err == nil {
			var resp *http.Response
			if resp, err = c.Post(fmt.Sprintf("https://localhost:%d", p1), "application/json", strings.NewReader(string(request(1, "system_chain", nil)))); err == nil {
				resp.Body.Close()
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminator does not serve with a certificate of its local CA: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	withCA := "tls_trust_pool file " + root
	withClient := withCA + "\ntls_client_auth " + client.CertFile + " " + client.KeyFile
	cases := []struct {
		name, url, block string
		// reason is "" when the node serves, else what the node's last
		// error (admin API) and the gateway's log say.
		reason string
	}{
		{"tls internal, system roots only", fmt.Sprintf("wss://localhost:%d", p1), "", "certificate signed by unknown authority (trust the node's CA with the node's tls_trust_pool)"},
		{"tls internal, trust pool", fmt.Sprintf("wss://localhost:%d", p1), withCA, ""},
		{"tls internal, trust pool, https node", fmt.Sprintf("https://localhost:%d", p1), withCA, ""},
		{"mutual TLS without a client certificate", fmt.Sprintf("wss://localhost:%d", p2), withCA + "\nheader X-Api-Key {env.E2E_NODE_KEY}", "certificate required"},
		{"mutual TLS without the API key", fmt.Sprintf("wss://localhost:%d", p2), withClient, "HTTP status 401"},
		{"mutual TLS with the API key", fmt.Sprintf("wss://localhost:%d", p2), withClient + "\nheader X-Api-Key {env.E2E_NODE_KEY}", ""},
		{"mutual TLS with the API key, https node", fmt.Sprintf("https://localhost:%d", p2), withClient + "\nheader X-Api-Key {env.E2E_NODE_KEY}", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			admin, port := freePort(t), freePort(t)
			g := runCaddy(t, "gateway", fmt.Sprintf(`{
	admin 127.0.0.1:%d
	default_bind 127.0.0.1
	auto_https off
	skip_install_trust
	elara {
		chain %s {
			node %s {
				pool 1
%s
			}
			head_timeout 0s
		}
	}
}
http://127.0.0.1:%d {
	elara_rpc
}
`, admin, chainPath, tc.url, tc.block, port), admin, "E2E_NODE_KEY="+apiKey)
			g.httpPort = port
			deadline := time.Now().Add(20 * time.Second)
			var chain, lastErr string
			var callErr error
			for time.Now().Before(deadline) {
				if callErr = rpcResult(g.httpURL(chainURLPath), "system_chain", nil, &chain); callErr == nil {
					break
				}
				if _, lastErr, _ = upstreamReport(g); lastErr != "" && tc.reason != "" {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if tc.reason == "" {
				if callErr != nil || chain != directChain {
					t.Fatalf("not served: %v (node's last error %q)", callErr, lastErr)
				}
				return
			}
			if callErr == nil {
				t.Fatalf("served %q, want refused for %q", chain, tc.reason)
			}
			if !strings.Contains(callErr.Error(), "-32000") {
				t.Errorf("a client got %v, want a -32000 error", callErr)
			}
			if !strings.Contains(lastErr, tc.reason) {
				t.Errorf("node's last error %q does not say %q", lastErr, tc.reason)
			}
			logs, _ := os.ReadFile(g.logPath)
			if !strings.Contains(string(logs), tc.reason) {
				t.Errorf("the gateway's log does not say %q:\n%s", tc.reason, logTail(g.logPath, 20))
			}
			if strings.Contains(string(logs), apiKey) {
				t.Errorf("the gateway's log shows the API key")
			}
		})
	}
}
