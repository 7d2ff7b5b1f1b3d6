package e2e

// pjsSession runs a node script built on testdata/session.mjs and drives it
// command by command: the Go test decides when blocks are made, forwarders
// die, runtimes change; the script holds the polkadot.js clients and says
// what they saw.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

const sessionReplyPrefix = "ELARA_E2E_REPLY "

type pjsSession struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies chan []byte
	done    chan struct{}

	mu     sync.Mutex
	output bytes.Buffer // stdout lines that are not replies, and stderr
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() > 4<<20 {
		return len(p), nil
	}
	return w.b.Write(p)
}

// startPJSSession starts `node script args...` in testdata. The process is
// stopped at test cleanup; its output is logged when the test failed.
func startPJSSession(t *testing.T, script string, args ...string) *pjsSession {
	t.Helper()
	s := &pjsSession{t: t, name: script, replies: make(chan []byte, 16), done: make(chan struct{})}
	s.cmd = exec.Command("node", append([]string{script}, args...)...)
	s.cmd.Dir = testdataDir
	s.cmd.SysProcAttr = childProcAttr()
	s.cmd.Stderr = lockedWriter{&s.mu, &s.output}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting node %s: %v", script, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, sessionReplyPrefix); ok {
				s.replies <- []byte(rest)
				continue
			}
			lockedWriter{&s.mu, &s.output}.Write([]byte(line + "\n"))
		}
		_ = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("%s output tail:\n%s", script, s.outputTail(6000))
		}
	})
	return s
}

func (s *pjsSession) outputTail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.output.String()
	if len(out) > n {
		out = "..." + out[len(out)-n:]
	}
	return out
}

// call sends one command and decodes the reply into out (may be nil). It
// returns an error for a reply with ok false, a dead script or a timeout.
func (s *pjsSession) call(timeout time.Duration, cmd string, args map[string]any, out any) error {
	req := map[string]any{"cmd": cmd}
	for k, v := range args {
		req[k] = v
	}
	line, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := s.stdin.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("%s %s: writing command: %v", s.name, cmd, err)
	}
	select {
	case raw := <-s.replies:
		var status struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(raw, &status); err != nil {
			return fmt.Errorf("%s %s: bad reply %s: %v", s.name, cmd, truncate(string(raw), 500), err)
		}
		if !status.OK {
			return fmt.Errorf("%s %s failed: %s", s.name, cmd, status.Error)
		}
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				return fmt.Errorf("%s %s: decoding reply: %v: %s", s.name, cmd, err, truncate(string(raw), 500))
			}
		}
		return nil
	case <-s.done:
		return fmt.Errorf("%s exited (%v) during %s", s.name, s.cmd.ProcessState, cmd)
	case <-time.After(timeout):
		return fmt.Errorf("%s %s: no reply within %v", s.name, cmd, timeout)
	}
}

// mustCall is call that ends the test on an error.
func (s *pjsSession) mustCall(timeout time.Duration, cmd string, args map[string]any, out any) {
	s.t.Helper()
	if err := s.call(timeout, cmd, args, out); err != nil {
		s.t.Fatal(err)
	}
}

// stop asks the script to exit and kills it if it does not.
func (s *pjsSession) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_, _ = s.stdin.Write([]byte(`{"cmd":"exit"}` + "\n"))
	_ = s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Signal(os.Kill)
		<-s.done
	}
}
