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
	t.Cleanup(func() { _ = s.Close() })
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
