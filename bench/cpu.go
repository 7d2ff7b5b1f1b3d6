package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// CPU time comes from /proc in clock ticks, which Linux exposes at 100 per
// second for user space (USER_HZ) whatever the kernel's own HZ.
const ticksPerSecond = 100

// procTicks is the user+system CPU time of a whole process (all threads).
func procTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, may hold spaces and parentheses: fields are
	// counted from the last ')'. utime and stime are fields 14 and 15.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return sumInts(f[11], f[12])
}

// machineBusyTicks is the CPU time all CPUs spent running processes, plus
// time stolen by the hypervisor: time the benchmark could not use. Interrupt
// and softirq time is left out: here it is mostly the kernel moving the
// bench's own loopback traffic, which no process is charged for.
func machineBusyTicks() (int64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat: %.60q", line)
	}
	var busy int64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		switch i {
		case 0, 1, 2, 7: // user, nice, system, steal
			busy += n
		}
	}
	return busy, nil
}

func sumInts(ss ...string) (int64, error) {
	var sum int64
	for _, s := range ss {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

// cpuSnapshot is the CPU time of the bench's processes and of the machine
// at one instant.
type cpuSnapshot struct {
	ok      bool
	machine int64
	procs   map[int]int64 // by pid
}

func takeCPU(pids []int) cpuSnapshot {
	s := cpuSnapshot{procs: make(map[int]int64, len(pids))}
	var err error
	if s.machine, err = machineBusyTicks(); err != nil {
		return s
	}
	for _, pid := range pids {
		t, err := procTicks(pid)
		if err != nil {
			return s
		}
		s.procs[pid] = t
	}
	s.ok = true
	return s
}

// used is the CPU seconds pid spent between two snapshots.
func used(a, b cpuSnapshot, pid int) float64 {
	return float64(b.procs[pid]-a.procs[pid]) / ticksPerSecond
}

// others is the CPU seconds spent between two snapshots by processes that
// are not the bench's own: other work sharing the machine.
func others(a, b cpuSnapshot) float64 {
	mine := int64(0)
	for pid, t := range b.procs {
		mine += t - a.procs[pid]
	}
	return float64(b.machine-a.machine-mine) / ticksPerSecond
}
