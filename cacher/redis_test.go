package cacher

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/elara-gateway/elara/cacher/cachertest"
	"github.com/elara-gateway/elara/internal/fakenode"
)

func newRedisStore(t *testing.T, r *cachertest.Redis, clock Clock, log *zap.Logger) *RedisStore {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, ContextTimeoutEnabled: true})
	s := NewRedisStore(client, RedisOptions{Prefix: "test:", Timeout: 500 * time.Millisecond, RetryAfter: time.Hour,
		MaxItemSize: 1000, Clock: clock, Logger: log})
	t.Cleanup(func() { _ = s.Close(); _ = client.Close() })
	return s
}

func TestRedisStore(t *testing.T) {
	r := cachertest.StartRedis(t)
	s := newRedisStore(t, r, nil, nil)
	ctx := context.Background()
	cases := []struct {
		name    string
		key     string
		value   string
		ttl     time.Duration
		stored  bool
		wantTTL time.Duration // upper bound of the key's TTL in Redis
	}{
		{"with ttl", "a", `"0x01"`, time.Minute, true, time.Minute},
		{"without ttl gets the default", "b", `{"x":1}`, 0, true, DefaultImmutableTTL},
		{"too large is not stored", "c", `"` + strings.Repeat("0", 2000) + `"`, time.Minute, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Set(ctx, tc.key, []byte(tc.value), SetOptions{TTL: tc.ttl}); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(ctx, tc.key)
			if !tc.stored {
				if !errors.Is(err, ErrMiss) {
					t.Fatalf("got %q, %v; want a miss", got, err)
				}
				return
			}
			if err != nil || string(got) != tc.value {
				t.Fatalf("got %q, %v", got, err)
			}
			line, err := r.Do("PTTL", "test:"+tc.key)
			if err != nil {
				t.Fatal(err)
			}
			ms, _ := strconv.ParseInt(strings.TrimPrefix(line, ":"), 10, 64)
			if ms <= 0 || time.Duration(ms)*time.Millisecond > tc.wantTTL {
				t.Fatalf("PTTL %s, want (0, %v]", line, tc.wantTTL)
			}
		})
	}
	if _, err := s.Get(ctx, "nothing"); !errors.Is(err, ErrMiss) {
		t.Fatalf("missing key: %v", err)
	}
}

func TestRedisOutageIsLoggedOnceAndRecovered(t *testing.T) {
	r := cachertest.StartRedis(t)
	clock := newFakeClock()
	core, logs := observer.New(zap.InfoLevel)
	s := newRedisStore(t, r, clock, zap.New(core))
	ctx := context.Background()
	if err := s.Set(ctx, "k", []byte("1"), SetOptions{TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if _, err := s.Get(ctx, "k"); err == nil || errors.Is(err, ErrMiss) {
		t.Fatalf("Redis down: got %v, want an error", err)
	}
	for range 10 {
		if _, err := s.Get(ctx, "k"); !errors.Is(err, ErrStoreUnavailable) {
			t.Fatalf("breaker open: got %v, want ErrStoreUnavailable", err)
		}
		_ = s.Set(ctx, "k", []byte("2"), SetOptions{})
	}
	if n := logs.FilterMessageSnippet("unavailable").Len(); n != 1 {
		t.Fatalf("%d outage logs, want 1", n)
	}
	r.Restart(t)
	clock.Advance(time.Hour)
	if _, err := s.Get(ctx, "k"); !errors.Is(err, ErrMiss) { // a fresh, empty Redis
		t.Fatalf("after restart: %v", err)
	}
	if n := logs.FilterMessageSnippet("available again").Len(); n != 1 {
		t.Fatalf("%d recovery logs, want 1", n)
	}
	if err := s.Set(ctx, "k", []byte("3"), SetOptions{TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "k"); err != nil || string(v) != "3" {
		t.Fatalf("Redis back: %q %v", v, err)
	}
}

func TestCacheAnswersThroughRedisOutage(t *testing.T) {
	r := cachertest.StartRedis(t)
	clock := newFakeClock()
	s := newRedisStore(t, r, clock, nil)
	s.opts.MaxItemSize = DefaultRedisMaxItemSize
	env := startCache(t, func(o *Options) { o.Store = s; o.Clock = clock })
	want := `"` + fakenode.Metadata(fakenode.DefaultSpecVersion) + `"`
	check := func(phase string, reachesNode bool) {
		t.Helper()
		before := env.node.Calls("state_getMetadata")
		if got := env.call(t, "state_getMetadata", ""); string(got) != want {
			t.Fatalf("%s: wrong metadata", phase)
		}
		if reached := env.node.Calls("state_getMetadata") > before; reached != reachesNode {
			t.Fatalf("%s: reached the node = %v", phase, reached)
		}
	}
	check("cached in Redis", false)
	r.Stop()
	check("Redis down", true)
	check("Redis still down", true)
	r.Restart(t)
	clock.Advance(time.Hour) // past retry_after
	check("Redis back, empty", true)
	check("Redis back, filled", false)
	if r.DBSize(t) == 0 {
		t.Fatal("nothing stored in Redis")
	}
}

// gateHook holds GETs of the key "slow" until release is closed, and
// fails GETs of the key "broken" as a Redis timeout would.
type gateHook struct {
	entered, release chan struct{}
}

func (gateHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (gateHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h gateHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); len(args) == 2 && args[0] == "get" {
			switch args[1] {
			case "test:slow":
				close(h.entered)
				<-h.release
			case "test:broken":
				return errors.New("i/o timeout")
			}
		}
		return next(ctx, cmd)
	}
}

// A partly slow Redis: a call sent before an outage that succeeds during
// it must neither end the outage nor log a recovery, or every slow call
// would log the outage again.
func TestRedisLateSuccessDoesNotEndAnOutage(t *testing.T) {
	r := cachertest.StartRedis(t)
	clock := newFakeClock()
	core, logs := observer.New(zap.InfoLevel)
	client := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, DialTimeout: 5 * time.Second, ContextTimeoutEnabled: true})
	hook := gateHook{entered: make(chan struct{}), release: make(chan struct{})}
	client.AddHook(hook)
	s := NewRedisStore(client, RedisOptions{Prefix: "test:", Timeout: 10 * time.Second, RetryAfter: time.Second, Clock: clock, Logger: zap.New(core)})
	t.Cleanup(func() { _ = s.Close(); _ = client.Close() })
	ctx := context.Background()

	slow := make(chan error, 1)
	go func() {
		_, err := s.Get(ctx, "slow")
		slow <- err
	}()
	<-hook.entered
	if _, err := s.Get(ctx, "broken"); err == nil || errors.Is(err, ErrMiss) || errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("failing call: %v, want the Redis error", err)
	}
	close(hook.release)
	if err := <-slow; !errors.Is(err, ErrMiss) {
		t.Fatalf("slow call: %v, want a miss from Redis", err)
	}
	logged := func(snippet string) int { return logs.FilterMessageSnippet(snippet).Len() }
	if n, m := logged("cache unavailable"), logged("available again"); n != 1 || m != 0 {
		t.Fatalf("after a late success: %d outage and %d recovery logs, want 1 and 0", n, m)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("a late success closed the breaker: got %v, want ErrStoreUnavailable", err)
	}
	clock.Advance(time.Second)
	if _, err := s.Get(ctx, "k"); !errors.Is(err, ErrMiss) {
		t.Fatalf("probe after retry_after: %v, want a miss", err)
	}
	if n, m := logged("cache unavailable"), logged("available again"); n != 1 || m != 1 {
		t.Fatalf("after the probe: %d outage and %d recovery logs, want 1 and 1", n, m)
	}
}
