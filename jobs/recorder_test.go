package jobs

import (
	"sync"
	"sync/atomic"
	"testing"
)

type atomicSink struct{ n atomic.Int64 }

func (s *atomicSink) Write(recs []Record) { s.n.Add(int64(len(recs))) }

// TestRecorderCloseLosesNothingSilently: calls record while the recorder
// closes; every record either reached the sink or was counted as
// dropped.
func TestRecorderCloseLosesNothingSilently(t *testing.T) {
	for round := range 50 {
		s := &atomicSink{}
		r := NewRecorder(s, RecorderOptions{Buffer: 1 << 12})
		r.Start()
		var sent atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range 2000 {
					r.Record(Record{Kind: KindCall})
					sent.Add(1)
				}
			}()
		}
		close(start)
		r.Close()
		wg.Wait()
		if got := s.n.Load() + r.Dropped(); got != sent.Load() {
			t.Fatalf("round %d: %d sent, %d written + %d dropped: %d lost silently",
				round, sent.Load(), s.n.Load(), r.Dropped(), sent.Load()-got)
		}
	}
}
