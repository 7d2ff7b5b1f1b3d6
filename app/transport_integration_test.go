package app_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
	"github.com/elara-gateway/elara/internal/testpki"
)

// seen is one request a TLS terminator received.
type seen struct {
	upgrade bool
	header  http.Header
}

// terminator is a TLS-terminating reverse proxy in front of a fake node,
// as a node behind nginx or Caddy is: it serves wss:// and https:// with a
// certificate of the test's CA and records the requests it forwards.
type terminator struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []seen
	// apiKey, when set, is the X-Api-Key every request must carry; others
	// get 401, as providers answer.
	apiKey string
}

func startTerminator(t *testing.T, node *fakenode.Node, cert tls.Certificate, clientCAs *x509.CertPool) *terminator {
	t.Helper()
	target, err := url.Parse(node.HTTPURL())
	if err != nil {
		t.Fatal(err)
	}
	tm := &terminator{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	tm.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tm.mu.Lock()
		tm.seen = append(tm.seen, seen{upgrade: strings.EqualFold(r.Header.Get("Upgrade"), "websocket"), header: r.Header.Clone()})
		key := tm.apiKey
		tm.mu.Unlock()
		if key != "" && r.Header.Get("X-Api-Key") != key {
			http.Error(w, "invalid API key", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	tm.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCAs != nil {
		tm.srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		tm.srv.TLS.ClientCAs = clientCAs
	}
	// Handshake failures are what some cases are about; keep them quiet.
	tm.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	tm.srv.StartTLS()
	t.Cleanup(tm.srv.Close)
	return tm
}

func (tm *terminator) wss() string   { return "wss://" + tm.srv.Listener.Addr().String() }
func (tm *terminator) https() string { return "https://" + tm.srv.Listener.Addr().String() }

// requests returns what the terminator forwarded since mark.
func (tm *terminator) requests(mark int) []seen {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return append([]seen(nil), tm.seen[mark:]...)
}

func (tm *terminator) mark() int {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return len(tm.seen)
}

// loadTransportGateway loads a gateway whose chain dev has one node with
// the given block, logging at debug level to logFile.
func loadTransportGateway(t *testing.T, port int, logFile, nodeURL, nodeBlock string) {
	t.Helper()
	testgw.Load(t, fmt.Sprintf(`{
	admin off
	default_bind 127.0.0.1
	auto_https off
	skip_install_trust
	persist_config off
	log {
		output file %s
		level DEBUG
	}
	elara {
		chain dev {
			node %s {
				pool 1
				dial_timeout 2s
%s
			}
			request_timeout 2s
			health_interval 1h
		}
	}
}
http://127.0.0.1:%d {
	elara_rpc
}
`, logFile, nodeURL, nodeBlock, port))
}

// nodeReport is the admin API's view of the chain's only node.
func nodeReport(t *testing.T) (connected bool, lastError string) {
	t.Helper()
	for _, r := range app.Reports() {
		if r.Chain == "dev" && len(r.Nodes) == 1 {
			return r.Nodes[0].Connected, r.Nodes[0].LastError
		}
	}
	t.Fatalf("no report for chain dev: %+v", app.Reports())
	return false, ""
}

// served asks the gateway for system_chain and tells whether the node
// answered; when it did not, it waits for the node's report to name why.
func served(t *testing.T, port int) (bool, string) {
	t.Helper()
	status, body := testgw.Post(t, fmt.Sprintf("http://127.0.0.1:%d/dev", port), []byte(`{"jsonrpc":"2.0","id":7,"method":"system_chain","params":[]}`))
	if status != http.StatusOK {
		t.Fatalf("HTTP %d: %s", status, body)
	}
	if strings.Contains(string(body), `"result":"Fake Dev"`) {
		return true, ""
	}
	if !strings.Contains(string(body), `"id":7,"error":{"code":-32000`) {
		t.Fatalf("neither the node's answer nor a -32000 error: %s", body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, lastErr := nodeReport(t)
		if lastErr != "" || time.Now().After(deadline) {
			return false, lastErr
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readLog returns the log file once it holds want (or after a few seconds:
// the node's report may be read before the log line is written).
func readLog(t *testing.T, file, want string) []byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		logs, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(logs), want) || time.Now().After(deadline) {
			return logs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNodeTLS(t *testing.T) {
	node := fakenode.Start(t)
	ca := testpki.NewCA(t, "node-ca")
	other := testpki.NewCA(t, "other-ca")
	serverCert := ca.Server(t, "node", "node.test").TLS
	plain := startTerminator(t, node, serverCert, nil)
	mutual := startTerminator(t, node, serverCert, ca.Pool())
	client := ca.Client(t, "gateway")
	clientCert, clientKey := client.CertFile, client.KeyFile
	stranger := other.Client(t, "stranger")
	strangerCert, strangerKey := stranger.CertFile, stranger.KeyFile
	caPEM, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ELARA_TEST_NODE_CA", string(caPEM))
	t.Setenv("ELARA_TEST_CA_FILE", ca.File)

	cases := []struct {
		name   string
		url    string
		block  string
		served bool
		// reason is in the node's last error (admin API) and in the log
		// when the node is refused.
		reason string
	}{
		{"system roots do not know the CA", plain.wss(), "", false, "certificate signed by unknown authority (trust the node's CA with the node's tls_trust_pool)"},
		{"system roots, https node", plain.https(), "", false, "certificate signed by unknown authority (trust the node's CA with the node's tls_trust_pool)"},
		{"trust pool file", plain.wss(), "tls_trust_pool file " + ca.File, true, ""},
		{"trust pool file from a placeholder", plain.wss(), "tls_trust_pool file {env.ELARA_TEST_CA_FILE}", true, ""},
		{"trust pool file, https node", plain.https(), "tls_trust_pool file " + ca.File, true, ""},
		{"trust pool PEM from the environment", plain.wss(), "tls_trust_pool pem {env.ELARA_TEST_NODE_CA}", true, ""},
		{"another CA only", plain.wss(), "tls_trust_pool file " + other.File, false, "certificate signed by unknown authority"},
		{"server name the certificate has", plain.wss(), "tls_trust_pool file " + ca.File + "\ntls_server_name node.test", true, ""},
		{"server name the certificate lacks", plain.wss(), "tls_trust_pool file " + ca.File + "\ntls_server_name elsewhere.test", false, "(name the certificate's host with the node's tls_server_name)"},
		{"insecure skip verify", plain.wss(), "tls_insecure_skip_verify", true, ""},
		{"mutual TLS without a client certificate", mutual.wss(), "tls_trust_pool file " + ca.File, false, "certificate required"},
		{"mutual TLS with a client certificate", mutual.wss(), "tls_trust_pool file " + ca.File + "\ntls_client_auth " + clientCert + " " + clientKey, true, ""},
		{"mutual TLS with a client certificate, https node", mutual.https(), "tls_trust_pool file " + ca.File + "\ntls_client_auth " + clientCert + " " + clientKey, true, ""},
		{"mutual TLS with a certificate of another CA", mutual.wss(), "tls_trust_pool file " + ca.File + "\ntls_client_auth " + strangerCert + " " + strangerKey, false, "tls: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port := testgw.FreePort(t)
			logFile := filepath.Join(t.TempDir(), "caddy.log")
			loadTransportGateway(t, port, logFile, tc.url, tc.block)
			t.Cleanup(func() { _ = caddy.Stop() })
			ok, lastErr := served(t, port)
			if ok != tc.served {
				t.Fatalf("served=%v, want %v (node's last error: %q)", ok, tc.served, lastErr)
			}
			logs := readLog(t, logFile, tc.reason)
			if !tc.served {
				if !strings.Contains(lastErr, tc.reason) {
					t.Errorf("node's last error %q does not say %q", lastErr, tc.reason)
				}
				if !strings.Contains(string(logs), "upstream connection failed") || !strings.Contains(string(logs), tc.reason) {
					t.Errorf("the log does not say why the node was refused (%q):\n%s", tc.reason, logs)
				}
			}
			warned := strings.Contains(string(logs), "tls_insecure_skip_verify")
			if want := strings.Contains(tc.block, "tls_insecure_skip_verify"); warned != want {
				t.Errorf("insecure warning logged=%v, want %v:\n%s", warned, want, logs)
			}
		})
	}
}

// secrets that must never be logged, nor shown by the admin API.
const (
	apiKey      = "k3y-0f-the-pr0vider"
	bearerToken = "t0ken-in-the-config-itself"
)

func TestNodeHeaders(t *testing.T) {
	node := fakenode.Start(t)
	ca := testpki.NewCA(t, "node-ca")
	tm := startTerminator(t, node, ca.Server(t, "node").TLS, nil)
	tm.apiKey = apiKey
	t.Setenv("ELARA_TEST_API_KEY", apiKey)
	t.Setenv("ELARA_TEST_WRONG_KEY", "wr0ng-k3y")
	block := func(key string) string {
		return "tls_trust_pool file " + ca.File + "\nheader X-Api-Key " + key + "\nheader Authorization \"Bearer " + bearerToken + "\""
	}
	cases := []struct {
		name   string
		url    string
		block  string
		served bool
		reason string
	}{
		{"WebSocket handshake", tm.wss(), block("{env.ELARA_TEST_API_KEY}"), true, ""},
		{"HTTP calls", tm.https(), block("{env.ELARA_TEST_API_KEY}"), true, ""},
		{"WebSocket node refuses the key", tm.wss(), block("{env.ELARA_TEST_WRONG_KEY}"), false, "bad handshake (HTTP status 401)"},
		{"HTTP node refuses the key", tm.https(), block("{env.ELARA_TEST_WRONG_KEY}"), false, "status 401"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mark := tm.mark()
			port := testgw.FreePort(t)
			logFile := filepath.Join(t.TempDir(), "caddy.log")
			loadTransportGateway(t, port, logFile, tc.url, tc.block)
			t.Cleanup(func() { _ = caddy.Stop() })
			ok, lastErr := served(t, port)
			if ok != tc.served {
				t.Fatalf("served=%v, want %v (node's last error: %q)", ok, tc.served, lastErr)
			}
			if !tc.served && !strings.Contains(lastErr, tc.reason) {
				t.Errorf("node's last error %q does not say %q", lastErr, tc.reason)
			}
			reqs := tm.requests(mark)
			if len(reqs) == 0 {
				t.Fatal("the node saw no request")
			}
			wantKey := apiKey
			if !tc.served {
				wantKey = "wr0ng-k3y"
			}
			for _, r := range reqs {
				if r.upgrade != strings.HasPrefix(tc.url, "wss") {
					t.Errorf("a %s node got a request with upgrade=%v", tc.url[:strings.Index(tc.url, ":")], r.upgrade)
				}
				if got := r.header.Get("X-Api-Key"); got != wantKey {
					t.Errorf("X-Api-Key %q, want %q", got, wantKey)
				}
				if got := r.header.Get("Authorization"); got != "Bearer "+bearerToken {
					t.Errorf("Authorization %q", got)
				}
			}
			// Everything Caddy logged at debug level, and the admin
			// API's node report, are free of the values.
			logs := readLog(t, logFile, tc.reason)
			report := fmt.Sprintf("%+v", app.Reports())
			for _, secret := range []string{apiKey, bearerToken, "wr0ng-k3y"} {
				if strings.Contains(string(logs), secret) {
					t.Errorf("the log shows %q:\n%s", secret, logs)
				}
				if strings.Contains(report, secret) {
					t.Errorf("the admin report shows %q: %s", secret, report)
				}
			}
			if !tc.served && !strings.Contains(string(logs), tc.reason) {
				t.Errorf("the log does not say why the node was refused (%q):\n%s", tc.reason, logs)
			}
		})
	}
}

// Node options are part of what a reload keeps: the same options keep the
// connection; changed TLS options, or a header whose placeholder now has
// another value, connect anew with them.
func TestNodeTransportReload(t *testing.T) {
	node := fakenode.Start(t)
	ca := testpki.NewCA(t, "node-ca")
	tm := startTerminator(t, node, ca.Server(t, "node").TLS, nil)
	port := testgw.FreePort(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	t.Cleanup(func() { _ = caddy.Stop() })
	handshakes := func(mark int) []string {
		var keys []string
		for _, r := range tm.requests(mark) {
			if r.upgrade {
				keys = append(keys, r.header.Get("X-Api-Key"))
			}
		}
		return keys
	}
	withKey := "tls_trust_pool file " + ca.File + "\nheader X-Api-Key {env.ELARA_TEST_API_KEY}"

	steps := []struct {
		name, block, key string
		served           bool
		// handshakes the node sees during the step, by X-Api-Key
		want []string
	}{
		{"no trust pool: refused", "header X-Api-Key {env.ELARA_TEST_API_KEY}", "first", false, nil},
		{"trust pool added: a new connection", withKey, "first", true, []string{"first"}},
		{"same options: the connection is kept", withKey, "first", true, nil},
		{"placeholder value changed: a new connection", withKey, "second", true, []string{"second"}},
		{"trust pool removed: refused again", "header X-Api-Key {env.ELARA_TEST_API_KEY}", "second", false, nil},
	}
	for _, st := range steps {
		t.Setenv("ELARA_TEST_API_KEY", st.key)
		mark := tm.mark()
		loadTransportGateway(t, port, logFile, tm.wss(), st.block)
		ok, lastErr := served(t, port)
		if ok != st.served {
			t.Fatalf("%s: served=%v (node's last error: %q)", st.name, ok, lastErr)
		}
		if got := handshakes(mark); strings.Join(got, ",") != strings.Join(st.want, ",") {
			t.Errorf("%s: handshakes with keys %q, want %q", st.name, got, st.want)
		}
	}
}
