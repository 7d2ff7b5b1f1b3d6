package jobs

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elara-gateway/elara/cacher/cachertest"
	"github.com/elara-gateway/elara/limits"
)

// gatewayRecords are n records like a gateway under load makes: one
// chain, mostly public calls of a few methods, latencies of a few
// milliseconds, 1% errors, a second apart.
func gatewayRecords(n int, at time.Time) []Record {
	methods := []string{"system_accountNextIndex", "state_getStorage", "chain_getHeader", "state_getMetadata"}
	recs := make([]Record, n)
	for i := range recs {
		r := Record{Time: at.Add(time.Duration(i) * time.Millisecond), Kind: KindCall, Chain: "polkadot", Project: Public,
			Method: methods[i%len(methods)], Transport: "ws", Outcome: OutcomeOK, BytesIn: 120, BytesOut: int64(40 + i%200),
			Latency: time.Duration(500+i%2500) * time.Microsecond, CacheHit: i%3 == 0, Node: "node-1", Country: CountryLocal}
		if i%100 == 99 {
			r.Outcome, r.Code = OutcomeError, -32601
		}
		recs[i] = r
	}
	return recs
}

// BenchmarkRedisPipeline is what each record costs with Redis statistics
// in a gateway at 20,000 calls/s that runs the job too: the recorder hands
// the writer a batch every linger (20 ms: 400 records) or when it holds
// batchMax records (1024: every ~50 ms at that rate), and the job, with
// its default settings, keeps up. Reported per record: this process's CPU
// (writer and job) and Redis's own. The writes are paced, so the job reads
// what it would in a gateway; run it with -benchtime 2s or more.
func BenchmarkRedisPipeline(b *testing.B) {
	for _, tc := range []struct {
		name  string
		every time.Duration
		batch int
	}{
		{"linger=20ms", 20 * time.Millisecond, 400},
		{"batch=1000", 50 * time.Millisecond, 1000},
	} {
		b.Run(tc.name, func(b *testing.B) { benchRedisPipeline(b, tc.every, tc.batch) })
	}
}

func benchRedisPipeline(b *testing.B, every time.Duration, perBatch int) {
	rd := cachertest.StartRedis(b)
	client := redis.NewClient(&redis.Options{Addr: rd.Addr})
	defer client.Close()
	ctx := context.Background()
	keys := NewRedisKeys("bench:")
	days := limits.NewDays(time.UTC)
	w := &RedisWriter{Client: client, Keys: keys, MaxLen: DefaultStreamMaxLen}
	store := &RedisStore{Client: client, Keys: keys}
	reader := &StoreReader{Store: store, Days: days}
	recs := gatewayRecords(perBatch, time.Now())
	w.Write(recs) // scripts loaded, stream and group made
	job := StartRedisJob(store, Aggregator{Days: days}, JobOptions{Consumer: "bench"})
	defer job.Stop()
	total := int64(perBatch)
	wait := func() {
		for {
			s, err := reader.Summary(ctx, Query{})
			if err != nil {
				b.Fatal(err)
			}
			if s.Total.Calls >= total {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wait()
	_ = client.ConfigResetStat(ctx).Err()
	cpu0, rcpu0 := selfCPU(), redisCPU(b, client)
	n := 0
	tick := time.NewTicker(every)
	defer tick.Stop()
	b.ResetTimer()
	for b.Loop() {
		<-tick.C
		w.Write(recs)
		total += int64(perBatch)
		n += perBatch
	}
	wait()
	b.StopTimer()
	cpu, rcpu := selfCPU()-cpu0, redisCPU(b, client)-rcpu0
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "go-ns/record")
	b.ReportMetric(float64(rcpu.Nanoseconds())/float64(n), "redis-ns/record")
	b.ReportMetric(float64((cpu+rcpu).Nanoseconds())/float64(n), "ns/record")
	if testing.Verbose() {
		info, _ := client.Info(ctx, "commandstats").Result()
		b.Log(info)
	}
}

// selfCPU is this process's user and system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is the Redis server's user and system CPU time so far.
func redisCPU(b *testing.B, c *redis.Client) time.Duration {
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_user" || k == "used_cpu_sys" {
			f, _ := strconv.ParseFloat(v, 64)
			sum += f
		}
	}
	return time.Duration(sum * float64(time.Second))
}
