package e2e

import (
	"bytes"
	"fmt"
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

// TestRunScriptStopsEverything runs the README's `./run.sh` as a user or a
// service manager would: the gateway in front of its own dev chain. It
// checks the URLs it prints work, then stops it the three ways it can
// stop, and checks that nothing it started is left running or listening.
func TestRunScriptStopsEverything(t *testing.T) {
	if skip := prerequisites(); skip != "" {
		if os.Getenv("ELARA_REQUIRE_E2E") != "" {
			t.Fatal(skip)
		}
		t.Skip(skip)
	}
	bin := gatewayBinary(t)
	cases := []struct {
		name string
		stop func(t *testing.T, script *exec.Cmd, children []int)
	}{
		{"SIGTERM to the script", func(t *testing.T, script *exec.Cmd, _ []int) {
			_ = script.Process.Signal(syscall.SIGTERM)
		}},
		{"SIGINT to the script", func(t *testing.T, script *exec.Cmd, _ []int) {
			_ = script.Process.Signal(syscall.SIGINT)
		}},
		{"caddy exits", func(t *testing.T, _ *exec.Cmd, children []int) {
			for _, pid := range children {
				if strings.Contains(procCmdline(pid), "caddy run") {
					_ = syscall.Kill(pid, syscall.SIGKILL)
					return
				}
			}
			t.Fatal("no caddy among the script's processes")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			port, admin, dev := freePort(t), freePort(t), freePort(t)
			var out lockedBuffer
			cmd := exec.Command(filepath.Join(repoRoot, "run.sh"))
			cmd.Dir = dir
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.Env = append(os.Environ(),
				"ELARA_CADDY_BIN="+bin,
				"ELARA_PORT="+strconv.Itoa(port),
				"ELARA_ADMIN=127.0.0.1:"+strconv.Itoa(admin),
				"ELARA_DEV_PORT="+strconv.Itoa(dev),
				"ELARA_UPSTREAM=", "ELARA_CHAIN=", "ELARA_BIND=",
				"XDG_DATA_HOME="+filepath.Join(dir, "data"),
				"XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
			cmd.SysProcAttr = childProcAttr()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			var children []int
			t.Cleanup(func() {
				// Whatever the outcome, nothing outlives the test.
				_ = cmd.Process.Kill()
				for _, pid := range children {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				if t.Failed() {
					t.Logf("run.sh output:\n%s", out.String())
				}
			})

			httpURL := fmt.Sprintf("http://127.0.0.1:%d/westend-dev", port)
			wsURL := fmt.Sprintf("ws://127.0.0.1:%d/westend-dev", port)
			deadline := time.Now().Add(3 * time.Minute)
			for !strings.Contains(out.String(), "Elara is ready") {
				select {
				case <-done:
					t.Fatalf("run.sh exited before it was ready")
				case <-time.After(200 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatal("run.sh did not say it was ready within 3 minutes")
				}
			}
			for _, u := range []string{"HTTP:      " + httpURL, "WebSocket: " + wsURL} {
				if !strings.Contains(out.String(), u) {
					t.Fatalf("run.sh does not print %q", u)
				}
			}
			var name string
			if err := rpcResult(httpURL, "system_chain", nil, &name); err != nil || name == "" {
				t.Fatalf("system_chain through the printed HTTP URL: %q %v", name, err)
			}
			ws, err := wsDial(wsURL, nil, 10*time.Second)
			if err != nil {
				t.Fatalf("WebSocket to the printed URL: %v", err)
			}
			resp, raw, err := wsCall(ws, string(request(1, "system_chain", nil)), "1")
			ws.Close()
			if err != nil || resp.Error != nil || string(resp.Result) != strconv.Quote(name) {
				t.Fatalf("system_chain through the printed WebSocket URL: %s %v (HTTP said %q)", raw, err, name)
			}

			children = descendants(cmd.Process.Pid)
			if len(children) < 2 {
				t.Fatalf("expected caddy and the dev chain under run.sh, found pids %v", children)
			}
			tc.stop(t, cmd, children)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("run.sh did not exit within 20 s")
			}
			// Every process it started is gone, and every port is free.
			gone := time.Now().Add(15 * time.Second)
			for _, pid := range children {
				for processAlive(pid) {
					if time.Now().After(gone) {
						t.Fatalf("pid %d (%s) still runs after run.sh stopped", pid, procCmdline(pid))
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			for _, p := range []int{port, admin, dev} {
				if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), time.Second); err == nil {
					c.Close()
					t.Fatalf("port %d still accepts connections after run.sh stopped", p)
				}
			}
		})
	}
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// descendants lists every process below pid, read from /proc.
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name may hold spaces: fields start after the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			parent[p] = pp
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for c, pp := range parent {
			if pp == p {
				out = append(out, c)
				walk(c)
			}
		}
	}
	walk(pid)
	return out
}

// processAlive reports whether pid runs (a zombie has stopped running).
func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && len(stat) > i+2 && stat[i+2] != 'Z'
}

func procCmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}
