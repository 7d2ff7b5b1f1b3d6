package jobs

import (
	"testing"
	"time"

	"github.com/elara-gateway/elara/limits"
)

// BenchmarkAggregate is the embedded job's aggregation rate: records
// through the recorder's sink into the aggregates, flushed to bolt every
// 10,000 records (the README quotes records/s).
func BenchmarkAggregate(b *testing.B) {
	clock := time.Now()
	st, err := OpenBolt(b.TempDir(), Retention{}, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	e := NewEmbedded(st, EmbeddedOptions{Days: limits.NewDays(time.UTC), FlushInterval: time.Hour, Now: func() time.Time { return clock }})
	defer e.Close()
	recs := testRecords(1000, clock)
	b.ResetTimer()
	start := time.Now()
	n := 0
	for b.Loop() {
		e.Write(recs)
		n += len(recs)
		if n%10000 == 0 {
			e.Flush()
		}
	}
	e.Flush()
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkRecord is the cost of recording on a call's goroutine.
func BenchmarkRecord(b *testing.B) {
	r := NewRecorder(discard{}, RecorderOptions{Buffer: 1 << 16})
	r.Start()
	defer r.Close()
	rec := Record{Time: time.Now(), Chain: "polkadot", Project: Public, Method: "system_chain", Transport: "http", Outcome: OutcomeOK}
	b.ReportAllocs()
	for b.Loop() {
		r.Record(rec)
	}
}

type discard struct{}

func (discard) Write([]Record) {}
