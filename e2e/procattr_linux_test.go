package e2e

import "syscall"

// childProcAttr makes the kernel kill a child (Chopsticks, Caddy) when the
// test binary dies without cleaning up (e.g. on a -timeout panic).
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
