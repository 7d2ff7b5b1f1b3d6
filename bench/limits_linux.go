package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// wantNofile is the open-file limit the fan-out cases ask for: 10,000
// clients behind reverse_proxy take 20,000 descriptors in Caddy.
const wantNofile = 1 << 17

// raiseFileLimit raises RLIMIT_NOFILE of the bench, which its children
// (the node, Caddy, Redis) inherit, and returns the soft limit in force.
// Without privilege only the soft limit can rise, up to the hard one.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	want := uint64(wantNofile)
	if data, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64); err == nil {
			want = min(want, n)
		}
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	// Setrlimit on RLIMIT_NOFILE also makes os/exec stop restoring the
	// limit the bench started with in its children.
	err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: max(want, lim.Max)})
	if err != nil {
		// No CAP_SYS_RESOURCE (a container may drop it): the hard limit
		// is as far as it goes.
		lim.Cur = lim.Max
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err2 != nil {
			return 0, err2
		}
		return lim.Cur, fmt.Errorf("staying at the hard limit %d: %w", lim.Max, err)
	}
	return want, nil
}
