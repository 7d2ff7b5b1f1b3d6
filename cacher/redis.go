package cacher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Defaults of the Redis store.
const (
	DefaultRedisPrefix      = "elara:"
	DefaultRedisTimeout     = 100 * time.Millisecond
	DefaultRedisRetryAfter  = 2 * time.Second
	DefaultRedisMaxItemSize = 16 << 20
)

// RedisOptions tune a RedisStore.
type RedisOptions struct {
	// Prefix starts every key. Default "elara:".
	Prefix string
	// Timeout bounds each Redis call; a slow Redis is a down Redis.
	Timeout time.Duration
	// RetryAfter is how long a failed Redis is left alone before one
	// call probes it again.
	RetryAfter time.Duration
	// MaxItemSize is the largest value stored.
	MaxItemSize int64
	Clock       Clock
	Logger      *zap.Logger
	Metrics     *Metrics
}

// RedisStore is a Store in Redis, shared by every gateway using the same
// Redis and prefix. Any client works: a single server, Sentinel or Cluster
// (redis.UniversalClient). Failures never reach callers as anything but a
// miss; the first one of an outage is logged and opens a breaker, so a down
// Redis costs one timeout per RetryAfter, not one per request. Only a probe
// sent after RetryAfter ends an outage (logged once too): a call sent
// before the outage that succeeds late proves nothing.
type RedisStore struct {
	client redis.UniversalClient
	opts   RedisOptions
	br     breaker
	log    *zap.Logger
}

var redisLoggerOnce sync.Once

// NewRedisStore wraps client, which the caller owns: the elara app shares
// one client between the cache, projects and limits, so Close leaves it open.
func NewRedisStore(client redis.UniversalClient, opts RedisOptions) *RedisStore {
	if opts.Prefix == "" {
		opts.Prefix = DefaultRedisPrefix
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultRedisTimeout
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRedisRetryAfter
	}
	if opts.MaxItemSize <= 0 {
		opts.MaxItemSize = DefaultRedisMaxItemSize
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	// go-redis prints pool errors to stderr on its own; the store already
	// reports outages once, so its chatter is dropped.
	redisLoggerOnce.Do(func() { redis.SetLogger(quietRedisLogger{}) })
	return &RedisStore{client: client, opts: opts, br: breaker{clock: opts.Clock, backoff: opts.RetryAfter}, log: opts.Logger}
}

// Get returns the value under key, ErrMiss, or ErrStoreUnavailable.
func (s *RedisStore) Get(ctx context.Context, key string) ([]byte, error) {
	t, allowed := s.br.allow()
	if !allowed {
		return nil, ErrStoreUnavailable
	}
	rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	val, err := s.client.Get(rctx, s.opts.Prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		s.ok(t)
		return nil, ErrMiss
	}
	if err != nil {
		s.failed(ctx, t, err)
		return nil, fmt.Errorf("redis get: %w", err)
	}
	s.ok(t)
	return val, nil
}

// Set stores value with its TTL (DefaultImmutableTTL when none is given:
// nothing in a shared Redis may live forever).
func (s *RedisStore) Set(ctx context.Context, key string, value []byte, opts SetOptions) error {
	if int64(len(value)) > s.opts.MaxItemSize {
		return nil
	}
	t, allowed := s.br.allow()
	if !allowed {
		return ErrStoreUnavailable
	}
	ttl := opts.TTL
	if ttl <= 0 {
		ttl = DefaultImmutableTTL
	}
	rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if err := s.client.Set(rctx, s.opts.Prefix+key, value, ttl).Err(); err != nil {
		s.failed(ctx, t, err)
		return fmt.Errorf("redis set: %w", err)
	}
	s.ok(t)
	return nil
}

// ok records a working call; only the probe of an outage ends it.
func (s *RedisStore) ok(t ticket) {
	if s.br.success(t) {
		s.log.Info("redis cache available again")
	}
}

// failed counts a failure against Redis, unless the caller gave up first:
// a client hanging up says nothing about Redis.
func (s *RedisStore) failed(ctx context.Context, t ticket, err error) {
	if ctx.Err() != nil {
		s.br.abandon(t)
		return
	}
	s.opts.Metrics.redisError()
	if s.br.failure(t) {
		s.log.Warn("redis cache unavailable; answering from nodes until it is back",
			zap.Error(err), zap.Duration("retry_after", s.opts.RetryAfter))
	} else if ce := s.log.Check(zap.DebugLevel, "redis cache still unavailable"); ce != nil {
		ce.Write(zap.Error(err))
	}
}

// Client is the underlying Redis client.
func (s *RedisStore) Client() redis.UniversalClient { return s.client }

// Close releases the store; the client stays open (its owner closes it).
func (s *RedisStore) Close() error { return nil }

type quietRedisLogger struct{}

func (quietRedisLogger) Printf(context.Context, string, ...any) {}
