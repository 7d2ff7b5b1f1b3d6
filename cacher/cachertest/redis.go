// Package cachertest runs a real redis-server for tests of the cache.
package cachertest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Redis is one redis-server process started for a test, on a free
// loopback port, without persistence. It is stopped when the test ends.
type Redis struct {
	Addr string
	bin  string
	dir  string
	// conf is a config file given before the defaults, args the
	// arguments after them.
	conf string
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartRedis starts redis-server from PATH. Without it the test is
// skipped, unless ELARA_REQUIRE_REDIS is set (as test.sh does, after
// installing it), which makes it fail.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return startRedis(t, redisBin(t), nil)
}

// StartRedisCluster starts a Redis Cluster of n master nodes that share
// the 16384 slots evenly, and returns them once every node says the
// cluster is ok.
func StartRedisCluster(t testing.TB, n int) []*Redis {
	t.Helper()
	bin := redisBin(t)
	nodes := make([]*Redis, n)
	buses := make([]string, n)
	for i := range nodes {
		dir := t.TempDir()
		_, buses[i], _ = net.SplitHostPort(freeAddr(t))
		nodes[i] = startRedis(t, bin, []string{"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			// The bus port is port+10000 by default, maybe taken or past 65535.
			"--cluster-port", buses[i],
			// Without peers a lone node does not know its own address and
			// reports an empty host in CLUSTER SLOTS.
			"--cluster-announce-ip", "127.0.0.1"})
	}
	for i, r := range nodes {
		first, last := i*16384/n, (i+1)*16384/n-1
		if _, err := r.Do("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(first), strconv.Itoa(last)); err != nil {
			t.Fatalf("assigning slots %d-%d: %v", first, last, err)
		}
		if i > 0 {
			_, port, _ := net.SplitHostPort(r.Addr)
			if _, err := nodes[0].Do("CLUSTER", "MEET", "127.0.0.1", port, buses[i]); err != nil {
				t.Fatalf("CLUSTER MEET: %v", err)
			}
		}
	}
	for _, r := range nodes {
		r.waitFor(t, "cluster_state:ok", "CLUSTER", "INFO")
		r.waitFor(t, fmt.Sprintf("cluster_known_nodes:%d", n), "CLUSTER", "INFO")
	}
	return nodes
}

// Sentinel is a redis-server in Sentinel mode watching one master.
type Sentinel struct {
	*Redis
	// Master is the watched master, by the name MasterName.
	Master     *Redis
	MasterName string
}

// StartRedisSentinel starts a master and one Sentinel that monitors it
// under the name "mymaster" (quorum 1), and returns once the Sentinel
// names the master.
func StartRedisSentinel(t testing.TB) *Sentinel {
	t.Helper()
	bin := redisBin(t)
	master := startRedis(t, bin, nil)
	host, port, _ := net.SplitHostPort(master.Addr)
	addr := freeAddr(t)
	_, sport, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf") // Sentinel rewrites it
	body := fmt.Sprintf("bind 127.0.0.1\nport %s\ndir %s\nsentinel monitor mymaster %s %s 1\n", sport, dir, host, port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Redis{Addr: addr, bin: bin, dir: dir, conf: conf, args: []string{"--sentinel"}}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.waitFor(t, "*2", "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster") // [host, port]
	return &Sentinel{Redis: s, Master: master, MasterName: "mymaster"}
}

func redisBin(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("ELARA_REQUIRE_REDIS") != "" {
			t.Fatalf("redis-server is not installed and ELARA_REQUIRE_REDIS is set (apt-get install -y redis-server)")
		}
		t.Skip("redis-server is not installed (apt-get install -y redis-server); set ELARA_REQUIRE_REDIS=1 to make this a failure")
	}
	return bin
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func startRedis(t testing.TB, bin string, args []string) *Redis {
	t.Helper()
	r := &Redis{Addr: freeAddr(t), bin: bin, dir: t.TempDir(), args: args}
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// waitFor repeats a command until its reply contains want.
func (r *Redis) waitFor(t testing.TB, want string, args ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		reply, err := r.Do(args...)
		if err == nil && strings.Contains(reply, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s: %q, %v; want %q", strings.Join(args, " "), r.Addr, reply, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *Redis) start() error {
	_, port, _ := net.SplitHostPort(r.Addr)
	logf, err := os.OpenFile(filepath.Join(r.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	var args []string
	if r.conf != "" {
		args = append(args, r.conf) // a config file comes first
	}
	args = append(args, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--daemonize", "no", "--loglevel", "warning")
	cmd := exec.Command(r.bin, append(args, r.args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := r.Do("PING"); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			r.Stop()
			return fmt.Errorf("redis-server on %s did not answer PING:\n%s", r.Addr, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills this test's redis-server (by its own PID) and waits for it.
func (r *Redis) Stop() {
	r.mu.Lock()
	cmd := r.cmd
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// Freeze stops the redis-server process (SIGSTOP): it keeps its
// connections, and the kernel still accepts new ones, but nothing is
// answered until Thaw. A Redis that is slow, not down.
func (r *Redis) Freeze(t testing.TB) { r.signal(t, syscall.SIGSTOP) }

// Thaw resumes a frozen redis-server (SIGCONT).
func (r *Redis) Thaw(t testing.TB) { r.signal(t, syscall.SIGCONT) }

func (r *Redis) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		t.Fatalf("redis-server on %s is not running", r.Addr)
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling redis-server: %v", err)
	}
}

// Restart starts redis-server again on the same port, empty.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	var err error
	for range 50 { // the port may linger a moment after the kill
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal(err)
}

// Do sends one inline command and returns the first line of the reply,
// or the whole content of a bulk string reply.
func (r *Redis) Do(args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(strings.Join(args, " ") + "\r\n")); err != nil {
		return "", err
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "-") {
		return "", fmt.Errorf("redis: %s", line[1:])
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(line, "$")); err == nil && strings.HasPrefix(line, "$") && n >= 0 {
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line, nil
}

// DBSize returns the number of keys.
func (r *Redis) DBSize(t testing.TB) int {
	t.Helper()
	line, err := r.Do("DBSIZE")
	if err != nil {
		t.Fatalf("DBSIZE: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(line, ":"))
	if err != nil {
		t.Fatalf("DBSIZE answered %q", line)
	}
	return n
}
