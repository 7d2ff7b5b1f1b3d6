package jobs

import (
	"math"
	"strconv"
	"time"
)

// Latency histogram: fixed log-scale buckets, 4 per doubling, from
// 100µs to about 105s (bucket 0 holds everything up to 100µs, the last
// everything above). A percentile is read as the upper bound of the
// bucket holding it: at most 19% above the true value.
const (
	histBuckets = 82
	histBase    = 100 * time.Microsecond
	histPerOct  = 4
)

// histBounds are the buckets' upper bounds; the last is +Inf.
var histBounds = func() [histBuckets]time.Duration {
	var b [histBuckets]time.Duration
	for i := range histBuckets - 1 {
		b[i] = time.Duration(float64(histBase) * math.Pow(2, float64(i)/histPerOct))
	}
	b[histBuckets-1] = math.MaxInt64
	return b
}()

// histFields are the aggregate field names of the buckets.
var histFields = func() [histBuckets]string {
	var f [histBuckets]string
	for i := range f {
		f[i] = "l" + strconv.Itoa(i)
	}
	return f
}()

// histBucket is the bucket of latency d.
func histBucket(d time.Duration) int {
	if d <= histBase {
		return 0
	}
	i := int(math.Ceil(math.Log2(float64(d)/float64(histBase)) * histPerOct))
	// float rounding at a bound: keep the invariant bounds[i-1] < d <= bounds[i]
	for i > 0 && i < histBuckets && d <= histBounds[i-1] {
		i--
	}
	for i < histBuckets-1 && d > histBounds[i] {
		i++
	}
	return min(i, histBuckets-1)
}

// percentile is the upper bound, in milliseconds, of the bucket that
// holds quantile q of counts (0 with no calls). The open last bucket
// reports the bound below it.
func percentile(counts *[histBuckets]int64, q float64) float64 {
	var n int64
	for _, c := range counts {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen int64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			if i == histBuckets-1 {
				i--
			}
			return float64(histBounds[i]) / float64(time.Millisecond)
		}
	}
	return 0
}
