package e2e

// Process management for the end-to-end tests: one Chopsticks node for the
// whole package (started on first use, killed in TestMain), one Caddy/Elara
// gateway per test, plus small JSON-RPC helpers over HTTP and WebSocket.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	chopsticksStartTimeout = 120 * time.Second
	gatewayStartTimeout    = 45 * time.Second
	callTimeout            = 30 * time.Second
	chainPath              = "westend"
)

var (
	// repoRoot is the module root (the parent of this package's directory).
	repoRoot string
	// testdataDir holds the npm project (package.json, node_modules) and scripts.
	testdataDir string

	workOnce sync.Once
	workDir  string // temp dir for this package run, removed in TestMain
	workErr  error

	nodeOnce sync.Once
	node     *chopsticks
	nodeSkip string // non-empty: prerequisites missing, skip with this message
	nodeErr  error

	caddyOnce sync.Once
	caddyBin  string
	caddyErr  error

	httpClient = &http.Client{Timeout: callTimeout}
)

func TestMain(m *testing.M) {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: getwd:", err)
		os.Exit(1)
	}
	repoRoot = filepath.Dir(wd)
	testdataDir = filepath.Join(wd, "testdata")

	code := m.Run()

	if node != nil {
		node.stop()
	}
	if workDir != "" {
		if code != 0 {
			// keep the logs of a failed run for inspection
			fmt.Fprintf(os.Stderr, "e2e: work files (logs, Caddyfiles) kept in %s\n", workDir)
		} else {
			os.RemoveAll(workDir)
		}
	}
	os.Exit(code)
}

func packageWorkDir(t *testing.T) string {
	t.Helper()
	workOnce.Do(func() { workDir, workErr = os.MkdirTemp("", "elara-e2e-") })
	if workErr != nil {
		t.Fatalf("creating work dir: %v", workErr)
	}
	return workDir
}

// ---------------------------------------------------------------------------
// prerequisites

func chainSpecPath() string {
	if p := os.Getenv("ELARA_E2E_CHAINSPEC"); p != "" {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(repoRoot, p)
	}
	return filepath.Join(repoRoot, "testdata", "westend-dev-spec-raw.json")
}

// prerequisites returns a skip message when the environment cannot run the
// real-node tests, or "" when it can. Each message names the one step that
// fixes what is missing.
func prerequisites() string {
	spec := chainSpecPath()
	if _, err := os.Stat(spec); err != nil {
		if os.Getenv("ELARA_E2E_CHAINSPEC") != "" {
			return fmt.Sprintf("e2e: ELARA_E2E_CHAINSPEC names %s, which cannot be read (%v): point it at a raw Substrate chain spec, or unset it to use the repository's testdata/westend-dev-spec-raw.json", spec, err)
		}
		return fmt.Sprintf("e2e: the repository's chain spec %s is missing (%v): restore it with `git checkout -- testdata/`", spec, err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "e2e: `node` (Node.js >= 20) is not on PATH: install Node.js 20 or later"
	}
	for _, p := range []string{
		"node_modules/@acala-network/chopsticks/chopsticks.cjs",
		"node_modules/@polkadot/api/package.json",
		"node_modules/ws/package.json",
	} {
		if _, err := os.Stat(filepath.Join(testdataDir, p)); err != nil {
			return fmt.Sprintf("e2e: npm packages are not installed (%s missing): run `npm ci` in e2e/testdata (./test.sh does)", filepath.Join("e2e/testdata", p))
		}
	}
	return ""
}

// ---------------------------------------------------------------------------
// Chopsticks: one real Substrate JSON-RPC node for the whole package

type chopsticks struct {
	cmd     *exec.Cmd
	done    chan struct{}
	port    int
	logPath string
}

func (c *chopsticks) wsURL() string   { return fmt.Sprintf("ws://127.0.0.1:%d", c.port) }
func (c *chopsticks) httpURL() string { return fmt.Sprintf("http://127.0.0.1:%d", c.port) }

func (c *chopsticks) stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// node returns the package's Chopsticks node, starting it on first use. It
// skips the test when the prerequisites are missing.
func realNode(t *testing.T) *chopsticks {
	t.Helper()
	nodeOnce.Do(func() {
		if nodeSkip = prerequisites(); nodeSkip != "" {
			return
		}
		node, nodeErr = startChopsticks(packageWorkDir(t))
	})
	if nodeSkip != "" {
		// CI sets ELARA_REQUIRE_E2E so a missing prerequisite fails loudly
		// instead of turning the run green with nothing tested.
		if os.Getenv("ELARA_REQUIRE_E2E") != "" {
			t.Fatal(nodeSkip)
		}
		t.Skip(nodeSkip)
	}
	if nodeErr != nil {
		t.Fatalf("starting chopsticks: %v", nodeErr)
	}
	select {
	case <-node.done:
		t.Fatalf("chopsticks (pid %d) has exited; log tail:\n%s", node.cmd.Process.Pid, logTail(node.logPath, 40))
	default:
	}
	return node
}

// normalizeSpec does what start-peer.sh does: check that the spec is a raw
// spec with runtime code and give it an object "properties" (Chopsticks
// rejects null).
func normalizeSpec(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var spec map[string]json.RawMessage
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("parsing chain spec %s: %w", src, err)
	}
	var genesis struct {
		Raw struct {
			Top map[string]json.RawMessage `json:"top"`
		} `json:"raw"`
	}
	if err := json.Unmarshal(spec["genesis"], &genesis); err != nil || genesis.Raw.Top["0x3a636f6465"] == nil {
		return fmt.Errorf("chain spec %s has no raw genesis with :code", src)
	}
	props := bytes.TrimSpace(spec["properties"])
	if len(props) == 0 || props[0] != '{' {
		spec["properties"] = json.RawMessage(`{"ss58Format":42,"tokenDecimals":12,"tokenSymbol":"UNIT"}`)
	}
	out, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, out, 0o644)
}

var listeningRE = regexp.MustCompile(`RPC listening on http://127\.0\.0\.1:(\d+)`)

func startChopsticks(dir string) (*chopsticks, error) {
	norm := filepath.Join(dir, "spec.normalized.json")
	if err := normalizeSpec(chainSpecPath(), norm); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "chopsticks.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command("node",
		filepath.Join(testdataDir, "node_modules/@acala-network/chopsticks/chopsticks.cjs"),
		"--genesis", norm, "--host", "127.0.0.1", "--port", "0", "--build-block-mode", "Manual")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &chopsticks{cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() { _ = cmd.Wait(); close(c.done) }()

	deadline := time.Now().Add(chopsticksStartTimeout)
	for {
		select {
		case <-c.done:
			return nil, fmt.Errorf("chopsticks exited during start-up (%v); log tail:\n%s", cmd.ProcessState, logTail(logPath, 40))
		default:
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("chopsticks did not answer within %v; log tail:\n%s", chopsticksStartTimeout, logTail(logPath, 40))
		}
		if c.port == 0 {
			if b, err := os.ReadFile(logPath); err == nil {
				if m := listeningRE.FindSubmatch(b); m != nil {
					c.port, _ = strconv.Atoi(string(m[1]))
				}
			}
		}
		if c.port != 0 {
			var chain string
			if err := rpcResult(c.httpURL(), "system_chain", nil, &chain); err == nil && chain != "" {
				return c, nil
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// bestNumber asks the node directly for its best block number.
func (c *chopsticks) bestNumber(t *testing.T) uint64 {
	t.Helper()
	var hdr struct {
		Number string `json:"number"`
	}
	if err := rpcResult(c.httpURL(), "chain_getHeader", nil, &hdr); err != nil {
		t.Fatalf("chain_getHeader directly on chopsticks: %v", err)
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(hdr.Number, "0x"), 16, 64)
	if err != nil {
		t.Fatalf("bad block number %q: %v", hdr.Number, err)
	}
	return n
}

// ---------------------------------------------------------------------------
// Caddy / Elara gateway

func gatewayBinary(t *testing.T) string {
	t.Helper()
	caddyOnce.Do(func() {
		if p := os.Getenv("ELARA_CADDY_BIN"); p != "" {
			if !filepath.IsAbs(p) {
				p = filepath.Join(repoRoot, p)
			}
			if _, err := os.Stat(p); err != nil {
				caddyErr = fmt.Errorf("ELARA_CADDY_BIN=%s: %w", p, err)
			}
			caddyBin = p
			return
		}
		out := filepath.Join(packageWorkDir(t), "caddy")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/caddy")
		cmd.Dir = repoRoot
		if b, err := cmd.CombinedOutput(); err != nil {
			caddyErr = fmt.Errorf("ELARA_CADDY_BIN is unset and `go build ./cmd/caddy` failed: %v\n%s", err, b)
			return
		}
		caddyBin = out
	})
	if caddyErr != nil {
		t.Fatal(caddyErr)
	}
	return caddyBin
}

type gateway struct {
	cmd       *exec.Cmd
	done      chan struct{}
	adminPort int
	httpPort  int
	logPath   string
}

func (g *gateway) httpURL(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", g.httpPort, path)
}
func (g *gateway) wsURL(path string) string {
	return fmt.Sprintf("ws://127.0.0.1:%d%s", g.httpPort, path)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startGateway renders a Caddyfile template (see caddyfiles in e2e_test.go),
// runs the gateway binary on free ports and waits until it proxies
// system_chain to the node through readyPath. It is stopped at test cleanup;
// its log tail is printed when the test failed.
func startGateway(t *testing.T, n *chopsticks, template string, vars map[string]string, readyPath string) *gateway {
	t.Helper()
	bin := gatewayBinary(t)
	dir := t.TempDir()
	var lastErr string
	for attempt := 1; attempt <= 3; attempt++ {
		g := &gateway{adminPort: freePort(t), httpPort: freePort(t), done: make(chan struct{})}
		repl := []string{
			"@@ADMIN_PORT@@", strconv.Itoa(g.adminPort),
			"@@HTTP_PORT@@", strconv.Itoa(g.httpPort),
			"@@NODE_URL@@", n.wsURL(),
		}
		for k, v := range vars {
			repl = append(repl, "@@"+k+"@@", v)
		}
		cfg := strings.NewReplacer(repl...).Replace(template)
		cfgPath := filepath.Join(dir, fmt.Sprintf("Caddyfile.%d", attempt))
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		g.logPath = filepath.Join(dir, fmt.Sprintf("caddy.%d.log", attempt))
		logf, err := os.Create(g.logPath)
		if err != nil {
			t.Fatal(err)
		}
		g.cmd = exec.Command(bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
		g.cmd.Dir = dir
		g.cmd.Stdout, g.cmd.Stderr = logf, logf
		g.cmd.Env = append(os.Environ(),
			"XDG_DATA_HOME="+filepath.Join(dir, "data"),
			"XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
		g.cmd.SysProcAttr = childProcAttr()
		if err := g.cmd.Start(); err != nil {
			logf.Close()
			t.Fatalf("starting %s: %v", bin, err)
		}
		logf.Close()
		go func() { _ = g.cmd.Wait(); close(g.done) }()
		t.Cleanup(func() {
			g.stop()
			if t.Failed() {
				t.Logf("gateway log tail (%s):\n%s", g.logPath, logTail(g.logPath, 60))
			}
		})
		err = g.waitReady(readyPath)
		if err == nil {
			t.Logf("gateway pid %d on http://127.0.0.1:%d (admin %d), node %s", g.cmd.Process.Pid, g.httpPort, g.adminPort, n.wsURL())
			return g
		}
		g.stop()
		lastErr = fmt.Sprintf("%v\nCaddyfile:\n%s\nlog tail:\n%s", err, cfg, logTail(g.logPath, 60))
		if !strings.Contains(logTail(g.logPath, 60), "address already in use") {
			break
		}
	}
	t.Fatalf("gateway did not become ready: %s", lastErr)
	return nil
}

func (g *gateway) waitReady(readyPath string) error {
	deadline := time.Now().Add(gatewayStartTimeout)
	adminOK := false
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-g.done:
			return fmt.Errorf("caddy exited during start-up (%v)", g.cmd.ProcessState)
		default:
		}
		if !adminOK {
			resp, err := httpClient.Get(fmt.Sprintf("http://127.0.0.1:%d/config/", g.adminPort))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				adminOK = resp.StatusCode == http.StatusOK
			}
			last = err
		}
		if adminOK {
			var chain string
			if last = rpcResult(g.httpURL(readyPath), "system_chain", nil, &chain); last == nil && chain != "" {
				return nil
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %v (admin endpoint ok: %v; last error: %v)", gatewayStartTimeout, adminOK, last)
}

func (g *gateway) stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	select {
	case <-g.done:
		return
	default:
	}
	_ = g.cmd.Process.Signal(os.Interrupt)
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
}

// alive fails the test when the gateway process has died (e.g. crashed on bad
// input).
func (g *gateway) alive(t *testing.T) {
	t.Helper()
	select {
	case <-g.done:
		t.Fatalf("gateway process exited (%v)", g.cmd.ProcessState)
	default:
	}
}

func logTail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	for i, l := range all {
		all[i] = truncate(l, 2000)
	}
	return strings.Join(all, "\n")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("...(%d bytes)", len(s))
}

// ---------------------------------------------------------------------------
// JSON-RPC helpers

type rpcError struct {
	Code    *int            `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *rpcError) code() int {
	if e == nil || e.Code == nil {
		return 0
	}
	return *e.Code
}

func (e *rpcError) String() string {
	if e == nil {
		return "<nil>"
	}
	b, _ := json.Marshal(e)
	return string(b)
}

type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
	Method  string          `json:"method,omitempty"` // set on subscription notifications
}

type httpReply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *httpReply) String() string {
	return fmt.Sprintf("HTTP %d %s", r.Status, truncate(string(r.Body), 500))
}

// single decodes the body as one JSON-RPC response object.
func (r *httpReply) single() (*rpcResponse, error) {
	var resp rpcResponse
	if err := json.Unmarshal(r.Body, &resp); err != nil {
		return nil, fmt.Errorf("body is not one JSON-RPC response (%v): %s", err, r)
	}
	return &resp, nil
}

// batch decodes the body as an array of JSON-RPC responses.
func (r *httpReply) batch() ([]rpcResponse, error) {
	var resp []rpcResponse
	if err := json.Unmarshal(r.Body, &resp); err != nil {
		return nil, fmt.Errorf("body is not a JSON-RPC batch response (%v): %s", err, r)
	}
	return resp, nil
}

func postRaw(url string, body []byte, hdr http.Header) (*httpReply, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	return &httpReply{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

func request(id any, method string, params any) []byte {
	if params == nil {
		params = []any{}
	}
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if err != nil {
		panic(err)
	}
	return b
}

// rpcResult POSTs one call and decodes its result into out.
func rpcResult(url, method string, params any, out any) error {
	r, err := postRaw(url, request(1, method, params), nil)
	if err != nil {
		return err
	}
	resp, err := r.single()
	if err != nil {
		return err
	}
	if resp.Error != nil {
		return fmt.Errorf("%s: JSON-RPC error %s (HTTP %d)", method, resp.Error, r.Status)
	}
	if resp.Result == nil {
		return fmt.Errorf("%s: reply has no result: %s", method, r)
	}
	return json.Unmarshal(resp.Result, out)
}

// wsCall sends one text message and returns the next reply whose id equals
// wantID (other messages, e.g. notifications, are skipped).
func wsCall(ws *wsConn, msg string, wantID string) (*rpcResponse, []byte, error) {
	if err := ws.writeText(msg); err != nil {
		return nil, nil, err
	}
	return wsReadID(ws, wantID, time.Now().Add(callTimeout))
}

func wsReadID(ws *wsConn, wantID string, deadline time.Time) (*rpcResponse, []byte, error) {
	for {
		_, raw, err := ws.readMessage(deadline)
		if err != nil {
			return nil, nil, err
		}
		var resp rpcResponse
		if err := json.Unmarshal(raw, &resp); err != nil {
			return nil, raw, fmt.Errorf("reply is not one JSON-RPC response (%v): %s", err, truncate(string(raw), 500))
		}
		if string(resp.ID) == wantID {
			return &resp, raw, nil
		}
	}
}

// wsReadBatch reads the next message and decodes it as a batch response.
func wsReadBatch(ws *wsConn) ([]rpcResponse, []byte, error) {
	for {
		_, raw, err := ws.readMessage(time.Now().Add(callTimeout))
		if err != nil {
			return nil, nil, err
		}
		if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
			var resp []rpcResponse
			err := json.Unmarshal(raw, &resp)
			return resp, raw, err
		}
		var one rpcResponse
		if json.Unmarshal(raw, &one) == nil && one.Method != "" {
			continue // a notification
		}
		return nil, raw, fmt.Errorf("expected a batch response, got %s", truncate(string(raw), 500))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// scanResultLine finds the line "PREFIX {json}" in a script's stdout.
func scanResultLine(out []byte, prefix string) ([]byte, bool) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return []byte(rest), true
		}
	}
	return nil, false
}

// scriptRun is what one run of a testdata script left: its exit error and
// its standard error, for the test's failure messages.
type scriptRun struct {
	err    error
	stderr string
}

// runScript runs `node testdata/<script> args...` with env added, for at
// most timeout (the script is told to give up 30 s earlier, so that it can
// still report), and decodes its `ELARA_E2E_RESULT {json}` line into out.
// A script that printed no such line fails the test.
func runScript(t *testing.T, timeout time.Duration, env []string, out any, script string, args ...string) scriptRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Dir = testdataDir
	cmd.Env = append(os.Environ(), fmt.Sprintf("ELARA_E2E_SCRIPT_TIMEOUT_MS=%d", (timeout-30*time.Second).Milliseconds()))
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = childProcAttr()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	line, ok := scanResultLine(stdout.Bytes(), "ELARA_E2E_RESULT ")
	if !ok {
		t.Fatalf("%s %v printed no result (%v)\nstdout:\n%s\nstderr:\n%s", script, args, runErr, truncate(stdout.String(), 4000), truncate(stderr.String(), 4000))
	}
	if err := json.Unmarshal(line, out); err != nil {
		t.Fatalf("%s: bad result JSON: %v\n%s", script, err, truncate(string(line), 4000))
	}
	return scriptRun{err: runErr, stderr: truncate(stderr.String(), 3000)}
}
