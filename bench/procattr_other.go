//go:build !linux

package main

import "os/exec"

// setProcAttr does nothing here: without Pdeathsig, children outlive a
// bench killed with SIGKILL; a normal exit or Ctrl-C still stops them.
func setProcAttr(*exec.Cmd) {}
