package jobs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elara-gateway/elara/cacher/cachertest"
	"github.com/elara-gateway/elara/limits"
)

func testRecords(n int, at time.Time) []Record {
	recs := make([]Record, n)
	for i := range recs {
		r := call(at.Add(time.Duration(i)*time.Second), []string{"a", "b"}[i%2], []string{"public", "0123456789abcdef0123456789abcdef"}[i%3%2],
			[]string{"system_chain", "other"}[i%2], OutcomeOK, 0, time.Duration(i%50)*time.Millisecond, int64(i%7), int64(i%13), i%4 == 0)
		if i%9 == 0 {
			r.Outcome, r.Code = OutcomeError, -32601
		}
		recs[i] = r
	}
	return recs
}

// checkAgainst compares every hash of the reference delta (all records
// aggregated in memory, once) with the store.
func checkAgainst(t *testing.T, st Store, recs []Record, days limits.Days) {
	t.Helper()
	ref := NewDelta()
	agg := Aggregator{Days: days}
	for i := range recs {
		agg.Add(ref, &recs[i])
	}
	ref.Settle()
	for hk, fields := range ref.Incr {
		got, err := st.Hashes(context.Background(), []string{hk.Period}, hk.Hash)
		if err != nil {
			t.Fatal(err)
		}
		for f, n := range fields {
			if n != 0 && got[0][f] != n {
				t.Errorf("%s %s %s: %d, want %d", hk.Period, hk.Hash, f, got[0][f], n)
			}
		}
	}
}

// TestRedisJobTakesOverWithoutLossOrDoubleCount: a consumer that read a
// batch and died (never acknowledged it) loses nothing: another takes
// its entries over; and when the "dead" one comes back with its batch,
// the script refuses it (it no longer owns the entries): nothing counts
// twice.
func TestRedisJobTakesOverWithoutLossOrDoubleCount(t *testing.T) {
	rd := cachertest.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: rd.Addr})
	defer client.Close()
	ctx := context.Background()
	days := limits.NewDays(time.UTC)
	keys := NewRedisKeys("test:")
	at := time.Now().Add(-time.Hour)
	recs := testRecords(3000, at)
	w := &RedisWriter{Client: client, Keys: keys, MaxLen: DefaultStreamMaxLen}
	for i := 0; i < len(recs); i += 500 {
		w.Write(recs[i : i+500])
	}
	if err := client.XGroupCreateMkStream(ctx, keys.Stream(), Group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	// The dead consumer read 5 entries (of 256 and 244 records) and
	// stopped there.
	res, err := client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: Group, Consumer: "dead", Streams: []string{keys.Stream(), ">"}, Count: 5}).Result()
	if err != nil || len(res[0].Messages) != 5 {
		t.Fatalf("dead consumer's read: %v", err)
	}
	store := &RedisStore{Client: client, Keys: keys}
	job := StartRedisJob(store, Aggregator{Days: days}, JobOptions{Consumer: "alive", Batch: 3, ClaimIdle: 300 * time.Millisecond})
	defer job.Stop()
	reader := &StoreReader{Store: store, Days: days}
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := reader.Summary(ctx, Query{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Total.Calls == int64(len(recs)) {
			break
		}
		if s.Total.Calls > int64(len(recs)) || time.Now().After(deadline) {
			t.Fatalf("total calls %d, want %d", s.Total.Calls, len(recs))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The dead consumer's late apply of its batch is refused.
	d := NewDelta()
	late := Aggregator{Days: days}
	var ids []string
	for _, m := range res[0].Messages {
		ids = append(ids, m.ID)
		late.Add(d, &recs[0])
	}
	if err := store.applyAcked(ctx, d, "dead", ids); !errors.Is(err, errNotOwner) {
		t.Fatalf("late apply of a batch taken over: %v, want errNotOwner", err)
	}
	checkAgainst(t, store, recs, days)
	if p, _ := client.XPending(ctx, keys.Stream(), Group).Result(); p.Count != 0 {
		t.Errorf("%d entries still pending", p.Count)
	}
	ttl, _ := client.TTL(ctx, keys.hash(hourPeriod(days, at), "c|*|*")).Result()
	if ttl <= 0 || ttl > DefaultHourlyRetention+time.Hour {
		t.Errorf("hourly hash TTL %v, want its end + 48h", ttl)
	}
	if ttl, _ := client.TTL(ctx, keys.hash(periodAll, "c|*|*")).Result(); ttl != -1 {
		t.Errorf("all-time hash TTL %v, want none", ttl)
	}
}

// TestRedisJobClusterHashTag: every key is in one slot, so the job's
// script runs on a Redis Cluster.
func TestRedisJobClusterHashTag(t *testing.T) {
	nodes := cachertest.StartRedisCluster(t, 3)
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Addr)
	}
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer client.Close()
	days := limits.NewDays(time.UTC)
	keys := NewRedisKeys("elara:")
	recs := testRecords(200, time.Now().Add(-time.Minute))
	(&RedisWriter{Client: client, Keys: keys, MaxLen: DefaultStreamMaxLen}).Write(recs)
	store := &RedisStore{Client: client, Keys: keys}
	job := StartRedisJob(store, Aggregator{Days: days}, JobOptions{Consumer: "c1"})
	defer job.Stop()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := (&StoreReader{Store: store, Days: days}).Summary(context.Background(), Query{})
		if err == nil && s.Total.Calls == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster: %+v %v", s.Total, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkAgainst(t, store, recs, days)
}

// BenchmarkRedisJob is the Redis job's rate: records already in the
// stream, read, aggregated and applied with their XACK (one instance).
func BenchmarkRedisJob(b *testing.B) {
	rd := cachertest.StartRedis(b)
	client := redis.NewClient(&redis.Options{Addr: rd.Addr})
	defer client.Close()
	keys := NewRedisKeys("bench:")
	w := &RedisWriter{Client: client, Keys: keys, MaxLen: DefaultStreamMaxLen}
	recs := testRecords(1000, time.Now())
	const total = 50_000
	for range total / len(recs) {
		w.Write(recs)
	}
	store := &RedisStore{Client: client, Keys: keys}
	reader := &StoreReader{Store: store, Days: limits.NewDays(time.UTC)}
	b.ResetTimer()
	start := time.Now()
	job := StartRedisJob(store, Aggregator{Days: limits.NewDays(time.UTC)}, JobOptions{Consumer: "bench"})
	for {
		s, err := reader.Summary(context.Background(), Query{})
		if err != nil {
			b.Fatal(err)
		}
		if s.Total.Calls >= total {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	job.Stop()
	b.ReportMetric(total/took.Seconds(), "records/s")
}

// TestWireRoundTrip: a record read back from its stream line is the
// record written (the client address is never written).
func TestWireRoundTrip(t *testing.T) {
	at := time.Unix(1796550000, 123456789)
	for _, r := range []Record{
		{Time: at, Kind: KindCall, Chain: "polkadot", Project: Public, Method: "state_getStorage", Transport: "ws", Outcome: OutcomeError,
			Code: -32601, BytesIn: 12, BytesOut: 3400, Latency: 1234567, CacheHit: true, Node: "n1.example:443", Country: "DE"},
		{Time: at, Kind: KindNotify, Chain: "a", Project: "0123456789abcdef0123456789abcdef", Transport: "ws", BytesOut: 99, Count: 7},
		{Time: at, Kind: KindSubClose, Chain: "a", Project: Public, Count: 3},
	} {
		line := string(appendWire(nil, &r))
		got, ok := parseWire(line[:len(line)-1])
		got.Time = got.Time.In(r.Time.Location())
		if !ok || got != r {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
	for _, bad := range []string{"", "1\t2", "x\t0\ta\tp\tm\tt\to\t0\t0\t0\t0\t0\tn\tc\t0"} {
		if _, ok := parseWire(bad); ok {
			t.Errorf("parsed %q", bad)
		}
	}
}
