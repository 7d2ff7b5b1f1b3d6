// Package cachertest runs a real redis-server for tests of the cache.
package cachertest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Redis is one redis-server process started for a test, on a free
// loopback port, without persistence. It is stopped when the test ends.
type Redis struct {
	Addr string
	bin  string
	dir  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartRedis starts redis-server from PATH. Without it the test is
// skipped, unless ELARA_REQUIRE_REDIS is set (as test.sh does, after
// installing it), which makes it fail.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("ELARA_REQUIRE_REDIS") != "" {
			t.Fatalf("redis-server is not installed and ELARA_REQUIRE_REDIS is set (apt-get install -y redis-server)")
		}
		t.Skip("redis-server is not installed (apt-get install -y redis-server); set ELARA_REQUIRE_REDIS=1 to make this a failure")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	r := &Redis{Addr: addr, bin: bin, dir: t.TempDir()}
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

func (r *Redis) start() error {
	_, port, _ := net.SplitHostPort(r.Addr)
	logf, err := os.OpenFile(filepath.Join(r.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(r.bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--daemonize", "no", "--loglevel", "warning")
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

// Do sends one inline command and returns the first line of the reply.
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
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "-") {
		return "", fmt.Errorf("redis: %s", line[1:])
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
