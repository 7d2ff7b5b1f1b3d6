package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// With -rounds N the request/response cases run N times, the setups of
// one call taking turns (A B, then B A, ...), so that a setup never
// enjoys a quiet spell of the shared machine the other misses; the
// comparison then takes, per round, each setup's figures against its
// baseline's in the same round, and reports the median of those ratios.

// baselines maps a setup to the one it is compared with: the same setup
// without projects, or without statistics.
var baselines = map[string]string{
	"elara-memory":        "elara-nostats",
	"elara-redis":         "elara-redis-nostats",
	"elara-project":       "elara-memory",
	"elara-project-redis": "elara-redis",
}

// roundOrder is the order of cases in a round: consecutive cases of the
// same call (section, transport, workload) are the setups of one
// comparison; every other round runs them in reverse.
func roundOrder(cases []Case, round int) []Case {
	out := slices.Clone(cases)
	if round%2 == 0 {
		return out
	}
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && sameCall(out[i], out[j]) {
			j++
		}
		slices.Reverse(out[i:j])
		i = j
	}
	return out
}

func sameCall(a, b Case) bool {
	return a.Section == b.Section && a.Transport == b.Transport && a.Workload.Name() == b.Workload.Name()
}

// gatewayCPU is a result's CPU per request of the gateway: Caddy and its
// Redis, which with projects also keeps the limits.
func gatewayCPU(r Result) float64 {
	cpu := r.proxyCPU
	if !math.IsNaN(r.helperCPU) {
		cpu += r.helperCPU
	}
	return cpu
}

// comparison is one setup against its baseline on one call, over rounds.
type comparison struct {
	transport        Transport
	call, setup, vs  string
	rounds           int
	rate, baseRate   float64 // medians of req/s
	cpu, baseCPU     float64 // medians of gateway CPU/req
	rateRatio        float64 // median over rounds of rate/baseRate
	cpuRatio         float64 // median over rounds of cpu/baseCPU
	minRate, maxRate float64 // range of the per-round rate ratios
}

// compare pairs each setup's result of a round with its baseline's.
func compare(results []Result) []comparison {
	type key struct {
		t          Transport
		call, name string
	}
	byRound := map[key]map[int]Result{}
	var order []key
	for _, r := range results {
		k := key{r.Case.Transport, r.Case.Workload.Method(), r.Case.Target.Name()}
		if byRound[k] == nil {
			byRound[k] = map[int]Result{}
			order = append(order, k)
		}
		byRound[k][r.round] = r
	}
	var out []comparison
	for _, k := range order {
		base, ok := baselines[k.name]
		if !ok {
			continue
		}
		bk := key{k.t, k.call, base}
		if byRound[bk] == nil {
			continue
		}
		c := comparison{transport: k.t, call: k.call, setup: k.name, vs: base}
		var rates, baseRates, cpus, baseCPUs, rr, cr []float64
		for round, r := range byRound[k] {
			b, ok := byRound[bk][round]
			if !ok || r.count == 0 || b.count == 0 {
				continue
			}
			rates, baseRates = append(rates, r.rate), append(baseRates, b.rate)
			rr = append(rr, r.rate/b.rate)
			if pc, bc := gatewayCPU(r), gatewayCPU(b); !math.IsNaN(pc) && !math.IsNaN(bc) && bc > 0 {
				cpus, baseCPUs = append(cpus, pc), append(baseCPUs, bc)
				cr = append(cr, pc/bc)
			}
		}
		if len(rr) == 0 {
			continue
		}
		c.rounds = len(rr)
		c.rate, c.baseRate, c.rateRatio = median(rates), median(baseRates), median(rr)
		c.cpu, c.baseCPU, c.cpuRatio = median(cpus), median(baseCPUs), median(cr)
		c.minRate, c.maxRate = slices.Min(rr), slices.Max(rr)
		out = append(out, c)
	}
	return out
}

// median of xs (NaN for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// fmtChange shows a ratio as a signed percentage, e.g. "-3.1%".
func fmtChange(ratio float64) string {
	if math.IsNaN(ratio) {
		return "?"
	}
	return fmt.Sprintf("%+.1f%%", (ratio-1)*100)
}

// comparisonTable shows each comparison: medians over the rounds and the
// median of the per-round ratios, which is what the targets are about.
func comparisonTable(cs []comparison) table {
	t := table{cols: []column{
		{name: "transport"}, {name: "call"}, {name: "setup"}, {name: "vs"},
		{name: "rounds", right: true},
		{name: "req/s", right: true}, {name: "vs req/s", right: true},
		{name: "throughput change (median, range)", right: true},
		{name: "gateway CPU/req", right: true}, {name: "vs CPU/req", right: true},
		{name: "CPU/req change (median)", right: true},
	}}
	for _, c := range cs {
		t.add(string(c.transport), c.call, c.setup, c.vs, fmt.Sprint(c.rounds),
			fmtRate(c.rate), fmtRate(c.baseRate),
			fmtChange(c.rateRatio)+" ("+strings.TrimPrefix(fmtChange(c.minRate), "")+" … "+fmtChange(c.maxRate)+")",
			fmtCPU(c.cpu), fmtCPU(c.baseCPU), fmtChange(c.cpuRatio))
	}
	return t
}

// comparisonCaption says what the comparison table shows.
func comparisonCaption(rounds int) string {
	return fmt.Sprintf("**Setups vs their baselines** (projects vs none, statistics vs off), medians over %d rounds (setups of one call take turns; each round's figures against its baseline's of the same round). Gateway CPU/req is Caddy's plus its Redis's:", rounds)
}
