package handler_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/cacher/cachertest"
	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
	"github.com/elara-gateway/elara/limits"
	"github.com/elara-gateway/elara/projects"
)

// startRedisAccess runs a gateway whose cache and projects use one Redis.
func startRedisAccess(t *testing.T, r *cachertest.Redis, projectsBody string) (*testgw.Gateway, *app.Access) {
	t.Helper()
	node := fakenode.Start(t)
	global := chainBlock("dev", testChainOpts, node.URL()) + accessPlans +
		fmt.Sprintf("\t\tredis %s {\n\t\t\ttimeout 200ms\n\t\t}\n\t\tcache {\n\t\t\tstore redis\n\t\t}\n\t\tprojects {\n%s\n\t\t}\n", r.Addr, projectsBody)
	gw := testgw.Start(t, global, "\telara_rpc")
	return gw, app.CurrentAccess()
}

// otherGateway is what another gateway on the same Redis does: its own
// client, store and counters.
func otherGateway(t *testing.T, r *cachertest.Redis) (projects.Store, *limits.Counters) {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: r.Addr})
	st, err := projects.NewRedisStore(context.Background(), client, projects.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := limits.NewCounters(limits.NewRedisCounters(client, ""), limits.CountersOptions{FlushInterval: 50 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close(); _ = st.Close(); _ = client.Close() })
	return st, c
}

// With Redis, projects, their statuses and their daily counts are shared:
// a change or a count made by another gateway applies here within a
// second, open WebSockets included.
func TestAccessRedisShared(t *testing.T) {
	r := cachertest.StartRedis(t)
	gw, x := startRedisAccess(t, r, "")
	if x.Store() == nil {
		t.Fatal("no store")
	}
	other, counters := otherGateway(t, r)
	p, err := other.Create(context.Background(), projects.CreateRequest{Name: "shared", Plan: "daily"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the project created elsewhere", func() bool { _, ok := x.Store().Lookup(p.ID); return ok })
	url := gw.HTTP("/dev/" + p.ID)
	if resp, body := postRaw(t, url, chainCall, nil); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	// The other gateway served 2 calls: the day's 3 are used.
	counters.Add(limits.ScopeProject, p.ID, limits.Usage{Requests: 2})
	if err := counters.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the shared daily count", func() bool {
		resp, _ := postRaw(t, url, chainCall, nil)
		return resp.StatusCode == 429 || resp.StatusCode == 403
	})
	// The suspension is in Redis, for every gateway.
	waitFor(t, "the suspension seen by the other gateway", func() bool {
		q, ok := other.Lookup(p.ID)
		return ok && q.Status == projects.Suspended
	})

	q, err := other.Create(context.Background(), projects.CreateRequest{Name: "ws", Plan: "free"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second project", func() bool { _, ok := x.Store().Lookup(q.ID); return ok })
	c := testgw.Dial(t, gw.WS("/dev/"+q.ID))
	if r := c.Call("system_chain", []any{}); r.Error != nil {
		t.Fatal(string(r.Raw))
	}
	if _, err := other.Update(context.Background(), q.ID, projects.StatusPatch(projects.Disabled, nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.Closed:
		ce, ok := err.(*websocket.CloseError)
		if !ok || ce.Code != 1008 || !strings.Contains(ce.Text, "disabled") {
			t.Fatalf("closed with %v", err)
		}
	case <-time.After(time.Second + 250*time.Millisecond):
		t.Fatal("disabled on another gateway: the connection here was not closed within a second")
	}
}

// Redis down in the middle of traffic: by default calls go on and rates
// are limited from memory; with redis_down closed they are refused with
// 503 and -32004 until Redis is back.
func TestAccessRedisOutage(t *testing.T) {
	for _, mode := range []string{"open", "closed"} {
		t.Run(mode, func(t *testing.T) {
			r := cachertest.StartRedis(t)
			gw, x := startRedisAccess(t, r, "\t\t\tredis_down "+mode)
			p := createProject(t, x, projects.CreateRequest{Plan: "free"})
			url := gw.HTTP("/dev/" + p.ID)
			if resp, body := postRaw(t, url, chainCall, nil); resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			rated := createProject(t, x, projects.CreateRequest{Plan: "rate"})
			r.Freeze(t)
			thawed := false
			defer func() {
				if !thawed {
					r.Thaw(t)
				}
			}()
			if mode == "open" {
				// Calls go on for longer than the Redis timeouts, and the
				// rate is still limited, from this gateway's memory.
				deadline := time.Now().Add(800 * time.Millisecond)
				for time.Now().Before(deadline) {
					if resp, body := postRaw(t, url, chainCall, nil); resp.StatusCode != 200 {
						t.Fatalf("during the outage, fail open: %d %s", resp.StatusCode, body)
					}
				}
				statuses := []int{}
				for range 3 {
					resp, _ := postRaw(t, gw.HTTP("/dev/"+rated.ID), chainCall, nil)
					statuses = append(statuses, resp.StatusCode)
				}
				if statuses[2] != 429 {
					t.Fatalf("rate during the outage: %v, want the third refused", statuses)
				}
			} else {
				waitFor(t, "calls refused while limits cannot be checked", func() bool {
					resp, body := postRaw(t, url, chainCall, nil)
					return resp.StatusCode == 503 && strings.Contains(string(body), "-32004")
				})
			}
			r.Thaw(t)
			thawed = true
			waitFor(t, "Redis back", func() bool {
				resp, _ := postRaw(t, url, chainCall, nil)
				return resp.StatusCode == 200
			})
			// The calls made during the outage were counted once Redis was back.
			waitFor(t, "the counts caught up", func() bool {
				rep, err := x.Enforcer.Usage(context.Background(), x.Subject(&p, ""))
				return err == nil && rep.Project.Requests >= 3
			})
		})
	}
}

// Stopping Caddy (and reloading it) leaves no goroutine of projects or
// limits behind: the store's follower, the counters' flusher, the
// watchers.
func TestAccessStopLeavesNoGoroutine(t *testing.T) {
	r := cachertest.StartRedis(t)
	gw, x := startRedisAccess(t, r, "")
	p := createProject(t, x, projects.CreateRequest{Plan: "daily"})
	c := testgw.Dial(t, gw.WS("/dev/"+p.ID))
	if r := c.Call("system_chain", []any{}); r.Error != nil {
		t.Fatal(string(r.Raw))
	}
	// A reload with other settings replaces the counters.
	testgw.Load(t, gw.Caddyfile(chainBlock("dev", testChainOpts, fakenode.Start(t).URL())+accessPlans+
		fmt.Sprintf("\t\tredis %s\n\t\tprojects {\n\t\t\ttime_zone UTC+8\n\t\t}\n", r.Addr), "\telara_rpc"))
	stopCaddy(t)
	waitFor(t, "no goroutine of projects or limits", func() bool {
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		return !bytes.Contains(buf, []byte("elara/limits.")) && !bytes.Contains(buf, []byte("elara/projects.")) &&
			!bytes.Contains(buf, []byte("elara/handler.(*Handler).closeSessions"))
	})
}
