package app

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestCacheCaddyfile(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  string // JSON of the app's redis and cache, or "error: ..." to match
	}{
		{"cache alone", `elara {
			cache
		}`, `{"cache":{}}`},
		{"memory with options", `elara {
			cache {
				max_size 128MiB
				pin finalized
				refresh 6s
				max_stale 10s
				immutable_ttl 1h
				pinned_ttl 30s
				constant_ttl 2h
				nocache system_health state_call
				method state_getMetadata {
					share 50%
					ttl 10m
				}
				method grandpa_roundState {
					ttl 2s
				}
			}
		}`, `{"cache":{"max_size":134217728,"pin":"finalized","refresh":6000000000,"max_stale":10000000000,"immutable_ttl":3600000000000,"pinned_ttl":30000000000,"constant_ttl":7200000000000,` +
			`"methods":{"grandpa_roundState":{"ttl":2000000000},"state_call":{"nocache":true},"state_getMetadata":{"ttl":600000000000,"share":50},"system_health":{"nocache":true}}}}`},
		{"redis", `elara {
			redis 10.0.0.1:6379 {
				address 10.0.0.2:6379
				master_name mymaster
				username u
				password p
				db 2
				timeout 50ms
				dial_timeout 2s
				pool_size 20
				tls
			}
			cache {
				store redis
				prefix elara-test:
				retry_after 5s
				max_item_size 8MiB
			}
		}`, `{"redis":{"addresses":["10.0.0.1:6379","10.0.0.2:6379"],"master_name":"mymaster","username":"u","password":"p","db":2,"timeout":50000000,"dial_timeout":2000000000,"pool_size":20,"tls":true},` +
			`"cache":{"store":"redis","prefix":"elara-test:","retry_after":5000000000,"max_item_size":8388608}}`},
		{"redis cluster from one seed", `elara {
			redis 10.0.0.1:7000 {
				cluster
			}
			cache {
				store redis
			}
		}`, `{"redis":{"addresses":["10.0.0.1:7000"],"cluster":true},"cache":{"store":"redis"}}`},
		{"cluster takes no argument", `elara {
			redis 10.0.0.1:7000 {
				cluster yes
			}
		}`, "error: wrong argument count"},
		{"cache off", `elara {
			cache off
		}`, `{"cache":{"disabled":true}}`},
		{"cache off takes no block", `elara {
			cache off {
				max_size 1MiB
			}
		}`, "error: takes no block"},
		{"cache takes only off", `elara {
			cache on
		}`, "error: no argument but 'off'"},
		{"unknown cache option", `elara {
			cache {
				colour blue
			}
		}`, "error: unrecognized cache option"},
		{"bad share", `elara {
			cache {
				method m {
					share 150%
				}
			}
		}`, "error: bad percentage"},
		{"nocache without methods", `elara {
			cache {
				nocache
			}
		}`, "error: wrong argument count"},
		{"unknown redis option", `elara {
			redis {
				sentinel yes
			}
		}`, "error: unrecognized redis option"},
		{"negative ttl", `elara {
			cache {
				method state_getStorage {
					ttl -1s
				}
			}
		}`, "error: ttl: duration '-1s' is negative, at Testfile:4"},
		{"zero refresh", `elara {
			cache {
				refresh 0s
			}
		}`, "error: refresh: duration '0s' must be more than zero, at Testfile:3"},
		{"zero max_size", `elara {
			cache {
				max_size 0
			}
		}`, "error: max_size: size '0' must be more than zero"},
		{"zero redis pool_size", `elara {
			redis {
				pool_size 0
			}
		}`, "error: pool_size: number '0' must be more than zero"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := new(App)
			err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error %v, want one mentioning %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(struct {
				R *RedisConfig `json:"redis,omitempty"`
				C *CacheConfig `json:"cache,omitempty"`
			}{a.Redis, a.Cache})
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestCacheValidate(t *testing.T) {
	redisOK := &RedisConfig{Addresses: []string{"127.0.0.1:6379"}}
	cases := []struct {
		name     string
		redis    *RedisConfig
		cache    *CacheConfig
		mentions string // "" = valid
	}{
		{"no cache", nil, nil, ""},
		{"defaults", nil, &CacheConfig{}, ""},
		{"off", nil, &CacheConfig{Disabled: true}, ""},
		{"off with options", nil, &CacheConfig{Disabled: true, MaxSize: 1 << 20}, "disabled takes no other option"},
		{"redis store", redisOK, &CacheConfig{Store: "redis"}, ""},
		{"redis store without redis", nil, &CacheConfig{Store: "redis"}, "needs the app's redis"},
		{"unknown store", nil, &CacheConfig{Store: "disk"}, "memory or redis"},
		{"bad pin", nil, &CacheConfig{Pin: "safe"}, "best or finalized"},
		{"tiny memory", nil, &CacheConfig{MaxSize: 1000}, "at least 1MiB"},
		{"negative ttl", nil, &CacheConfig{ImmutableTTL: -1}, "cannot be negative"},
		{"refresh too short", nil, &CacheConfig{Refresh: 1000}, "at least 10ms"},
		{"share over 100", nil, &CacheConfig{Methods: map[string]*MethodCacheConfig{"m": {Share: 120}}}, "percentage"},
		{"ttl on author_", nil, &CacheConfig{Methods: map[string]*MethodCacheConfig{"author_submitExtrinsic": {TTL: 1e9}}}, "never be cached"},
		{"nocache on author_ is fine", nil, &CacheConfig{Methods: map[string]*MethodCacheConfig{"author_submitExtrinsic": {NoCache: true}}}, ""},
		{"bad method name", nil, &CacheConfig{Methods: map[string]*MethodCacheConfig{"a:b": {TTL: 1e9}}}, "letters"},
		{"redis without address", &RedisConfig{}, nil, "at least one address"},
		{"several addresses are a cluster, without db", &RedisConfig{Addresses: []string{"a:1", "b:1"}, DB: 1}, nil, "Cluster has no db"},
		{"cluster from one seed", &RedisConfig{Addresses: []string{"a:1"}, Cluster: true}, nil, ""},
		{"cluster with db", &RedisConfig{Addresses: []string{"a:1"}, Cluster: true, DB: 1}, nil, "Cluster has no db"},
		{"cluster with master_name", &RedisConfig{Addresses: []string{"a:1"}, Cluster: true, MasterName: "m"}, nil, "cluster and master_name"},
		{"sentinels with db", &RedisConfig{Addresses: []string{"a:1", "b:1"}, MasterName: "m", DB: 1}, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &App{Redis: tc.redis, Cache: tc.cache}
			err := a.Validate()
			if tc.mentions == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.mentions) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.mentions)
			}
		})
	}
}
