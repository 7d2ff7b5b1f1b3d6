package projects

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/elara-gateway/elara/cacher/cachertest"
)

var testPlans = map[string]bool{"normal": true, "bronze": true, "silver": true, "gold": true}

func knownPlan(name string) bool { return testPlans[name] }

// fixedClock is a settable clock for created/updated and status checks.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *fixedClock { return &fixedClock{t: time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)} }

type storeMaker func(t *testing.T, clk *fixedClock) Store

func boltMaker(t *testing.T, clk *fixedClock) Store {
	s, err := OpenBolt(t.TempDir(), BoltOptions{KnownPlan: knownPlan, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func redisClient(t *testing.T, addr string) redis.UniversalClient {
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newRedisStore(t *testing.T, c redis.UniversalClient, clk *fixedClock, log *zap.Logger) *RedisStore {
	t.Helper()
	s, err := NewRedisStore(context.Background(), c, RedisOptions{KnownPlan: knownPlan, Now: clk.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func redisMaker(t *testing.T, clk *fixedClock) Store {
	r := cachertest.StartRedis(t)
	return newRedisStore(t, redisClient(t, r.Addr), clk, nil)
}

func clusterMaker(t *testing.T, clk *fixedClock) Store {
	nodes := cachertest.StartRedisCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{nodes[0].Addr, nodes[1].Addr, nodes[2].Addr}})
	t.Cleanup(func() { _ = c.Close() })
	return newRedisStore(t, c, clk, nil)
}

var makers = []struct {
	name string
	make storeMaker
}{{"bolt", boltMaker}, {"redis", redisMaker}, {"redis-cluster", clusterMaker}}

func create(t *testing.T, s Store, body string) Project {
	t.Helper()
	req, err := DecodeCreate(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStores(t *testing.T) {
	for _, m := range makers {
		t.Run(m.name, func(t *testing.T) {
			clk := newClock()
			s := m.make(t, clk)
			ctx := context.Background()

			t.Run("create returns the whole project", func(t *testing.T) {
				p := create(t, s, `{"name":"wallet","owner":"acme","plan":"gold","limits":{"requests_per_day":10},
					"chains":["polkadot"],"origins":["https://app.example.com"],"networks":["203.0.113.0/24"]}`)
				if !ValidID(p.ID) || !ValidID(p.Secret.Reveal()) || p.ID == p.Secret.Reveal() {
					t.Fatalf("id %q / secret not 32 distinct hex characters", p.ID)
				}
				if p.Status != Active || p.Name != "wallet" || p.Owner != "acme" || p.Plan != "gold" ||
					*p.Limits.RequestsPerDay != 10 || !p.Created.Equal(clk.Now()) || !p.Updated.Equal(clk.Now()) {
					t.Fatalf("created %+v", p)
				}
				body, _ := json.Marshal(p)
				for _, key := range []string{`"id":"` + p.ID, `"secret":"` + p.Secret.Reveal(), `"status":"active"`,
					`"limits":{"requests_per_day":10}`, `"networks":["203.0.113.0/24"]`, `"created":"2026-12-06T07:00:00Z"`} {
					if !strings.Contains(string(body), key) {
						t.Errorf("JSON %s lacks %s", body, key)
					}
				}
				got, ok := s.Lookup(p.ID)
				if !ok || got.Secret != p.Secret {
					t.Fatal("Lookup does not find the new project")
				}
				if !got.AllowsIP(netip.MustParseAddr("203.0.113.9")) || got.AllowsIP(netip.MustParseAddr("198.51.100.1")) ||
					!got.AllowsOrigin("https://app.example.com") || got.AllowsOrigin("https://evil.example") ||
					!got.AllowsChain("polkadot") || got.AllowsChain("kusama") {
					t.Error("restrictions do not hold")
				}
				if g, err := s.Get(ctx, p.ID); err != nil || g.ID != p.ID {
					t.Fatalf("Get: %v", err)
				}
			})

			t.Run("invalid projects are refused", func(t *testing.T) {
				cases := []struct {
					name, body, want string
				}{
					{"no name", `{"plan":"gold"}`, "name is required"},
					{"unknown plan", `{"name":"x","plan":"platinum"}`, `unknown plan "platinum"`},
					{"no plan", `{"name":"x"}`, "plan is required"},
					{"bad network", `{"name":"x","plan":"gold","networks":["10.0.0.1/33"]}`, "not a CIDR"},
					{"bad origin", `{"name":"x","plan":"gold","origins":["app.example.com"]}`, "not an origin"},
					{"negative limit", `{"name":"x","plan":"gold","limits":{"burst":-1}}`, "burst must be ≥ 0"},
					{"bad status", `{"name":"x","plan":"gold","status":"paused"}`, `status "paused"`},
					{"suspended without an end", `{"name":"x","plan":"gold","status":"suspended"}`, "suspended_until"},
					{"two stars", `{"name":"x","plan":"gold","deny":["*_*"]}`, "at most one '*'"},
				}
				for _, c := range cases {
					t.Run(c.name, func(t *testing.T) {
						req, err := DecodeCreate(strings.NewReader(c.body))
						if err != nil {
							t.Fatal(err)
						}
						_, err = s.Create(ctx, req)
						if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
							t.Fatalf("got %v, want an ErrInvalid with %q", err, c.want)
						}
					})
				}
			})

			t.Run("list filters", func(t *testing.T) {
				a := create(t, s, `{"name":"a","owner":"o1","plan":"normal"}`)
				clk.Advance(time.Second)
				b := create(t, s, `{"name":"b","owner":"o1","plan":"bronze","status":"disabled"}`)
				clk.Advance(time.Second)
				c := create(t, s, `{"name":"c","owner":"o2","plan":"bronze"}`)
				until := clk.Now().Add(time.Hour)
				if _, err := s.Update(ctx, c.ID, StatusPatch(Suspended, &until)); err != nil {
					t.Fatal(err)
				}
				cases := []struct {
					name string
					f    Filter
					want []string
				}{
					{"owner", Filter{Owner: "o1"}, []string{a.ID, b.ID}},
					{"plan", Filter{Plan: "bronze"}, []string{b.ID, c.ID}},
					{"disabled", Filter{Status: Disabled}, []string{b.ID}},
					{"suspended now", Filter{Status: Suspended, Now: clk.Now()}, []string{c.ID}},
					{"suspension lapsed", Filter{Owner: "o2", Status: Active, Now: until}, []string{c.ID}},
					{"owner and status", Filter{Owner: "o1", Status: Active, Now: clk.Now()}, []string{a.ID}},
				}
				for _, cs := range cases {
					t.Run(cs.name, func(t *testing.T) {
						got, err := s.List(ctx, cs.f)
						if err != nil {
							t.Fatal(err)
						}
						var ids []string
						for _, p := range got {
							ids = append(ids, p.ID)
						}
						if fmt.Sprint(ids) != fmt.Sprint(cs.want) {
							t.Errorf("got %v, want %v", ids, cs.want)
						}
					})
				}
			})

			t.Run("update", func(t *testing.T) {
				until := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
				cases := []struct {
					name  string
					patch string
					check func(t *testing.T, p Project)
					err   string
				}{
					{"rename and move", `{"name":"renamed","owner":"other","plan":"silver"}`, func(t *testing.T, p Project) {
						if p.Name != "renamed" || p.Owner != "other" || p.Plan != "silver" {
							t.Errorf("got %+v", p)
						}
					}, ""},
					{"disable", `{"status":"disabled"}`, func(t *testing.T, p Project) {
						if p.StatusAt(clk.Now()) != Disabled {
							t.Errorf("status %s", p.Status)
						}
					}, ""},
					{"suspend until the reset", `{"status":"suspended","suspended_until":"2026-12-07T00:00:00Z"}`, func(t *testing.T, p Project) {
						if p.StatusAt(until.Add(-time.Nanosecond)) != Suspended || p.StatusAt(until) != Active {
							t.Errorf("suspension does not end at %s: %+v", until, p.SuspendedUntil)
						}
					}, ""},
					{"enable clears the suspension", `{"status":"active"}`, func(t *testing.T, p Project) {
						if p.Status != Active || p.SuspendedUntil != nil {
							t.Errorf("got %s until %v", p.Status, p.SuspendedUntil)
						}
					}, ""},
					{"limits are replaced as a whole", `{"limits":{"connections":2}}`, func(t *testing.T, p Project) {
						if p.Limits == nil || p.Limits.RequestsPerDay != nil || *p.Limits.Connections != 2 {
							t.Errorf("limits %+v", p.Limits)
						}
					}, ""},
					{"null clears", `{"limits":null,"chains":null}`, func(t *testing.T, p Project) {
						if p.Limits != nil || p.Chains != nil {
							t.Errorf("limits %+v chains %v", p.Limits, p.Chains)
						}
					}, ""},
					{"unknown plan", `{"plan":"platinum"}`, nil, `unknown plan "platinum"`},
					{"bad network", `{"networks":["nope"]}`, nil, "not a CIDR"},
					{"unknown limit key", `{"limits":{"rps":3}}`, nil, "unknown field"},
					{"bad secret", `{"secret":"short"}`, nil, "secret must be 32"},
				}
				p := create(t, s, `{"name":"u","owner":"o","plan":"gold","limits":{"requests_per_day":5},"chains":["polkadot"]}`)
				for _, c := range cases {
					t.Run(c.name, func(t *testing.T) {
						before, _ := s.Get(ctx, p.ID)
						clk.Advance(time.Second)
						patch, err := DecodePatch(strings.NewReader(c.patch))
						if err != nil {
							t.Fatal(err)
						}
						got, err := s.Update(ctx, p.ID, patch)
						if c.err != "" {
							if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.err) {
								t.Fatalf("got %v, want %q", err, c.err)
							}
							after, _ := s.Get(ctx, p.ID)
							if !after.Updated.Equal(before.Updated) || after.Plan != before.Plan {
								t.Error("a refused patch changed the project")
							}
							return
						}
						if err != nil {
							t.Fatal(err)
						}
						if got.ID != p.ID || got.Secret != p.Secret || !got.Created.Equal(p.Created) || !got.Updated.Equal(clk.Now()) {
							t.Errorf("id, secret, created or updated wrong: %+v", got)
						}
						c.check(t, got)
						stored, _ := s.Get(ctx, p.ID)
						c.check(t, stored)
						mem, _ := s.Lookup(p.ID)
						c.check(t, mem)
					})
				}
				if _, err := s.Update(ctx, NewID(), Patch{"name": json.RawMessage(`"x"`)}); !errors.Is(err, ErrNotFound) {
					t.Errorf("update of an unknown id: %v", err)
				}
			})

			t.Run("delete", func(t *testing.T) {
				p := create(t, s, `{"name":"gone","plan":"gold"}`)
				if err := s.Delete(ctx, p.ID); err != nil {
					t.Fatal(err)
				}
				if _, ok := s.Lookup(p.ID); ok {
					t.Error("Lookup still finds a deleted project")
				}
				if _, err := s.Get(ctx, p.ID); !errors.Is(err, ErrNotFound) {
					t.Errorf("Get: %v", err)
				}
				if err := s.Delete(ctx, p.ID); !errors.Is(err, ErrNotFound) {
					t.Errorf("second Delete: %v", err)
				}
			})

			t.Run("watchers see changes", func(t *testing.T) {
				ch := make(chan Change, 10)
				cancel := s.Watch(func(c Change) { ch <- c })
				p := create(t, s, `{"name":"w","plan":"gold"}`)
				if _, err := s.Update(ctx, p.ID, StatusPatch(Disabled, nil)); err != nil {
					t.Fatal(err)
				}
				if err := s.Delete(ctx, p.ID); err != nil {
					t.Fatal(err)
				}
				cancel()
				want := []string{"active", "disabled", "deleted"}
				for i, w := range want {
					c := <-ch
					got := "deleted"
					if c.Project != nil {
						got = string(c.Project.Status)
					}
					if c.ID != p.ID || got != w {
						t.Errorf("change %d: %s %s, want %s %s", i, c.ID, got, p.ID, w)
					}
				}
				create(t, s, `{"name":"after","plan":"gold"}`)
				if len(ch) != 0 {
					t.Error("a cancelled watcher was called")
				}
			})
		})
	}
}

func TestDecodeRequests(t *testing.T) {
	cases := []struct {
		name, body, want string
		patch            bool
	}{
		{"create with an id", `{"name":"x","plan":"gold","id":"00000000000000000000000000000000"}`, `unknown field "id"`, false},
		{"create with a secret", `{"name":"x","plan":"gold","secret":"00000000000000000000000000000000"}`, `unknown field "secret"`, false},
		{"create with trailing data", `{"name":"x","plan":"gold"} {}`, "data after", false},
		{"create not JSON", `name=x`, "invalid", false},
		{"patch id", `{"id":"00000000000000000000000000000000"}`, "id cannot be changed", true},
		{"patch created", `{"created":"2026-01-01T00:00:00Z"}`, "set by the store", true},
		{"patch unknown", `{"colour":"red"}`, `unknown field "colour"`, true},
		{"patch not an object", `[1]`, "invalid", true},
		{"patch null", `null`, "want a JSON object", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			if c.patch {
				_, err = DecodePatch(strings.NewReader(c.body))
			} else {
				_, err = DecodeCreate(strings.NewReader(c.body))
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestSecretStaysSecret(t *testing.T) {
	clk := newClock()
	s := boltMaker(t, clk)
	p := create(t, s, `{"name":"x","owner":"o","plan":"gold"}`)
	secret := p.Secret.Reveal()

	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(core)
	log.Info("project", zap.Any("p", p), zap.Object("o", p), zap.Any("ptr", &p))
	var logged bytes.Buffer
	for _, e := range logs.All() {
		fmt.Fprintf(&logged, "%v %v", e.Message, e.ContextMap())
	}
	_, err := s.Update(context.Background(), p.ID, Patch{"secret": json.RawMessage(`"` + secret[:31] + `Z"`)})
	for name, text := range map[string]string{
		"String": p.String(), "%v": fmt.Sprintf("%v", p), "%+v": fmt.Sprintf("%+v", p), "%#v": fmt.Sprintf("%#v", p.Secret),
		"pointer %+v": fmt.Sprintf("%+v", &p), "zap": logged.String(), "error": fmt.Sprint(err),
	} {
		if strings.Contains(text, secret) || strings.Contains(text, secret[:31]) {
			t.Errorf("%s shows the secret: %s", name, text)
		}
	}
	if !strings.Contains(logged.String(), p.ID) {
		t.Error("the log lacks the project id")
	}
}

func TestBoltSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	s, err := OpenBolt(dir, BoltOptions{KnownPlan: knownPlan, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := DecodeCreate(strings.NewReader(`{"name":"keep","owner":"o","plan":"gold","networks":["10.0.0.0/8"]}`))
	kept, err := s.Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	gone, _ := s.Create(context.Background(), req)
	_ = s.Delete(context.Background(), gone.ID)
	if _, err := s.Update(context.Background(), kept.ID, StatusPatch(Disabled, nil)); err != nil {
		t.Fatal(err)
	}
	// A second open of the file waits for the lock and fails.
	if _, err := OpenBolt(dir, BoltOptions{Timeout: 100 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "Redis") {
		t.Errorf("a second open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := OpenBolt(dir, BoltOptions{KnownPlan: knownPlan, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	p, ok := s2.Lookup(kept.ID)
	if !ok || p.Status != Disabled || p.Secret != kept.Secret || p.Owner != "o" || !p.Created.Equal(kept.Created) {
		t.Fatalf("after a restart: %+v, %v", p, ok)
	}
	if !p.AllowsIP(netip.MustParseAddr("10.1.2.3")) || p.AllowsIP(netip.MustParseAddr("192.168.0.1")) {
		t.Error("networks not enforced after a restart")
	}
	if _, ok := s2.Lookup(gone.ID); ok {
		t.Error("a deleted project came back")
	}
}

// Two gateways on one Redis see each other's changes within a second,
// and one that missed more changes than the log keeps catches up.
func TestRedisStoresShareChanges(t *testing.T) {
	r := cachertest.StartRedis(t)
	clk := newClock()
	a := newRedisStore(t, redisClient(t, r.Addr), clk, nil)
	b := newRedisStore(t, redisClient(t, r.Addr), clk, nil)
	ctx := context.Background()

	seen := make(chan Change, 100)
	stop := b.Watch(func(c Change) {
		select {
		case seen <- c:
		default:
		}
	})
	defer stop()
	within := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not seen by the other instance within 1s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	p := create(t, a, `{"name":"shared","plan":"gold"}`)
	within("create", func() bool { _, ok := b.Lookup(p.ID); return ok })
	clk.Advance(time.Second)
	if _, err := a.Update(ctx, p.ID, StatusPatch(Disabled, nil)); err != nil {
		t.Fatal(err)
	}
	within("disable", func() bool { q, _ := b.Lookup(p.ID); return q.Status == Disabled })
	if err := b.Delete(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	within("delete", func() bool { _, ok := a.Lookup(p.ID); return !ok })
	if c := <-seen; c.ID != p.ID || c.Project == nil {
		t.Errorf("b's watcher first saw %+v", c)
	}

	// More changes than the log keeps while b is not looking.
	_ = b.Close()
	var last Project
	req, _ := DecodeCreate(strings.NewReader(`{"name":"many","plan":"gold"}`))
	for range changeLogLength + 10 {
		last, _ = a.Create(ctx, req)
	}
	c := newRedisStore(t, redisClient(t, r.Addr), clk, nil)
	if _, ok := c.Lookup(last.ID); !ok {
		t.Fatal("a new instance does not load existing projects")
	}
	b.mu.Lock()
	b.seen = 1 // as if b had stopped long ago
	b.mu.Unlock()
	if err := b.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Lookup(last.ID); !ok {
		t.Error("an instance far behind did not reload")
	}
}

// With Redis down, lookups are served from memory; one log line per
// outage; changes made while away arrive after it is back.
func TestRedisStoreOutage(t *testing.T) {
	r := cachertest.StartRedis(t)
	clk := newClock()
	core, logs := observer.New(zap.InfoLevel)
	a := newRedisStore(t, redisClient(t, r.Addr), clk, zap.New(core))
	p := create(t, a, `{"name":"kept","plan":"gold"}`)

	r.Stop()
	time.Sleep(4 * DefaultPollInterval)
	if _, ok := a.Lookup(p.ID); !ok {
		t.Fatal("a project vanished with Redis down")
	}
	if _, err := a.Get(context.Background(), p.ID); err == nil {
		t.Error("Get worked with Redis down")
	}
	if n := logs.FilterMessageSnippet("Redis unavailable").Len(); n != 1 {
		t.Errorf("%d outage lines, want 1", n)
	}

	r.Restart(t) // empty: the version went back to nothing
	b := newRedisStore(t, redisClient(t, r.Addr), clk, nil)
	q := create(t, b, `{"name":"new","plan":"gold"}`)
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, okQ := a.Lookup(q.ID)
		_, okP := a.Lookup(p.ID)
		if okQ && !okP {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Redis came back empty: new %v, old still there %v", okQ, okP)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := logs.FilterMessageSnippet("available again").Len(); n != 1 {
		t.Errorf("%d recovery lines, want 1", n)
	}
}

func TestSuspend(t *testing.T) {
	for _, m := range makers[:2] {
		t.Run(m.name, func(t *testing.T) {
			clk := newClock()
			s := m.make(t, clk)
			ctx := context.Background()
			until := time.Now().Add(time.Hour)
			cases := []struct {
				name    string
				body    string
				prepare Patch
				changed bool
				want    Status
			}{
				{"active is suspended", `{"name":"a","plan":"gold"}`, nil, true, Suspended},
				{"disabled stays disabled", `{"name":"d","plan":"gold","status":"disabled"}`, nil, false, Disabled},
				{"already suspended", `{"name":"s","plan":"gold"}`, StatusPatch(Suspended, &until), false, Suspended},
				{"a lapsed suspension is suspended again", `{"name":"l","plan":"gold"}`,
					StatusPatch(Suspended, ptrTime(time.Now().Add(-time.Hour))), true, Suspended},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					p := create(t, s, c.body)
					if c.prepare != nil {
						if _, err := s.Update(ctx, p.ID, c.prepare); err != nil {
							t.Fatal(err)
						}
					}
					changed, err := Suspend(ctx, s, p.ID, until)
					if err != nil || changed != c.changed {
						t.Fatalf("Suspend = %v, %v; want %v", changed, err, c.changed)
					}
					got, _ := s.Get(ctx, p.ID)
					if got.StatusAt(time.Now()) != c.want {
						t.Errorf("status %s, want %s", got.StatusAt(time.Now()), c.want)
					}
					if changed && !got.SuspendedUntil.Equal(until) {
						t.Errorf("suspended until %v, want %v", got.SuspendedUntil, until)
					}
				})
			}
			// The condition holds in the write itself, not only in the
			// memory check Suspend makes first.
			d := create(t, s, `{"name":"race","plan":"gold","status":"disabled"}`)
			cond := StatusPatch(Suspended, &until)
			cond[ifStatus] = json.RawMessage(`"active"`)
			if _, err := s.Update(ctx, d.ID, cond); !errors.Is(err, ErrPrecondition) {
				t.Errorf("a conditional patch on a disabled project: %v", err)
			}
			if _, err := DecodePatch(strings.NewReader(`{"if_status":"active"}`)); err == nil {
				t.Error("a client could send if_status")
			}
		})
	}
}

func ptrTime(t time.Time) *time.Time { return &t }

// The per-call lookup: a map read under a read lock.
func BenchmarkLookup(b *testing.B) {
	s, err := OpenBolt(b.TempDir(), BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var ids []string
	for i := range 1000 {
		p, err := s.Create(context.Background(), CreateRequest{Name: fmt.Sprint(i), Plan: "gold", Networks: []string{"10.0.0.0/8"}})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	ip := netip.MustParseAddr("10.1.2.3")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			p, ok := s.Lookup(ids[i%len(ids)])
			if !ok || !p.AllowsIP(ip) {
				b.Fatal("lookup failed")
			}
			i++
		}
	})
}

// Close stops the goroutine following Redis; nothing is left running.
func TestRedisStoreCloseLeavesNoGoroutine(t *testing.T) {
	r := cachertest.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	for range 5 {
		s, err := NewRedisStore(context.Background(), c, RedisOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
