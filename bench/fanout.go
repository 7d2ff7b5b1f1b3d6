package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// headsMethod is the subscription the fan-out cases share.
const headsMethod = "chain_subscribeNewHeads"

// followMethod is what the chainHead fan-out cases open.
const followMethod = "chainHead_v1_follow"

// FanoutCase is N WebSocket clients subscribed to new heads through one
// setup while the node makes blocks; with Follow, N chainHead_v1_follow
// clients while the node makes and finalizes blocks.
type FanoutCase struct {
	Clients int
	Target  string // a name from fanoutTargets
	Follow  bool
}

func (f FanoutCase) Name() string {
	if f.Follow {
		return fmt.Sprintf("fanout-follow-%d-%s", f.Clients, f.Target)
	}
	return fmt.Sprintf("fanout-%d-%s", f.Clients, f.Target)
}

// method is the subscription the case's clients open.
func (f FanoutCase) method() string {
	if f.Follow {
		return followMethod
	}
	return headsMethod
}

// fanoutSpec is how the node makes blocks in every fan-out case.
type fanoutSpec struct {
	blocks   int
	interval time.Duration
	timeout  time.Duration // connecting one client; waiting for the last block
}

// FanoutResult is one measured fan-out case.
type FanoutResult struct {
	Case FanoutCase
	fanoutStats
	// Subscriptions to new heads open on the node: before the clients
	// connect (the gateway's own: elara's health monitor) and with them.
	subsBefore, subsWith int64
	connectTime          time.Duration // connecting and subscribing every client
	connectErrors        int
	badMessages          int
	// every is the actual mean time between blocks: the node answers
	// new-block only once it has queued every notification, so with many
	// subscribers of its own it cannot keep to -interval.
	every time.Duration
	// ackP50 is the median time the node took to answer new-block, which
	// returns once it has queued the notification for every subscriber.
	ackP50 time.Duration
	// RSS of the target process before the clients connect and with them
	// all connected after the last block (0: unknown or no process).
	rssBefore, rssWith int64
	// CPU seconds per block over the blocks (NaN if unknown) and the CPUs
	// busy with other work meanwhile.
	proxyCPU, nodeCPU, clientCPU, otherCPU float64
	err                                    error
}

func (r FanoutResult) rssPerConn() float64 {
	if r.rssBefore == 0 || r.rssWith == 0 || r.Case.Clients == 0 {
		return math.NaN()
	}
	return float64(r.rssWith-r.rssBefore) / float64(r.Case.Clients)
}

// settleTime lets a gateway finish what it does on connect (buffers,
// goroutines) before it is measured.
const settleTime = 500 * time.Millisecond

// runFanout runs one fan-out case on a node and a target of its own, so
// that the node's subscription count is this gateway's alone and the
// target's memory starts from an idle process.
func runFanout(ctx context.Context, fc FanoutCase, o options, dir string, resolve func(context.Context) (string, error), rep *report) FanoutResult {
	res := FanoutResult{Case: fc, subsBefore: -1, subsWith: -1,
		proxyCPU: math.NaN(), nodeCPU: math.NaN(), clientCPU: math.NaN(), otherCPU: math.NaN()}
	fmt.Fprintf(progress, "bench: %s: starting node and %s\n", fc.Name(), fc.Target)
	node, err := startNode()
	if err != nil {
		res.err = err
		return res
	}
	defer node.Stop()
	t := newTarget(fc.Target)
	env := &Env{
		Node:    node,
		Dir:     dir,
		Profile: o.profileDir != "",
		caddy:   resolve,
		pids:    []int{os.Getpid(), node.pid()},
	}
	if err := t.Start(ctx, env); err != nil {
		res.err = fmt.Errorf("starting %s: %w", t.Name(), err)
		return res
	}
	defer t.Stop()
	env.pids = append(env.pids, targetPIDs(t)...)
	noteCaddyVersion(ctx, t, env, rep)
	gw, hasPID := t.(pider)

	res.subsBefore = settledSubs(ctx, node, fc.method())
	if hasPID {
		res.rssBefore, _ = readRSS(gw.pid())
	}

	base := time.Now()
	subs, failed, firstErr := connectSubscribers(ctx, t.URL(WS), clientDeflate(t), fc.Follow, fc.Clients, base, o.timeout, o.blocks+4)
	res.connectTime = time.Since(base)
	res.connectErrors = failed
	if firstErr != nil {
		fmt.Fprintf(progress, "bench: %s: %d clients failed to subscribe; first: %v\n", fc.Name(), failed, firstErr)
		res.err = firstErr
	}
	defer func() {
		for _, s := range subs {
			s.close()
		}
		for _, s := range subs {
			<-s.done
		}
	}()
	if len(subs) == 0 || !sleepCtx(ctx, settleTime) {
		return res
	}
	res.subsWith, _ = node.Subs(fc.method())
	if hasPID {
		if rss, err := readRSS(gw.pid()); err == nil && res.rssBefore > 0 {
			fmt.Fprintf(progress, "bench: %s: RSS %.1f → %.1f MiB once subscribed (%.1f KiB per client)\n", fc.Name(),
				float64(res.rssBefore)/(1<<20), float64(rss)/(1<<20), float64(rss-res.rssBefore)/float64(fc.Clients)/1024)
		}
	}

	// The blocks: each is timed from just before the bench asks the node
	// for it, on the bench's monotonic clock, which also times arrivals.
	first := takeCPU(env.pids)
	var prof sync.WaitGroup
	defer prof.Wait()
	if p, ok := t.(profiler); ok && o.profileDir != "" {
		// A CPU profile of the gateway over the blocks.
		seconds := max(1, int(math.Ceil((time.Duration(o.blocks) * o.interval).Seconds())))
		if url := p.profileURL(seconds); url != "" {
			prof.Go(func() {
				if err := captureProfile(ctx, url, o.profileDir, fc.Name()); err != nil {
					fmt.Fprintf(progress, "bench: %s: profile: %v\n", fc.Name(), err)
				}
			})
		}
	}
	sent := make(map[uint64]time.Duration, o.blocks)
	numOf := make(map[string]uint64, o.blocks) // chainHead events name blocks by hash
	acks := make([]time.Duration, 0, o.blocks)
	var (
		newest    uint64
		firstSent time.Duration
	)
	start := time.Now()
	for i := range o.blocks {
		if !sleepUntil(ctx, start.Add(time.Duration(i)*o.interval)) {
			return res
		}
		t0 := time.Since(base)
		var num uint64
		var err error
		if fc.Follow {
			var hash string
			num, hash, err = node.NewBlockFinalized()
			numOf[hash] = num
		} else {
			num, err = node.NewBlock()
		}
		ack := time.Since(base) - t0
		if err != nil {
			res.err = err
			return res
		}
		sent[num], newest = t0, num
		acks = append(acks, ack)
		if i == 0 {
			firstSent = t0
		} else {
			res.every = (t0 - firstSent) / time.Duration(i)
		}
	}
	// Wait for every client to have the last block, or for the timeout.
	deadline := time.Now().Add(o.timeout)
	want := newest
	if fc.Follow {
		want = uint64(o.blocks) // followers count newBlock events
	}
	for !allHave(subs, want) && time.Now().Before(deadline) {
		if !sleepCtx(ctx, 5*time.Millisecond) {
			return res
		}
	}
	window := time.Since(start)
	end := takeCPU(env.pids)
	if hasPID {
		res.rssWith, _ = readRSS(gw.pid())
		if a, ok := t.(adminer); ok && o.profileDir != "" {
			saveHeapProfile(ctx, a.adminURL(), o.profileDir, fc)
		}
	}
	if first.ok && end.ok {
		n := float64(o.blocks)
		if hasPID {
			res.proxyCPU = used(first, end, gw.pid()) / n
		}
		res.nodeCPU = used(first, end, node.pid()) / n
		res.clientCPU = used(first, end, os.Getpid()) / n
		res.otherCPU = others(first, end) / window.Seconds()
	}

	for _, s := range subs {
		s.close()
	}
	recs := make([][]reception, 0, len(subs))
	for _, s := range subs {
		<-s.done
		for i, hash := range s.hashes {
			s.recs[i].num = numOf[hash]
		}
		recs = append(recs, s.recs)
		res.badMessages += s.bad
		if s.bad > 0 && res.err == nil {
			res.err = fmt.Errorf("unexpected message: %s", s.badMsg)
		}
	}
	subs = nil // closed already
	res.fanoutStats = aggregateFanout(sent, recs)
	// Clients that never connected lost every block too.
	res.expected += failed * o.blocks
	res.lost += failed * o.blocks
	slices.Sort(acks)
	res.ackP50 = percentile(acks, 50)
	return res
}

// settledSubs is the node's count of head subscriptions once it has not
// changed for half a second (at most 5 s): a gateway opens its own
// subscriptions in the background after it starts.
func settledSubs(ctx context.Context, node *nodeProc, method string) int64 {
	last, err := node.Subs(method)
	if err != nil {
		return -1
	}
	stable := time.Now()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if !sleepCtx(ctx, 100*time.Millisecond) {
			break
		}
		n, err := node.Subs(method)
		if err != nil {
			return -1
		}
		if n != last {
			last, stable = n, time.Now()
		} else if time.Since(stable) >= 500*time.Millisecond {
			break
		}
	}
	return last
}

func allHave(subs []*subscriber, num uint64) bool {
	for _, s := range subs {
		if s.newest.Load() < num {
			return false
		}
	}
	return true
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	return sleepUntil(ctx, time.Now().Add(d))
}

// saveHeapProfile saves Caddy's heap profile (after a GC) with every
// client connected, and logs its goroutine count: where the memory per
// connection goes.
func saveHeapProfile(ctx context.Context, base, dir string, fc FanoutCase) {
	if base == "" {
		return
	}
	if err := captureProfile(ctx, base+"/debug/pprof/heap?gc=1", dir, fc.Name()+".heap"); err != nil {
		fmt.Fprintf(progress, "bench: %s: heap profile: %v\n", fc.Name(), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	line, _, _ := strings.Cut(string(head), "\n")
	if n, ok := strings.CutPrefix(line, "goroutine profile: total "); ok {
		if g, err := strconv.Atoi(n); err == nil {
			fmt.Fprintf(progress, "bench: %s: %d goroutines in Caddy (%.2f per client); heap profile in %s\n",
				fc.Name(), g, float64(g)/float64(fc.Clients), filepath.Join(dir, fc.Name()+".heap.pprof"))
		}
	}
}

func logFanout(r FanoutResult) {
	target := r.Case.Target
	if r.Case.Follow {
		target = "follow " + target
	}
	fmt.Fprintf(progress, "bench: %-6d %-14s subs %d→%d  block every %s  last p50 %-9s p99 %-9s  client p50 %-9s p99 %-9s  lost %d dup %d  RSS/conn %s  connect %s\n",
		r.Case.Clients, target, r.subsBefore, r.subsWith, fmtLatency(r.every),
		fmtLatency(percentile(r.last, 50)), fmtLatency(percentile(r.last, 99)),
		fmtLatency(percentile(r.perClient, 50)), fmtLatency(percentile(r.perClient, 99)),
		r.lost, r.dup, fmtBytes(r.rssPerConn()), fmtSeconds(r.connectTime))
	if r.err != nil {
		fmt.Fprintf(progress, "bench:   first error: %v\n", r.err)
	}
}
