package app

import (
	"encoding/json"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
)

// redisPool holds the app's Redis clients across config reloads: the
// cache, projects and limits of every loaded config that names the same
// Redis share one client (one connection pool), closed when the last
// config using it is cleaned up.
var redisPool = caddy.NewUsagePool()

type destructibleRedis struct{ redis.UniversalClient }

func (d destructibleRedis) Destruct() error { return d.Close() }

// provisionRedis loads (or builds) the shared client of the app's redis
// option.
func (a *App) provisionRedis() error {
	if a.Redis == nil {
		return nil
	}
	cfg := a.Redis.replaced(caddy.NewReplacer())
	key, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	val, _, err := redisPool.LoadOrNew(string(key), func() (caddy.Destructor, error) {
		c, err := cfg.client()
		if err != nil {
			return nil, err
		}
		return destructibleRedis{c}, nil
	})
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	a.redisKey = string(key)
	a.redis = val.(destructibleRedis).UniversalClient
	return nil
}

// cleanupRedis releases this config's hold on the client.
func (a *App) cleanupRedis() {
	if a.redisKey != "" {
		_, _ = redisPool.Delete(a.redisKey)
		a.redisKey, a.redis = "", nil
	}
}

// RedisClient is the app's Redis client, shared by the cache, projects
// and limits; nil without the redis option. Its owner is the app: do not
// close it.
func (a *App) RedisClient() redis.UniversalClient { return a.redis }
