package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// caddyTarget is a Caddy process in front of the node, configured by a
// Caddyfile snippet. Each one runs alone in its own process so that
// setups do not share CPU, memory or connections with each other.
type caddyTarget struct {
	name string
	// global is extra global options, e.g. the elara app; site is the body
	// of the site block. NODE_ADDR in either becomes the node's host:port.
	global, site string
	// httpOnly marks handlers that cannot serve WebSocket, like respond.
	httpOnly bool
	// wsOnly marks setups that differ from another only on WebSocket.
	wsOnly bool
	// clientDeflate makes the setup's WebSocket clients offer
	// permessage-deflate.
	clientDeflate bool

	port      int
	adminPort int // 0: admin API off
	proc      *process
	logPath   string
}

func (c *caddyTarget) Name() string { return c.name }

func (c *caddyTarget) pid() int { return c.proc.cmd.Process.Pid }

func (c *caddyTarget) offersDeflate() bool { return c.clientDeflate }

func (c *caddyTarget) Supports(t Transport) bool {
	if t == HTTP {
		return !c.wsOnly
	}
	return !c.httpOnly
}

func (c *caddyTarget) URL(t Transport) string {
	return endpoint(t, "127.0.0.1:"+strconv.Itoa(c.port))
}

func (c *caddyTarget) profileURL(seconds int) string {
	if c.adminPort == 0 {
		return ""
	}
	return fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", c.adminURL(), seconds)
}

// adminURL is the base URL of Caddy's admin API, "" when it is off.
func (c *caddyTarget) adminURL() string {
	if c.adminPort == 0 {
		return ""
	}
	return fmt.Sprintf("http://127.0.0.1:%d", c.adminPort)
}

// caddyfile renders the whole config: loopback only, no HTTPS, no admin
// API unless profiling, nothing persisted, and only errors logged so that
// logging costs nothing measurable.
func (c *caddyTarget) caddyfile(nodeAddr string) string {
	admin := "admin off"
	if c.adminPort != 0 {
		admin = fmt.Sprintf("admin 127.0.0.1:%d", c.adminPort)
	}
	return fmt.Sprintf(`{
	%s
	default_bind 127.0.0.1
	auto_https off
	skip_install_trust
	persist_config off
	log {
		level ERROR
	}
%s}

http://127.0.0.1:%d {
%s}
`, admin, indent(expand(c.global, nodeAddr)), c.port, indent(expand(c.site, nodeAddr)))
}

// indent indents every line of a snippet by one tab.
func indent(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	return "\t" + strings.ReplaceAll(s, "\n", "\n\t") + "\n"
}

func (c *caddyTarget) Start(ctx context.Context, env *Env) error {
	bin, err := env.caddy(ctx)
	if err != nil {
		return err
	}
	if c.port, err = freePort(); err != nil {
		return err
	}
	if env.Profile {
		if c.adminPort, err = freePort(); err != nil {
			return err
		}
	}
	conf := filepath.Join(env.Dir, c.name+".Caddyfile")
	if err := os.WriteFile(conf, []byte(c.caddyfile(env.Node.Addr())), 0o644); err != nil {
		return err
	}
	c.logPath = filepath.Join(env.Dir, c.name+".log")
	logFile, err := os.Create(c.logPath)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, "run", "--config", conf, "--adapter", "caddyfile")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Keep Caddy's data and config directories out of $HOME.
	cmd.Env = append(os.Environ(),
		"XDG_DATA_HOME="+filepath.Join(env.Dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(env.Dir, "config"))
	if c.proc, err = startProcess(cmd); err != nil {
		return err
	}
	if err := c.waitReady(ctx); err != nil {
		c.Stop()
		return fmt.Errorf("caddy %s: %w\n--- %s:\n%s", c.name, err, c.logPath, tail(c.logPath, 20))
	}
	return nil
}

// Stop stops Caddy by its PID. WebSocket clients are gone by then, so a
// graceful stop is quick; a stuck one is killed.
func (c *caddyTarget) Stop() error {
	c.proc.stop(5 * time.Second)
	return nil
}

// waitReady polls with a real call until the target answers it: for elara
// that also means its upstream connection is up.
func (c *caddyTarget) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	var last error
	for {
		if c.proc.exited() {
			return fmt.Errorf("exited during startup: %v", c.proc.err)
		}
		if last = probe(ctx, c.URL(HTTP)); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %v", startupTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// probe sends system_chain and wants a result back.
func probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url,
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"system_chain","params":[]}`))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	var r struct {
		Result json.RawMessage
		Error  json.RawMessage
	}
	if err := json.Unmarshal(buf.Bytes(), &r); err != nil || resp.StatusCode != http.StatusOK || len(r.Result) == 0 {
		return fmt.Errorf("probe: status %d: %.200s", resp.StatusCode, buf.Bytes())
	}
	return nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
