package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// nodeProc is the fake node running in a child process (this same binary
// with -serve-node). The child prints its address, then answers one line
// per command line on stdin; it exits when stdin closes, so it cannot
// outlive the bench even if the bench is killed.
type nodeProc struct {
	proc *process
	addr string

	mu  sync.Mutex // one command at a time
	in  io.WriteCloser
	out *bufio.Reader
}

func startNode() (*nodeProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-serve-node")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	proc, err := startProcess(cmd)
	if err != nil {
		return nil, err
	}
	n := &nodeProc{proc: proc, in: in, out: bufio.NewReader(stdout)}
	line, err := n.out.ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "addr ")
	if err != nil || !ok {
		n.Stop()
		return nil, fmt.Errorf("fake node did not start: %q %v", line, err)
	}
	n.addr = addr
	return n, nil
}

func (n *nodeProc) pid() int { return n.proc.cmd.Process.Pid }

// Addr is the node's host:port.
func (n *nodeProc) Addr() string { return n.addr }

// command sends one control command and returns its answer.
func (n *nodeProc) command(cmd string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := io.WriteString(n.in, cmd+"\n"); err != nil {
		return "", fmt.Errorf("node command %q: %w", cmd, err)
	}
	line, err := n.out.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("node command %q: %w", cmd, err)
	}
	line = strings.TrimSpace(line)
	if msg, isErr := strings.CutPrefix(line, "error "); isErr {
		return "", fmt.Errorf("node command %q: %s", cmd, msg)
	}
	return line, nil
}

// count runs a command whose answer is a number.
func (n *nodeProc) count(cmd string) (int64, error) {
	s, err := n.command(cmd)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(s, 10, 64)
}

// Calls is how many requests for method the node has received.
func (n *nodeProc) Calls(method string) (int64, error) { return n.count("calls " + method) }

// Subs is how many subscriptions made with method are open on the node.
func (n *nodeProc) Subs(method string) (int64, error) { return n.count("subs " + method) }

// NewBlock makes the node produce a block, which notifies its head
// subscribers, and returns the block's number. It returns once the node
// has queued every notification (each connection's writer sends them).
func (n *nodeProc) NewBlock() (uint64, error) {
	s, err := n.command("new-block")
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(s, 10, 64)
}

// NewBlockFinalized makes and finalizes a block (chainHead followers get
// newBlock, bestBlockChanged and finalized) and returns its number and hash.
func (n *nodeProc) NewBlockFinalized() (uint64, string, error) {
	s, err := n.command("new-block-finalized")
	if err != nil {
		return 0, "", err
	}
	num, hash, _ := strings.Cut(s, " ")
	v, err := strconv.ParseUint(num, 10, 64)
	return v, hash, err
}

// SetStorage sets a storage key at the best block.
func (n *nodeProc) SetStorage(key, value string) error {
	_, err := n.command("set-storage " + key + " " + value)
	return err
}

// BestHash is the hash of the node's best block.
func (n *nodeProc) BestHash() (string, error) { return n.command("best-hash") }

// Stop closes the child's stdin, which makes it close the node and exit.
func (n *nodeProc) Stop() {
	if n == nil {
		return
	}
	_ = n.in.Close()
	n.proc.waitOrKill(5 * time.Second)
}
