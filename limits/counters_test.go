package limits

import (
	"context"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/elara-gateway/elara/cacher/cachertest"
)

func openBolt(t *testing.T, path string) *bolt.DB { return openBoltB(t, path) }

func openBoltB(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func boltCounters(t *testing.T, db *bolt.DB, clk *fakeClock, loc *time.Location) *Counters {
	t.Helper()
	b, err := NewBoltCounters(db)
	if err != nil {
		t.Fatal(err)
	}
	c := NewCounters(b, CountersOptions{Days: NewDays(loc), Clock: clk.Now, FlushInterval: time.Hour})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestEnforcerDailyLimits(t *testing.T) {
	cases := []struct {
		name  string
		zone  string
		start string // the clock at the start, RFC 3339
		reset string // the expected reset, RFC 3339 UTC
	}{
		{"UTC", "UTC", "2026-12-06T22:00:00Z", "2026-12-07T00:00:00Z"},
		{"UTC+8 like the original", "Asia/Shanghai", "2026-12-06T15:00:00Z", "2026-12-06T16:00:00Z"},
		{"DST zone on its 25-hour day", "America/New_York", "2026-11-02T04:00:00Z", "2026-11-02T05:00:00Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start, _ := time.Parse(time.RFC3339, c.start)
			clk := newFakeClock(start)
			counters := boltCounters(t, openBolt(t, filepath.Join(t.TempDir(), "c.db")), clk, mustZone(t, c.zone))
			e := NewEnforcer(Local(NewRateLimiter(0, clk.Now)), counters)
			ctx := context.Background()
			s := Subject{Project: "p1", Owner: "acme", Limits: Limits{RequestsPerDay: 3, BytesPerDay: 1000}}
			for i := range 3 {
				if x, err := e.Admit(ctx, s); x != nil || err != nil {
					t.Fatalf("call %d refused: %v %v", i+1, x, err)
				}
			}
			x, _ := e.Admit(ctx, s)
			if x == nil || x.Limit != RequestsPerDay || x.Scope != ScopeProject || x.Value != 3 || x.Used != 3 {
				t.Fatalf("the 4th call: %+v", x)
			}
			if got := x.ResetAt.UTC().Format(time.RFC3339); got != c.reset || x.RetryAfter != x.ResetAt.Sub(clk.Now()) {
				t.Errorf("resets at %s after %s, want %s", got, x.RetryAfter, c.reset)
			}
			clk.Advance(x.RetryAfter - time.Nanosecond)
			if x, _ := e.Admit(ctx, s); x == nil {
				t.Fatal("allowed a nanosecond before the reset")
			}
			clk.Advance(time.Nanosecond)
			if x, _ := e.Admit(ctx, s); x != nil {
				t.Fatalf("still refused after the reset: %v", x)
			}
			// Response bytes count too.
			e.AddBytes(s, 1000)
			x, _ = e.Admit(ctx, s)
			if x == nil || x.Limit != BytesPerDay || x.Used != 1000 {
				t.Fatalf("over the bytes: %+v", x)
			}
		})
	}
}

func TestEnforcerScopes(t *testing.T) {
	clk := newFakeClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	counters := boltCounters(t, openBolt(t, filepath.Join(t.TempDir(), "c.db")), clk, nil)
	e := NewEnforcer(Local(NewRateLimiter(0, clk.Now)), counters)
	ctx := context.Background()
	a := Subject{Project: "a", Owner: "acme", Limits: Limits{RequestsPerDay: 10}, OwnerRequestsPerDay: 3}
	b := Subject{Project: "b", Owner: "acme", Limits: Limits{RequestsPerDay: 10}, OwnerRequestsPerDay: 3}
	other := Subject{Project: "c", Owner: "other", Limits: Limits{RequestsPerDay: 10}, OwnerRequestsPerDay: 3}
	steps := []struct {
		name  string
		s     Subject
		limit string // "" allowed
	}{
		{"a 1", a, ""}, {"b 1", b, ""}, {"a 2", a, ""},
		{"owner cap across projects", b, OwnerRequestsPerDay},
		{"another owner is apart", other, ""},
		{"public IP 1", Subject{IP: "192.0.2.1", Limits: Limits{RequestsPerDay: 1}}, ""},
		{"public IP 2", Subject{IP: "192.0.2.1", Limits: Limits{RequestsPerDay: 1}}, RequestsPerDay},
		{"another IP", Subject{IP: "192.0.2.2", Limits: Limits{RequestsPerDay: 1}}, ""},
		{"rate", Subject{Project: "r", Limits: Limits{RequestsPerSecond: 1}}, ""},
		{"rate exceeded", Subject{Project: "r", Limits: Limits{RequestsPerSecond: 1}}, RequestsPerSecond},
	}
	for _, st := range steps {
		x, err := e.Admit(ctx, st.s)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if x != nil {
			got = x.Limit
		}
		if got != st.limit {
			t.Errorf("%s: refused by %q, want %q (%v)", st.name, got, st.limit, x)
		}
	}
	// A refused call is not counted.
	if u := counters.Used(ScopeProject, "r"); u.Requests != 1 {
		t.Errorf("rate-refused calls were counted: %+v", u)
	}
	rep, err := e.Usage(ctx, a)
	if err != nil || rep.Project.Requests != 2 || rep.Owner == nil || rep.Owner.Requests != 3 ||
		!rep.ResetAt.Equal(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("usage %+v %v", rep, err)
	}
}

func TestBoltCountersSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	clk := newFakeClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	db := openBolt(t, path)
	b, _ := NewBoltCounters(db)
	// Two days ago, to be pruned.
	_, _ = b.Add(context.Background(), []Delta{{Day: "2026-12-04", Scope: ScopeProject, ID: "p", Usage: Usage{9, 9}}})
	c := NewCounters(b, CountersOptions{Clock: clk.Now, FlushInterval: time.Hour})
	c.Add(ScopeProject, "p", Usage{Requests: 5, Bytes: 500})
	c.Add(ScopeOwner, "o", Usage{Requests: 5})
	if err := c.Close(); err != nil { // flushes
		t.Fatal(err)
	}
	_ = db.Close()

	db = openBolt(t, path)
	defer db.Close()
	c2 := boltCounters(t, db, clk, nil)
	if u := c2.Used(ScopeProject, "p"); u != (Usage{5, 500}) {
		t.Errorf("after a restart: %+v", u)
	}
	if u := c2.Add(ScopeOwner, "o", Usage{Requests: 1}); u.Requests != 6 {
		t.Errorf("owner after a restart: %+v", u)
	}
	_ = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(usageBucket).Get(usageKey("2026-12-04", ScopeProject, "p")) != nil {
			t.Error("a day before yesterday was kept")
		}
		return nil
	})
	// The next day starts at zero.
	clk.Advance(12 * time.Hour)
	if u := c2.Used(ScopeProject, "p"); u != (Usage{}) {
		t.Errorf("the next day: %+v", u)
	}
}

func redisClient(t *testing.T, addr string) redis.UniversalClient { return redisClientB(t, addr) }

func redisClientB(t testing.TB, addr string) redis.UniversalClient {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Two gateways count into one Redis and each sees the sum after a flush.
func TestRedisCountersShared(t *testing.T) {
	r := cachertest.StartRedis(t)
	ctx := context.Background()
	a := NewCounters(NewRedisCounters(redisClient(t, r.Addr), ""), CountersOptions{FlushInterval: time.Hour})
	b := NewCounters(NewRedisCounters(redisClient(t, r.Addr), ""), CountersOptions{FlushInterval: time.Hour})
	defer a.Close()
	defer b.Close()
	a.Add(ScopeProject, "p", Usage{3, 30})
	b.Add(ScopeProject, "p", Usage{4, 40})
	for _, c := range []*Counters{a, b, a} {
		if err := c.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]*Counters{"a": a, "b": b} {
		if u := c.Used(ScopeProject, "p"); u != (Usage{7, 70}) {
			t.Errorf("%s sees %+v, want 7 requests, 70 bytes", name, u)
		}
	}
	if u, err := b.Fetch(ctx, ScopeProject, "p"); err != nil || u != (Usage{7, 70}) {
		t.Errorf("Fetch: %+v %v", u, err)
	}
	if n := r.DBSize(t); n != 1 {
		t.Errorf("%d keys, want 1 (a read must not create keys)", n)
	}
	ttl, _ := r.Do("TTL", "elara:usage:{project:p}:"+NewDays(nil).Key(time.Now()))
	if ttl == ":-1" || ttl == ":-2" {
		t.Errorf("the day key has no expiry: %s", ttl)
	}
}

// Counts made while Redis is down are added when it is back; one log
// line each way.
func TestRedisCountersOutage(t *testing.T) {
	r := cachertest.StartRedis(t)
	ctx := context.Background()
	core, logs := observer.New(zap.InfoLevel)
	c := NewCounters(NewRedisCounters(redisClient(t, r.Addr), ""), CountersOptions{
		FlushInterval: time.Hour, Timeout: 200 * time.Millisecond, Logger: zap.New(core)})
	defer c.Close()
	c.Add(ScopeProject, "p", Usage{Requests: 2})
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	for range 3 {
		c.Add(ScopeProject, "p", Usage{Requests: 1, Bytes: 10})
		if err := c.Flush(ctx); err == nil {
			t.Fatal("a flush worked with Redis down")
		}
	}
	if c.Healthy() {
		t.Error("healthy with Redis down")
	}
	if u := c.Used(ScopeProject, "p"); u != (Usage{5, 30}) {
		t.Errorf("during the outage: %+v", u)
	}
	r.Restart(t) // empty: only what was counted during the outage comes back with the catch-up
	c.Add(ScopeProject, "p", Usage{Requests: 1})
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := r.Do("HGET", "elara:usage:{project:p}:"+NewDays(nil).Key(time.Now()), "r")
	if got != "4" {
		t.Errorf("Redis holds %q requests after the catch-up, want 4 (3 during the outage, 1 after)", got)
	}
	if n := logs.FilterMessageSnippet("unavailable").Len(); n != 1 {
		t.Errorf("%d outage lines, want 1", n)
	}
	if n := logs.FilterMessageSnippet("available again").Len(); n != 1 {
		t.Errorf("%d recovery lines, want 1", n)
	}
}

// Close stops the flushing goroutine; nothing is left running.
func TestCountersCloseLeavesNoGoroutine(t *testing.T) {
	db := openBolt(t, filepath.Join(t.TempDir(), "c.db"))
	defer db.Close()
	before := runtime.NumGoroutine()
	for range 5 {
		b, _ := NewBoltCounters(db)
		c := NewCounters(b, CountersOptions{FlushInterval: time.Millisecond})
		c.Add(ScopeProject, "p", Usage{Requests: 1})
		_ = c.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, _ := NewBoltCounters(db)
	u, _ := b.Add(context.Background(), []Delta{{Day: NewDays(nil).Key(time.Now()), Scope: ScopeProject, ID: "p"}})
	if u[0].Requests != 5 {
		t.Errorf("%d requests flushed by Close, want 5", u[0].Requests)
	}
}

// On a Redis Cluster a flush touching keys in many slots, and the shared
// rate, work.
func TestRedisClusterLimits(t *testing.T) {
	nodes := cachertest.StartRedisCluster(t, 3)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{nodes[0].Addr, nodes[1].Addr, nodes[2].Addr}})
	defer client.Close()
	ctx := context.Background()
	c := NewCounters(NewRedisCounters(client, ""), CountersOptions{FlushInterval: time.Hour})
	defer c.Close()
	for i := range 20 {
		c.Add(ScopeProject, "p"+strconv.Itoa(i), Usage{Requests: int64(i), Bytes: 1})
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if u, err := c.Fetch(ctx, ScopeProject, "p"+strconv.Itoa(i)); err != nil || u.Requests != int64(i) {
			t.Fatalf("p%d: %+v %v", i, u, err)
		}
	}
	l := NewSharedRateLimiter(client, SharedRateOptions{})
	lim := Limits{RequestsPerSecond: 1, Burst: 1}
	if d := l.Allow(ctx, "x", lim); !d.Allowed {
		t.Fatalf("first call: %+v", d)
	}
	if d := l.Allow(ctx, "x", lim); d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > time.Second {
		t.Fatalf("second call: %+v", d)
	}
}

// Calls made together never pass a daily limit they reach together, and
// a call the rate refuses is not counted toward the day.
func TestEnforcerDailyLimitUnderConcurrency(t *testing.T) {
	cases := []struct {
		name string
		s    Subject
		want int64
	}{
		{"project's requests per day", Subject{Project: "p", Limits: Limits{RequestsPerDay: 3}}, 3},
		{"owner's cap", Subject{Project: "p", Owner: "acme", OwnerRequestsPerDay: 5}, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newFakeClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
			counters := boltCounters(t, openBolt(t, filepath.Join(t.TempDir(), "c.db")), clk, nil)
			e := NewEnforcer(Local(NewRateLimiter(0, clk.Now)), counters)
			var admitted atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if x, err := e.Admit(context.Background(), c.s); err == nil && x == nil {
						admitted.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			if n := admitted.Load(); n != c.want {
				t.Fatalf("64 calls at once admitted %d, want %d", n, c.want)
			}
		})
	}
	t.Run("a call the rate refuses is not counted", func(t *testing.T) {
		clk := newFakeClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
		counters := boltCounters(t, openBolt(t, filepath.Join(t.TempDir(), "c.db")), clk, nil)
		e := NewEnforcer(Local(NewRateLimiter(0, clk.Now)), counters)
		s := Subject{Project: "r", Limits: Limits{RequestsPerSecond: 1, Burst: 1, RequestsPerDay: 10}}
		for range 5 {
			_, _ = e.Admit(context.Background(), s)
		}
		if u := counters.Used(ScopeProject, "r"); u.Requests != 1 {
			t.Fatalf("5 calls, 4 refused by the rate: the day counts %d, want 1", u.Requests)
		}
	})
}
