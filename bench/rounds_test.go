package main

import (
	"math"
	"testing"
)

// Setups of one call take turns: every other round runs them reversed,
// and different calls never mix.
func TestRoundOrder(t *testing.T) {
	cases, _, err := selectCases([]string{"http", "ws"}, []string{"elara-memory", "elara-project"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := func(cs []Case) (out []string) {
		for _, c := range cs {
			out = append(out, string(c.Transport)+" "+c.Target.Name())
		}
		return out
	}
	tests := []struct {
		round int
		want  []string
	}{
		{0, []string{"http elara-memory", "http elara-project", "ws elara-memory", "ws elara-project"}},
		{1, []string{"http elara-project", "http elara-memory", "ws elara-project", "ws elara-memory"}},
		{2, []string{"http elara-memory", "http elara-project", "ws elara-memory", "ws elara-project"}},
	}
	for _, tc := range tests {
		got := names(roundOrder(cases, tc.round))
		if len(got) != len(tc.want) {
			t.Fatalf("round %d: %v", tc.round, got)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("round %d: %v, want %v", tc.round, got, tc.want)
			}
		}
	}
}

// The comparison is the median of per-round ratios against the baseline
// of the same round: one noisy round does not move it.
func TestCompareMedianOfRounds(t *testing.T) {
	cases, _, err := selectCases([]string{"http"}, []string{"elara-memory", "elara-project"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base, proj := cases[0], cases[1]
	res := func(c Case, round int, rate, cpu float64) Result {
		r := Result{Case: c, round: round, proxyCPU: cpu, helperCPU: math.NaN()}
		r.rate, r.count = rate, 1000
		return r
	}
	results := []Result{
		res(base, 1, 1000, 100e-6), res(proj, 1, 980, 102e-6),
		res(proj, 2, 500, 200e-6), res(base, 2, 1000, 100e-6), // a noisy round
		res(base, 3, 800, 120e-6), res(proj, 3, 776, 123.6e-6),
	}
	cs := compare(results)
	if len(cs) != 1 {
		t.Fatalf("%d comparisons, want 1", len(cs))
	}
	c := cs[0]
	if c.setup != "elara-project" || c.vs != "elara-memory" || c.rounds != 3 {
		t.Fatalf("%+v", c)
	}
	if math.Abs(c.rateRatio-0.97) > 1e-9 || math.Abs(c.cpuRatio-1.03) > 1e-9 {
		t.Fatalf("rate ratio %v, cpu ratio %v; want 0.97 and 1.03", c.rateRatio, c.cpuRatio)
	}
	if got := fmtChange(c.rateRatio); got != "-3.0%" {
		t.Fatalf("fmtChange %q", got)
	}
}
