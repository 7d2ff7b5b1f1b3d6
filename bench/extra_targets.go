package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// redisAddrToken in a Caddyfile snippet is replaced by the address of the
// target's own redis-server.
const redisAddrToken = "REDIS_ADDR"

// redisTarget is a Caddy target with a redis-server of its own, started
// before Caddy on a free loopback port, with persistence off, and stopped
// after it, by PID.
type redisTarget struct {
	caddyTarget
	redis *process
}

func (r *redisTarget) helperPID() int { return r.redis.cmd.Process.Pid }

func (r *redisTarget) Start(ctx context.Context, env *Env) error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return fmt.Errorf("%s needs redis-server on PATH: %w", r.name, err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logPath := filepath.Join(env.Dir, r.name+"-redis.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--dir", env.Dir, "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if r.redis, err = startProcess(cmd); err != nil {
		return err
	}
	if err := waitRedis(ctx, addr, r.redis); err != nil {
		r.redis.stop(5 * time.Second)
		return fmt.Errorf("redis-server: %w\n--- %s:\n%s", err, logPath, tail(logPath, 20))
	}
	r.global = strings.ReplaceAll(r.global, redisAddrToken, addr)
	if err := r.caddyTarget.Start(ctx, env); err != nil {
		r.redis.stop(5 * time.Second)
		return err
	}
	return nil
}

func (r *redisTarget) Stop() error {
	err := r.caddyTarget.Stop()
	r.redis.stop(5 * time.Second)
	return err
}

// waitRedis waits until the server at addr answers PING.
func waitRedis(ctx context.Context, addr string, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("exited during startup: %v", p.err)
		}
		if last = pingRedis(addr); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %v", startupTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func pingRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING: %q", line)
	}
	return nil
}

// respondTarget is Caddy's static respond handler: for each workload, at
// /bench/<workload>, the node's reply to it with id 1. It does no work
// per request but what Caddy does for any handler, so it is the ceiling
// of throughput for a Caddy-based gateway with a reply of that size.
type respondTarget struct {
	caddyTarget
}

func (*respondTarget) static() {}

func (r *respondTarget) workloadURL(t Transport, w Workload) string {
	return r.URL(t) + "/" + w.Name()
}

func (r *respondTarget) Start(ctx context.Context, env *Env) error {
	r.site = respondSite(env.Workloads)
	return r.caddyTarget.Start(ctx, env)
}

// respondSite routes each workload's path to its static reply; /bench
// answers the readiness probe.
func respondSite(ws []Workload) string {
	var b strings.Builder
	route := func(path, result string) {
		fmt.Fprintf(&b, "handle %s {\n\theader Content-Type application/json\n\trespond `%s` 200\n}\n",
			path, `{"jsonrpc":"2.0","id":1,"result":`+result+`}`)
	}
	route("/"+chainName, `"bench"`)
	for _, w := range ws {
		if c, ok := unwrap(w).(*rpcCall); ok && c.want != "" {
			route("/"+chainName+"/"+c.name, c.want)
		}
	}
	return b.String()
}

// fileTarget is Caddy's file_server serving the same replies as respond
// from files: Caddy's respond runs its body through the placeholder
// replacer on every request, which for a 300 kB body costs more than
// elara's whole cache hit, so for large replies this is the real ceiling
// of a Caddy handler (the kernel copies the file: sendfile).
type fileTarget struct {
	caddyTarget
}

func (*fileTarget) static() {}

func (f *fileTarget) workloadURL(t Transport, w Workload) string {
	return f.URL(t) + "/" + w.Name()
}

func (f *fileTarget) Start(ctx context.Context, env *Env) error {
	root := filepath.Join(env.Dir, f.name+"-files")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	var site strings.Builder
	fmt.Fprintf(&site, "root * %s\nheader Content-Type application/json\n", root)
	// file_server serves GET; a POST is served like one.
	site.WriteString("method GET\n")
	route := func(name, result string) error {
		fmt.Fprintf(&site, "handle %s {\n\trewrite * /%s.json\n\tfile_server\n}\n", "/"+name, filepath.Base(name))
		return os.WriteFile(filepath.Join(root, filepath.Base(name)+".json"),
			[]byte(`{"jsonrpc":"2.0","id":1,"result":`+result+`}`), 0o644)
	}
	if err := route(chainName, `"bench"`); err != nil {
		return err
	}
	for _, w := range env.Workloads {
		if c, ok := unwrap(w).(*rpcCall); ok && c.want != "" {
			if err := route(chainName+"/"+c.name, c.want); err != nil {
				return err
			}
		}
	}
	f.site = site.String()
	return f.caddyTarget.Start(ctx, env)
}
