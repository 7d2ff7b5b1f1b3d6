package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Result is one measured case.
type Result struct {
	Case Case
	summary
	// nodeCalls is how many requests reached the node per successful client
	// request during the window (NaN if unknown): 1 for a pass-through
	// call, near 0 for a call a cache answers. It is approximate by up to
	// the number of clients, the requests in flight at the window edges.
	nodeCalls float64
	// CPU seconds per successful request of the Caddy process (NaN for
	// targets without one), the node and the load generator, and the CPUs
	// busy with other work during the window (NaN where /proc is missing).
	// CPU per request is what a setup costs, and is much less disturbed by
	// a busy machine than req/s.
	proxyCPU, nodeCPU, clientCPU float64
	// helperCPU is the same for a target's second process (Redis).
	helperCPU float64
	otherCPU  float64
	err       error
	// round is the result's round with -rounds (0 without).
	round int
}

// report is the output of a run: one header line and the results table.
type report struct {
	started  time.Time
	command  string
	caddy    string // Caddy version, "" if no Caddy target ran
	spec     loadSpec
	results  []Result
	fanSpec  fanoutSpec
	fanout   []FanoutResult
	nofile   uint64 // open-file limit raised for fan-out cases (0: unknown)
	cpuModel string
	rounds   int // -rounds, when above 1
	// load is the 1-minute load average when the run started: other work
	// on the machine skews every number, and this shows it.
	load string
}

func (r report) header() string {
	parts := []string{
		r.started.UTC().Format("2006-01-02 15:04 UTC"),
		runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		fmt.Sprintf("%d CPUs", runtime.NumCPU()),
	}
	if r.cpuModel != "" {
		parts[2] += " (" + r.cpuModel + ")"
	}
	if r.load != "" {
		parts = append(parts, "load "+r.load)
	}
	if r.caddy != "" {
		parts = append(parts, "Caddy "+r.caddy)
	}
	if len(r.results) > 0 || len(r.fanout) == 0 {
		parts = append(parts, r.loadLine())
	}
	parts = append(parts, "`"+r.command+"`")
	if ws := workloads(r.results); len(ws) == 1 {
		parts = append(parts, "call "+ws[0])
	}
	return strings.Join(parts, " · ")
}

func (r report) loadLine() string {
	return fmt.Sprintf("%d clients, %s per case after %s warm-up", r.spec.clients, r.spec.duration, r.spec.warmup)
}

// workloads lists the distinct workload methods, in order.
func workloads(results []Result) []string {
	var out []string
	seen := map[string]bool{}
	for _, res := range results {
		if m := res.Case.Workload.Method(); !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

// table is every request/response result in one table.
func (r report) table() table { return resultsTable(r.results) }

func resultsTable(results []Result) table {
	multi := len(workloads(results)) > 1
	helpers := slices.ContainsFunc(results, func(res Result) bool { return !math.IsNaN(res.helperCPU) })
	t := table{cols: []column{{name: "transport"}, {name: "setup"}}}
	if multi {
		t.cols = append(t.cols, column{name: "call"})
	}
	t.cols = append(t.cols,
		column{name: "req/s", right: true},
		column{name: "p50", right: true},
		column{name: "p99", right: true},
		column{name: "node calls/req", right: true},
		column{name: "errors", right: true},
		column{name: "caddy CPU/req", right: true})
	if helpers {
		t.cols = append(t.cols, column{name: "redis CPU/req", right: true})
	}
	t.cols = append(t.cols,
		column{name: "node CPU/req", right: true},
		column{name: "client CPU/req", right: true},
		column{name: "other load", right: true})
	for _, res := range results {
		name := res.Case.Target.Name()
		if res.round > 0 {
			name += fmt.Sprintf(" (round %d)", res.round)
		}
		row := []string{string(res.Case.Transport), name}
		if multi {
			row = append(row, res.Case.Workload.Method())
		}
		if res.err != nil && res.count == 0 {
			row = append(row, "failed", "", "", "", fmt.Sprint(res.errors), "")
			if helpers {
				row = append(row, "")
			}
			row = append(row, "", "", "")
		} else {
			row = append(row, fmtRate(res.rate), fmtLatency(res.p50), fmtLatency(res.p99),
				fmtRatio(res.nodeCalls), fmt.Sprint(res.errors), fmtCPU(res.proxyCPU))
			if helpers {
				row = append(row, fmtCPU(res.helperCPU))
			}
			row = append(row, fmtCPU(res.nodeCPU), fmtCPU(res.clientCPU), fmtLoad(res.otherCPU))
		}
		t.add(row...)
	}
	return t
}

// sections splits the results by report section, in order.
func sections(results []Result) (names []string, bySection map[string][]Result) {
	bySection = map[string][]Result{}
	for _, res := range results {
		if _, ok := bySection[res.Case.Section]; !ok {
			names = append(names, res.Case.Section)
		}
		bySection[res.Case.Section] = append(bySection[res.Case.Section], res)
	}
	return names, bySection
}

func sectionCaption(name string, results []Result) string {
	ws := workloads(results)
	switch name {
	case sectionPassThrough:
		return "**Pass-through call** (`" + strings.Join(ws, "`, `") + "`, never cached):"
	case sectionCached:
		return "**Cacheable calls** (`" + strings.Join(ws, "`, `") + "`; each reply checked against the node's own):"
	}
	return "**" + name + "**:"
}

func (r report) fanoutCaption() string {
	s := fmt.Sprintf("**Subscription fan-out**: N WebSocket clients subscribed to `%s` (\"chainHead follow\" rows: `%s`, blocks also finalized); %d blocks, one every %s",
		headsMethod, followMethod, r.fanSpec.blocks, r.fanSpec.interval)
	if r.nofile > 0 {
		s += fmt.Sprintf("; open-file limit %d", r.nofile)
	}
	return s + ":"
}

func fanoutTable(results []FanoutResult) table {
	t := table{cols: []column{
		{name: "clients", right: true},
		{name: "setup"},
		{name: "node subs before → with (Δ)", right: true},
		{name: "subscribe all", right: true},
		{name: "block every", right: true},
		{name: "last client p50", right: true},
		{name: "last client p99", right: true},
		{name: "last client 1st → final block", right: true},
		{name: "per client p50", right: true},
		{name: "per client p99", right: true},
		{name: "lost/dup/reord", right: true},
		{name: "errors", right: true},
		{name: "node ack p50", right: true},
		{name: "RSS before → with", right: true},
		{name: "RSS/conn", right: true},
		{name: "caddy CPU/block", right: true},
		{name: "node CPU/block", right: true},
		{name: "client CPU/block", right: true},
		{name: "other load", right: true},
	}}
	for _, r := range results {
		target := r.Case.Target
		if r.Case.Follow {
			target = "chainHead follow · " + target
		}
		row := []string{strconv.Itoa(r.Case.Clients), target}
		if len(r.perClient) == 0 {
			row = append(row, fmtSubs(r.subsBefore, r.subsWith), fmtSeconds(r.connectTime), "failed")
			t.add(row...)
			continue
		}
		row = append(row,
			fmtSubs(r.subsBefore, r.subsWith),
			fmtSeconds(r.connectTime),
			fmtLatency(r.every),
			fmtLatency(percentile(r.last, 50)), fmtLatency(percentile(r.last, 99)),
			fmtLatency(r.firstLast)+" → "+fmtLatency(r.finalLast),
			fmtLatency(percentile(r.perClient, 50)), fmtLatency(percentile(r.perClient, 99)),
			fmt.Sprintf("%d/%d/%d", r.lost, r.dup, r.reordered),
			fmt.Sprint(r.connectErrors+r.badMessages),
			fmtLatency(r.ackP50),
			fmtRSSRange(r.rssBefore, r.rssWith),
			fmtBytes(r.rssPerConn()),
			fmtSecondsPer(r.proxyCPU), fmtSecondsPer(r.nodeCPU), fmtSecondsPer(r.clientCPU),
			fmtLoad(r.otherCPU))
		t.add(row...)
	}
	return t
}

func (r report) write(w io.Writer) error {
	var b strings.Builder
	b.WriteString(r.header() + "\n")
	names, by := sections(r.results)
	for _, name := range names {
		if len(names) > 1 || len(r.fanout) > 0 {
			b.WriteString("\n" + sectionCaption(name, by[name]) + "\n")
		}
		b.WriteString("\n" + resultsTable(by[name]).markdown())
	}
	if cs := compare(r.results); r.rounds > 1 && len(cs) > 0 {
		b.WriteString("\n" + comparisonCaption(r.rounds) + "\n\n" + comparisonTable(cs).markdown())
	}
	if len(r.fanout) > 0 {
		b.WriteString("\n" + r.fanoutCaption() + "\n\n" + fanoutTable(r.fanout).markdown())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtRate(perSec float64) string { return fmt.Sprintf("%.0f", perSec) }

func fmtRatio(x float64) string {
	if math.IsNaN(x) {
		return "?"
	}
	return fmt.Sprintf("%.2f", x)
}

// fmtCPU shows CPU seconds per request in microseconds.
func fmtCPU(sec float64) string {
	if math.IsNaN(sec) {
		return "–"
	}
	return fmt.Sprintf("%.0f µs", sec*1e6)
}

// fmtLoad shows CPUs' worth of other work, e.g. "0.25 CPU".
func fmtLoad(cpus float64) string {
	if math.IsNaN(cpus) {
		return "?"
	}
	return fmt.Sprintf("%.2f CPU", max(cpus, 0))
}

// fmtSecondsPer shows CPU seconds (per block) as a duration.
func fmtSecondsPer(sec float64) string {
	if math.IsNaN(sec) {
		return "–"
	}
	return fmtLatency(time.Duration(sec * 1e9))
}

// fmtSeconds shows a longer duration in seconds.
func fmtSeconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// fmtBytes shows a size per connection in KiB.
func fmtBytes(b float64) string {
	if math.IsNaN(b) {
		return "–"
	}
	return fmt.Sprintf("%.1f KiB", b/1024)
}

// fmtRSSRange shows two resident sizes in MiB.
func fmtRSSRange(before, with int64) string {
	if before == 0 || with == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f → %.0f MiB", float64(before)/(1<<20), float64(with)/(1<<20))
}

// fmtSubs shows subscription counts before and with clients.
func fmtSubs(before, with int64) string {
	if before < 0 || with < 0 {
		return "?"
	}
	return fmt.Sprintf("%d → %d (%d)", before, with, with-before)
}

// fmtLatency keeps three significant digits or so in a readable unit.
func fmtLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
}

// commandLine is how the bench was invoked; under `go run` the binary is a
// temporary file, so the go run form is shown instead.
func commandLine(args []string) string {
	name := args[0]
	if strings.Contains(name, "go-build") {
		name = "go run ./bench"
	}
	out := []string{name}
	for _, a := range args[1:] {
		if strings.ContainsAny(a, " \t'\"$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

// cpuModel is the CPU's model name on Linux, "" elsewhere.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

// loadAverage is the 1-minute load average on Linux, "" elsewhere.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) > 0 {
		return f[0]
	}
	return ""
}
