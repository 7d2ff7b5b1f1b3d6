package main

import (
	"math"
	"time"
)

// summary condenses the latencies of one case.
type summary struct {
	count  int
	errors int
	rate   float64 // successful requests per second
	p50    time.Duration
	p99    time.Duration
	max    time.Duration
}

// summarize takes sorted latencies measured over window.
func summarize(sorted []time.Duration, errors int, window time.Duration) summary {
	s := summary{count: len(sorted), errors: errors}
	if window > 0 {
		s.rate = float64(len(sorted)) / window.Seconds()
	}
	if len(sorted) > 0 {
		s.p50 = percentile(sorted, 50)
		s.p99 = percentile(sorted, 99)
		s.max = sorted[len(sorted)-1]
	}
	return s
}

// percentile is the nearest-rank p-th percentile of sorted samples: the
// smallest sample that at least p% of samples do not exceed. Unlike
// interpolating methods it is always a latency that was observed.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// p*n first, then /100: exact for integer p, where p/100*n is not
	// (0.99*100 is not 99 in floating point).
	rank := int(math.Ceil(p * float64(n) / 100))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}
