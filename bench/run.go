package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// progress goes to stderr so that stdout is only the report.
var progress io.Writer = os.Stderr

// run raises the open-file limit, runs the request/response cases (node
// and every selected target started once, stopped after the last case),
// then the fan-out cases (each with a node and a target of its own) and
// writes the report, also after an interrupt (with the cases done so
// far). Every child process is stopped before it returns.
func run(ctx context.Context, o options, out io.Writer) error {
	cases, fan, err := selectCases(o.cases, o.targets, o.fanout)
	if err != nil {
		return err
	}
	rep := report{
		started:  time.Now(),
		command:  commandLine(os.Args),
		cpuModel: cpuModel(),
		load:     loadAverage(),
		spec:     loadSpec{clients: o.clients, warmup: o.warmup, duration: o.duration},
		fanSpec:  fanoutSpec{blocks: o.blocks, interval: o.interval, timeout: o.timeout},
	}
	if len(fan) > 0 {
		// Children inherit it: Caddy holds two descriptors per client
		// behind reverse_proxy, the node one per connection.
		if rep.nofile, err = raiseFileLimit(); err != nil {
			fmt.Fprintf(progress, "bench: raising the open-file limit: %v\n", err)
		}
	}
	dir, err := os.MkdirTemp("", "elara-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}
	resolve := caddyResolver(o, dir, progress)

	if len(cases) > 0 {
		if err := runRequestCases(ctx, o, cases, dir, resolve, &rep); err != nil {
			return err
		}
	}
	for _, fc := range fan {
		if ctx.Err() != nil {
			break
		}
		res := runFanout(ctx, fc, o, dir, resolve, &rep)
		if ctx.Err() != nil {
			break
		}
		rep.fanout = append(rep.fanout, res)
		logFanout(res)
	}
	if len(rep.results) > 0 || len(rep.fanout) > 0 {
		if err := rep.write(out); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return nil
}

// runRequestCases starts the node and the targets of cases, runs the cases
// and stops everything again.
func runRequestCases(ctx context.Context, o options, cases []Case, dir string, resolve func(context.Context) (string, error), rep *report) error {
	node, err := startNode()
	if err != nil {
		return err
	}
	defer node.Stop()
	env := &Env{
		Node:    node,
		Dir:     dir,
		Profile: o.profileDir != "",
		caddy:   resolve,
		pids:    []int{os.Getpid(), node.pid()},
	}
	for _, c := range cases {
		w := unwrap(c.Workload)
		if slices.Contains(env.Workloads, w) {
			continue
		}
		if r, ok := w.(resolver); ok {
			if err := r.resolve(ctx, env); err != nil {
				return err
			}
		}
		env.Workloads = append(env.Workloads, w)
	}

	var started []Target
	defer func() {
		for _, t := range slices.Backward(started) {
			_ = t.Stop()
		}
	}()
	for _, t := range usedTargets(cases) {
		fmt.Fprintf(progress, "bench: starting %s\n", t.Name())
		if err := t.Start(ctx, env); err != nil {
			return fmt.Errorf("starting %s: %w", t.Name(), err)
		}
		started = append(started, t)
		env.pids = append(env.pids, targetPIDs(t)...)
		noteCaddyVersion(ctx, t, env, rep)
	}

	if o.rounds > 1 {
		rep.rounds = o.rounds
	}
	for round := range o.rounds {
		for _, c := range roundOrder(cases, round) {
			res := runCase(ctx, c, env, o)
			if ctx.Err() != nil {
				return nil // an interrupted case would be a misleading row
			}
			if o.rounds > 1 {
				res.round = round + 1
			}
			rep.results = append(rep.results, res)
			logResult(res)
		}
	}
	return nil
}

// targetPIDs are the processes of a target (Caddy, its Redis).
func targetPIDs(t Target) []int {
	var pids []int
	if p, ok := t.(pider); ok {
		pids = append(pids, p.pid())
	}
	if h, ok := t.(helper); ok {
		pids = append(pids, h.helperPID())
	}
	return pids
}

// noteCaddyVersion puts the version of the Caddy binary in the report.
func noteCaddyVersion(ctx context.Context, t Target, env *Env, rep *report) {
	if _, ok := t.(pider); ok && rep.caddy == "" {
		bin, _ := env.caddy(ctx)
		rep.caddy = caddyVersion(ctx, bin)
	}
}

// usedTargets lists the targets of the cases, each once, in order.
func usedTargets(cases []Case) []Target {
	var out []Target
	for _, c := range cases {
		if !slices.Contains(out, c.Target) {
			out = append(out, c.Target)
		}
	}
	return out
}

// mark is what is sampled at each edge of the measurement window.
type mark struct {
	calls    int64
	callsErr error
	cpu      cpuSnapshot
}

func takeMark(env *Env, method string) mark {
	m := mark{cpu: takeCPU(env.pids)}
	m.calls, m.callsErr = env.Node.Calls(method)
	return m
}

// runCase measures one case. At both edges of the window it samples the
// node's call counter and the CPU time of every process; with -profile it
// also records a CPU profile of the target over the window.
func runCase(ctx context.Context, c Case, env *Env, o options) Result {
	res := Result{Case: c, nodeCalls: math.NaN(), proxyCPU: math.NaN(), helperCPU: math.NaN(), nodeCPU: math.NaN(), clientCPU: math.NaN(), otherCPU: math.NaN()}
	d, err := newDriver(c.Transport, c.URL(), o.clients, o.timeout, clientDeflate(c.Target))
	if err != nil {
		res.err = err
		return res
	}
	defer d.close()

	var (
		side       sync.WaitGroup
		first, end mark
		measured   atomic.Int32
	)
	onWindow := func(start, stop time.Time) {
		side.Go(func() {
			if sleepUntil(ctx, start) {
				first = takeMark(env, c.Workload.Method())
				measured.Add(1)
			}
		})
		side.Go(func() {
			if sleepUntil(ctx, stop) {
				end = takeMark(env, c.Workload.Method())
				measured.Add(1)
			}
		})
		if p, ok := c.Target.(profiler); ok && o.profileDir != "" {
			seconds := max(1, int(o.duration/time.Second))
			if url := p.profileURL(seconds); url != "" {
				side.Go(func() {
					if !sleepUntil(ctx, start) {
						return
					}
					if err := captureProfile(ctx, url, o.profileDir, c.Name()); err != nil {
						fmt.Fprintf(progress, "bench: %s: profile: %v\n", c.Name(), err)
					}
				})
			}
		}
	}
	spec := loadSpec{clients: o.clients, warmup: o.warmup, duration: o.duration}
	lr, err := runLoad(ctx, d, c.Workload, spec, onWindow)
	side.Wait()
	res.summary = summarize(lr.samples, lr.errors, lr.window)
	res.err = err
	if err == nil {
		res.err = lr.firstErr
	}
	if measured.Load() == 2 && res.count > 0 {
		n := float64(res.count)
		if first.callsErr == nil && end.callsErr == nil {
			res.nodeCalls = float64(end.calls-first.calls) / n
		}
		if first.cpu.ok && end.cpu.ok {
			if p, ok := c.Target.(pider); ok {
				res.proxyCPU = used(first.cpu, end.cpu, p.pid()) / n
			}
			if h, ok := c.Target.(helper); ok {
				res.helperCPU = used(first.cpu, end.cpu, h.helperPID()) / n
			}
			res.nodeCPU = used(first.cpu, end.cpu, env.Node.pid()) / n
			res.clientCPU = used(first.cpu, end.cpu, os.Getpid()) / n
			res.otherCPU = others(first.cpu, end.cpu) / o.duration.Seconds()
		}
	}
	return res
}

func logResult(r Result) {
	fmt.Fprintf(progress, "bench: %-4s %-14s %-16s %8s req/s  p50 %-9s p99 %-9s node calls/req %s  errors %d\n",
		r.Case.Transport, r.Case.Target.Name(), r.Case.Workload.Name(), fmtRate(r.rate), fmtLatency(r.p50), fmtLatency(r.p99), fmtRatio(r.nodeCalls), r.errors)
	if r.err != nil {
		fmt.Fprintf(progress, "bench:   first error: %v\n", r.err)
	}
}
