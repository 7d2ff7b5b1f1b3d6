package limits

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix starts every key the limits keep in Redis.
const DefaultRedisPrefix = "elara:"

// RedisCounters keeps daily totals in Redis: one hash per day, scope and
// id (fields r and b, added with HINCRBY) that expires a day after its
// day ends. The id is the key's hash tag, so one project's or owner's
// keys share a Cluster slot; a flush is one pipeline, which go-redis
// splits by slot on a Cluster.
type RedisCounters struct {
	client redis.UniversalClient
	prefix string
}

// NewRedisCounters uses client, which the caller owns; prefix "" means
// DefaultRedisPrefix.
func NewRedisCounters(client redis.UniversalClient, prefix string) *RedisCounters {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	return &RedisCounters{client: client, prefix: prefix}
}

func (r *RedisCounters) key(d Delta) string {
	return r.prefix + "usage:{" + d.Scope + ":" + d.ID + "}:" + d.Day
}

// Add implements CounterBackend.
func (r *RedisCounters) Add(ctx context.Context, deltas []Delta) ([]Usage, error) {
	reqs := make([]*redis.IntCmd, len(deltas))
	bytes := make([]*redis.IntCmd, len(deltas))
	reads := make([]*redis.SliceCmd, len(deltas))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, d := range deltas {
			k := r.key(d)
			if d.Usage == (Usage{}) {
				reads[i] = p.HMGet(ctx, k, "r", "b") // a read creates no key
				continue
			}
			reqs[i] = p.HIncrBy(ctx, k, "r", d.Usage.Requests)
			bytes[i] = p.HIncrBy(ctx, k, "b", d.Usage.Bytes)
			p.ExpireAt(ctx, k, d.ResetAt.Add(24*time.Hour))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("daily counters in Redis: %w", err)
	}
	out := make([]Usage, len(deltas))
	for i := range deltas {
		if reads[i] != nil {
			v := reads[i].Val()
			out[i] = Usage{toInt(v, 0), toInt(v, 1)}
			continue
		}
		out[i] = Usage{reqs[i].Val(), bytes[i].Val()}
	}
	return out, nil
}

// Close does nothing: the client belongs to the caller.
func (r *RedisCounters) Close() error { return nil }

func toInt(v []any, i int) int64 {
	if i >= len(v) {
		return 0
	}
	s, _ := v[i].(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
