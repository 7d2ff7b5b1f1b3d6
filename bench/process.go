package main

import (
	"os/exec"
	"syscall"
	"time"
)

// process is a child process the bench started and must stop: Caddy or
// the fake node. It is only ever stopped by its own PID.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // Wait's result, valid after done
}

// startProcess starts cmd in its own process group, so that a Ctrl-C in the
// terminal reaches only the bench, which then stops its children in order.
func startProcess(cmd *exec.Cmd) (*process, error) {
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process is gone.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process to exit with SIGTERM and kills it if it is still
// there after grace. It returns once the process is reaped.
func (p *process) stop(grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitOrKill(grace)
}

// waitOrKill waits up to grace for the process to exit, then kills it.
func (p *process) waitOrKill(grace time.Duration) {
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
