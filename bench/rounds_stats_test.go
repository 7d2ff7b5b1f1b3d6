package main

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// The statistics comparison covers the cached calls too: with the four
// statistics setups and the pass-through and cached cases, every call on
// every transport has a row for each store against its setup without
// statistics.
func TestCompareStatisticsCachedCalls(t *testing.T) {
	setups := []string{"elara-memory", "elara-nostats", "elara-redis", "elara-redis-nostats"}
	cases, _, err := selectCases([]string{"http", "ws", "cache-http", "cache-ws"}, setups, nil)
	if err != nil {
		t.Fatal(err)
	}
	var results []Result
	for round := 1; round <= 2; round++ {
		for _, c := range roundOrder(cases, round-1) {
			r := Result{Case: c, round: round, proxyCPU: 100e-6, helperCPU: math.NaN()}
			r.rate, r.count = 1000, 1000
			results = append(results, r)
		}
	}
	var got []string
	for _, c := range compare(results) {
		if c.rounds != 2 {
			t.Errorf("%s %s %s: %d rounds, want 2", c.transport, c.call, c.setup, c.rounds)
		}
		got = append(got, fmt.Sprintf("%s %s %s vs %s", c.transport, c.call, c.setup, c.vs))
	}
	for _, tr := range []string{"http", "ws"} {
		for _, call := range []string{"system_accountNextIndex", "state_getMetadata", "chain_getHeader", "state_getStorage"} {
			for _, pair := range [][2]string{{"elara-memory", "elara-nostats"}, {"elara-redis", "elara-redis-nostats"}} {
				want := fmt.Sprintf("%s %s %s vs %s", tr, call, pair[0], pair[1])
				if !slices.Contains(got, want) {
					t.Errorf("no comparison %q; got %q", want, got)
				}
			}
		}
	}
	if len(got) != 16 {
		t.Errorf("%d comparisons, want 16: %q", len(got), got)
	}
}
