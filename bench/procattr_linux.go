package main

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the child in its own process group (terminal signals go
// to the bench only) and has the kernel kill it if the bench dies without
// cleaning up, e.g. on SIGKILL.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
