package jobs

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/elara-gateway/elara/cacher/cachertest"
	"github.com/elara-gateway/elara/limits"
)

// applyCounter counts the applies that counted records.
type applyCounter struct {
	prometheus.Counter
	applies, records atomic.Int64
}

func (c *applyCounter) Add(v float64) { c.applies.Add(1); c.records.Add(int64(v)) }

// TestRedisJobLingerAppliesManyWritesAtOnce: a gateway writes a small
// batch every 10 ms; the job, lingering after each short read, applies
// the entries of many writes at once (Redis's cost is per apply) and
// counts every call once.
func TestRedisJobLingerAppliesManyWritesAtOnce(t *testing.T) {
	rd := cachertest.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: rd.Addr})
	defer client.Close()
	days := limits.NewDays(time.UTC)
	keys := NewRedisKeys("test:")
	store := &RedisStore{Client: client, Keys: keys}
	w := &RedisWriter{Client: client, Keys: keys, MaxLen: DefaultStreamMaxLen}
	recs := gatewayRecords(1000, time.Now().Add(-time.Minute))
	w.Write(recs[:10]) // the stream exists before the job reads it
	counted := &applyCounter{}
	const linger = 200 * time.Millisecond
	job := StartRedisJob(store, Aggregator{Days: days}, JobOptions{Consumer: "c", Linger: linger, Counted: counted})
	start := time.Now()
	writes := 1
	for i := 10; i < len(recs); i += 10 {
		time.Sleep(10 * time.Millisecond)
		w.Write(recs[i : i+10])
		writes++
	}
	deadline := time.Now().Add(15 * time.Second)
	for counted.records.Load() < int64(len(recs)) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	job.Stop()
	if got := counted.records.Load(); got != int64(len(recs)) {
		t.Fatalf("counted %d calls, want %d", got, len(recs))
	}
	checkAgainst(t, store, recs, days)
	// At most one apply per linger, plus the first read's and the last.
	if got, most := counted.applies.Load(), int64(elapsed/linger)+2; got > most {
		t.Errorf("%d writes in %v were %d applies, want at most %d", writes, elapsed.Round(time.Millisecond), got, most)
	}
}
