package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tlsGateway is the built binary running caddyfile_examples/production.Caddyfile
// on loopback: the site is https://localhost:PORT with a certificate of
// Caddy's local CA instead of a public one.
type tlsGateway struct {
	*gateway
	httpsPort, metricsPort int
	// rootCert is Caddy's local CA, the only thing clients are told to trust.
	rootCert string
	client   *http.Client
}

func (g *tlsGateway) httpsURL(path string) string {
	return fmt.Sprintf("https://localhost:%d%s", g.httpsPort, path)
}

func (g *tlsGateway) wssURL(path string) string {
	return fmt.Sprintf("wss://localhost:%d%s", g.httpsPort, path)
}

// productionOnLoopback is the production example with what a test machine
// needs in its global options: loopback only, certificates from Caddy's
// local CA (as `tls internal` would), nothing installed in the system's
// trust store, and the redirect server on a free port instead of 80.
func productionOnLoopback(t *testing.T, httpPort int) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, "caddyfile_examples", "production.Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	head, rest, ok := strings.Cut(string(src), "\n{\n")
	if !ok {
		t.Fatal("production.Caddyfile has no global options block")
	}
	return head + "\n{\n" + fmt.Sprintf("\tdefault_bind 127.0.0.1\n\tskip_install_trust\n\tlocal_certs\n\thttp_port %d\n", httpPort) + rest
}

func startTLSGateway(t *testing.T, n *chopsticks, operatorHash string) *tlsGateway {
	t.Helper()
	bin := gatewayBinary(t)
	dir := t.TempDir()
	g := &tlsGateway{gateway: &gateway{adminPort: freePort(t), httpPort: freePort(t), done: make(chan struct{})},
		httpsPort: freePort(t), metricsPort: freePort(t)}
	cfgPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(productionOnLoopback(t, g.httpPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	g.logPath = filepath.Join(dir, "caddy.log")
	logf, err := os.Create(g.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	g.cmd = exec.Command(bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	g.cmd.Dir = dir
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	g.cmd.Env = append(os.Environ(),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"ELARA_DOMAIN=https://localhost:"+strconv.Itoa(g.httpsPort),
		"ELARA_ADMIN=127.0.0.1:"+strconv.Itoa(g.adminPort),
		"ELARA_METRICS_PORT="+strconv.Itoa(g.metricsPort),
		"ELARA_CHAIN="+chainPath,
		"ELARA_UPSTREAM="+n.wsURL(),
		"ELARA_OPERATOR_HASH="+operatorHash)
	g.cmd.SysProcAttr = childProcAttr()
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() { _ = g.cmd.Wait(); close(g.done) }()
	t.Cleanup(func() {
		g.stop()
		if t.Failed() {
			t.Logf("gateway log tail (%s):\n%s", g.logPath, logTail(g.logPath, 60))
		}
	})
	g.rootCert = filepath.Join(dir, "data", "caddy", "pki", "authorities", "local", "root.crt")

	deadline := time.Now().Add(gatewayStartTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-g.done:
			t.Fatalf("caddy exited during start-up (%v); log tail:\n%s", g.cmd.ProcessState, logTail(g.logPath, 60))
		default:
		}
		if g.client == nil {
			g.client, last = trustingClient(g.rootCert)
		}
		if g.client != nil {
			var chain string
			if last = g.rpc(g.httpsURL(chainURLPath), "system_chain", &chain); last == nil {
				t.Logf("gateway pid %d on %s (admin %d), node %s", g.cmd.Process.Pid, g.httpsURL(""), g.adminPort, n.wsURL())
				return g
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("gateway did not serve %s within %v: %v", g.httpsURL(chainURLPath), gatewayStartTimeout, last)
	return nil
}

// trustingClient is an HTTP/2-capable client that trusts the CA in
// rootFile and nothing else.
func trustingClient(rootFile string) (*http.Client, error) {
	pem, err := os.ReadFile(rootFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", rootFile)
	}
	return &http.Client{Timeout: callTimeout, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
	}}, nil
}

// post sends one JSON-RPC body and returns the response with its body read.
func (g *tlsGateway) post(client *http.Client, url, body string, hdr http.Header) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func (g *tlsGateway) rpc(url, method string, out any) error {
	_, body, err := g.post(g.client, url, string(request(1, method, nil)), nil)
	if err != nil {
		return err
	}
	var r rpcResponse
	if err := json.Unmarshal(body, &r); err != nil || r.Error != nil || r.Result == nil {
		return fmt.Errorf("%s: %s (%v)", method, truncate(string(body), 300), err)
	}
	return json.Unmarshal(r.Result, out)
}

type tlsClientsResult struct {
	OK    bool     `json:"ok"`
	Error string   `json:"error"`
	Steps []string `json:"steps"`
	PJS   struct {
		Chain       string `json:"chain"`
		GenesisHash string `json:"genesisHash"`
		AliceFree   string `json:"aliceFree"`
	} `json:"pjs"`
	Direct struct {
		Chain       string `json:"chain"`
		GenesisHash string `json:"genesisHash"`
		AliceFree   string `json:"aliceFree"`
	} `json:"direct"`
	PJSHTTPChain string `json:"pjsHttpChain"`
	PAPI         struct {
		Chain       string `json:"chain"`
		GenesisHash string `json:"genesisHash"`
		AliceFree   string `json:"aliceFree"`
	} `json:"papi"`
}

// TestProductionExampleOverTLS runs the production example with a
// certificate of Caddy's local CA and reaches it as users do: polkadot.js
// and polkadot-api over wss://, polkadot.js and Go's HTTP/2 client over
// https://, trusting that CA and nothing insecure.
func TestProductionExampleOverTLS(t *testing.T) {
	n := realNode(t)
	g := startTLSGateway(t, n, hashPassword(t, operatorPassword))
	var directChain string
	if err := rpcResult(n.httpURL(), "system_chain", nil, &directChain); err != nil {
		t.Fatal(err)
	}

	t.Run("HTTP/2 over https", func(t *testing.T) {
		resp, body, err := g.post(g.client, g.httpsURL(chainURLPath), string(request(1, "system_chain", nil)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Proto != "HTTP/2.0" || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" {
			t.Errorf("protocol %s (ALPN %q), want HTTP/2.0 negotiated as h2", resp.Proto, resp.TLS.NegotiatedProtocol)
		}
		if want := `{"jsonrpc":"2.0","id":1,"result":` + strconv.Quote(directChain) + `}`; string(body) != want {
			t.Errorf("body %s, want %s", body, want)
		}
	})

	t.Run("the certificate is the local CA's", func(t *testing.T) {
		// Without the CA the same request is refused: trust comes from
		// the CA, not from a check turned off.
		_, _, err := g.post(&http.Client{Timeout: callTimeout}, g.httpsURL(chainURLPath), string(request(1, "system_chain", nil)), nil)
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("a client trusting only the system's roots got %v, want an unknown authority", err)
		}
	})

	t.Run("plain HTTP redirects to https", func(t *testing.T) {
		noFollow := &http.Client{Timeout: callTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Get(fmt.Sprintf("http://localhost:%d%s", g.httpPort, chainURLPath))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusPermanentRedirect || loc != g.httpsURL(chainURLPath) {
			t.Errorf("HTTP %d to %q, want 308 to %s", resp.StatusCode, loc, g.httpsURL(chainURLPath))
		}
	})

	t.Run("operator route over https", func(t *testing.T) {
		cases := []struct {
			name, path string
			auth       http.Header
			method     string
			status     int
			reply      string // part of the body
		}{
			{"public route refuses rotateKeys", chainURLPath, nil, "author_rotateKeys", 200, `"code":-32601`},
			{"operator route needs credentials", "/operator" + chainURLPath, nil, "system_chain", 401, ""},
			{"operator route with credentials", "/operator" + chainURLPath, basicAuth(operatorUser, operatorPassword), "system_chain", 200, strconv.Quote(directChain)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp, body, err := g.post(g.client, g.httpsURL(tc.path), string(request(1, tc.method, nil)), tc.auth)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != tc.status || !bytes.Contains(body, []byte(tc.reply)) {
					t.Errorf("HTTP %d %s, want %d with %s", resp.StatusCode, truncate(string(body), 300), tc.status, tc.reply)
				}
			})
		}
	})

	t.Run("metrics on the private port", func(t *testing.T) {
		resp, err := httpClient.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", g.metricsPort))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("# TYPE ")) {
			t.Errorf("HTTP %d %s", resp.StatusCode, truncate(string(body), 300))
		}
		resp, body, err = g.post(g.client, g.httpsURL("/metrics"), "", nil)
		if err == nil && bytes.Contains(body, []byte("# TYPE ")) {
			t.Errorf("the public site serves metrics (HTTP %d)", resp.StatusCode)
		}
	})

	t.Run("polkadot.js and polkadot-api over wss", func(t *testing.T) {
		var r tlsClientsResult
		// Node.js trusts its own roots plus this file: Caddy's local CA.
		run := runScript(t, 150*time.Second, []string{"NODE_EXTRA_CA_CERTS=" + g.rootCert}, &r,
			"tls_clients.mjs", g.wssURL(chainURLPath), g.httpsURL(chainURLPath), n.wsURL())
		if !r.OK || run.err != nil {
			t.Fatalf("tls_clients.mjs failed (exit: %v) after steps %v: %s\nstderr tail:\n%s", run.err, r.Steps, r.Error, run.stderr)
		}
		if r.Direct.Chain != directChain || r.Direct.AliceFree == "" || r.Direct.AliceFree == "0" {
			t.Fatalf("direct answers look wrong: %+v", r.Direct)
		}
		if r.PJS != r.Direct {
			t.Errorf("polkadot.js over wss: %+v, directly: %+v", r.PJS, r.Direct)
		}
		if r.PJSHTTPChain != directChain {
			t.Errorf("polkadot.js over https: chain %q, want %q", r.PJSHTTPChain, directChain)
		}
		if r.PAPI.AliceFree != r.Direct.AliceFree || r.PAPI.GenesisHash != r.Direct.GenesisHash || r.PAPI.Chain == "" {
			t.Errorf("polkadot-api over wss: %+v, directly: %+v", r.PAPI, r.Direct)
		}
		t.Logf("over TLS: polkadot.js %+v, polkadot-api %+v", r.PJS, r.PAPI)
	})
}
