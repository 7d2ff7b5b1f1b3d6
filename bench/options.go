package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// options are the command-line settings of one run.
type options struct {
	clients  int
	duration time.Duration
	warmup   time.Duration
	timeout  time.Duration
	cases    []string
	targets  []string
	caddyBin string
	// caddyExplicit is set when the binary was named by flag or
	// environment: a missing one is then an error, not a reason to build.
	caddyExplicit bool
	profileDir    string
	serveNode     bool
	// rounds repeats the request/response cases, setups taking turns.
	rounds int

	// Fan-out cases: how many subscribers per case, how many blocks the
	// node makes and how often.
	fanout   []int
	blocks   int
	interval time.Duration
}

const (
	defaultCaddyBin = "./caddy"
	caddyBinEnv     = "ELARA_CADDY_BIN"
)

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&o.clients, "c", 32, "concurrent clients per case")
	fs.DurationVar(&o.duration, "d", 5*time.Second, "measured duration per case")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each measurement (not recorded)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout of one request")
	quick := fs.Bool("quick", false, "smoke test: -d 1s -warmup 250ms unless given")
	cases := fs.String("cases", strings.Join(caseGroups(), ","), "case groups to run")
	targets := fs.String("targets", strings.Join(targetNames(), ","), "setups to measure")
	fs.StringVar(&o.caddyBin, "caddy", "", "Caddy binary with the Elara plugin (default $"+caddyBinEnv+", else "+defaultCaddyBin+", else built with go build)")
	fs.StringVar(&o.profileDir, "profile", "", "directory for CPU profiles of each Caddy case (enables Caddy's admin API on a free port)")
	fanout := fs.String("fanout", "1000,10000", "fan-out case sizes: WebSocket subscribers per case (-quick: 1000)")
	fs.IntVar(&o.blocks, "blocks", 30, "fan-out: blocks the node makes while clients are subscribed")
	fs.DurationVar(&o.interval, "interval", 200*time.Millisecond, "fan-out: time between blocks")
	fs.IntVar(&o.rounds, "rounds", 1, "run the request/response cases this many times, setups of one call taking turns; the report adds medians against each setup's baseline")
	fs.BoolVar(&o.serveNode, "serve-node", false, "internal: run the fake node and answer control commands on stdin")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fs.SetOutput(os.Stderr)
			fs.PrintDefaults()
			os.Exit(0)
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		if !set["d"] {
			o.duration = time.Second
		}
		if !set["warmup"] {
			o.warmup = 250 * time.Millisecond
		}
		if !set["fanout"] {
			*fanout = "1000"
		}
	}
	var err error
	if o.fanout, err = parseSizes(*fanout); err != nil {
		return o, fmt.Errorf("-fanout: %w", err)
	}
	o.cases = splitList(*cases)
	o.targets = splitList(*targets)
	switch {
	case o.caddyBin != "":
		o.caddyExplicit = true
	case os.Getenv(caddyBinEnv) != "":
		o.caddyBin, o.caddyExplicit = os.Getenv(caddyBinEnv), true
	default:
		o.caddyBin = defaultCaddyBin
	}
	if o.clients < 1 || o.duration <= 0 || o.warmup < 0 || o.timeout <= 0 {
		return o, fmt.Errorf("-c, -d and -timeout must be positive, -warmup not negative")
	}
	if o.rounds < 1 {
		return o, fmt.Errorf("-rounds must be at least 1")
	}
	if o.blocks < 1 || o.interval <= 0 {
		return o, fmt.Errorf("-blocks and -interval must be positive")
	}
	return o, nil
}

// parseSizes reads a comma-separated list of positive counts.
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad size %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
