package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elara-gateway/elara/cacher/cachertest"
	"github.com/elara-gateway/elara/jobs"
)

// statsCaddyfile: projects and statistics in Redis; @@STATS@@ is the
// stats block.
const statsCaddyfile = globalOptionsHead + `		plan free {
		}
		redis @@REDIS@@
		projects
		@@STATS@@
	}
}
http://127.0.0.1:@@HTTP_PORT@@ {
	elara_rpc
}
`

// statsTally is what the clients of one project sent and got.
type statsTally struct {
	mu                               sync.Mutex
	calls, errors, bytesIn, bytesOut int64
	methods                          map[string]int64
}

func (s *statsTally) add(method string, paramsLen int, reply []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.methods == nil {
		s.methods = map[string]int64{}
	}
	s.calls++
	s.bytesIn += int64(paramsLen)
	s.bytesOut += int64(len(reply))
	s.methods[method]++
	var r rpcResponse
	if json.Unmarshal(reply, &r) == nil && r.Error != nil {
		s.errors++
	}
}

// restart starts the gateway's process again, same config, ports and
// data directory (so the same Caddy instance id: the job's consumer
// name).
func (g *gateway) restart(t *testing.T, readyPath string) {
	t.Helper()
	old := g.cmd
	logf, err := os.OpenFile(g.logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.cmd = exec.Command(old.Path, old.Args[1:]...)
	g.cmd.Dir, g.cmd.Env, g.cmd.SysProcAttr = old.Dir, old.Env, childProcAttr()
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	g.done = make(chan struct{})
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	done := g.done
	go func() { _ = g.cmd.Wait(); close(done) }()
	if err := g.waitReady(readyPath); err != nil {
		t.Fatalf("restarted gateway: %v\n%s", err, logTail(g.logPath, 40))
	}
}

// Two gateway processes on one Redis, statistics in Redis; only the
// second runs the job. Calls of one project go through both, over HTTP,
// in batches and on WebSockets; the job instance is killed with SIGKILL
// while it holds a batch read and not acknowledged (if the test catches
// one in time) and restarted; the first gateway goes on taking calls
// meanwhile. Every aggregate of the project then equals what its clients
// sent and got: nothing lost, nothing counted twice.
func TestStatsTwoGatewaysRedisJobKilled(t *testing.T) {
	n := realNode(t)
	r := cachertest.StartRedis(t)
	opts := func(jobsOn string) map[string]string {
		return map[string]string{"REDIS": r.Addr, "STATS": "stats {\n\t\t\tstore redis\n\t\t\tjobs " + jobsOn + "\n\t\t}"}
	}
	a := startGateway(t, n, statsCaddyfile, opts("off"), chainURLPath)
	b := startGateway(t, n, statsCaddyfile, opts("on"), chainURLPath)
	id := createProjectVia(t, a, "free")
	path := chainURLPath + "/" + id
	waitUntil(t, "the project on the second gateway", func() bool {
		rep, err := postRaw(b.httpURL(path), request(1, "system_chain", nil), nil)
		return err == nil && rep.Status == 200
	})
	// that call counted: wait for it, and start the tally from there
	var before jobs.Summary
	waitUntil(t, "the first call's record", func() bool {
		getAdmin(t, a, "/elara/stats/summary?project="+id, &before)
		return before.Today.Calls > 0
	})
	tally := &statsTally{}
	methods := []string{"system_chain", "chain_getBlockHash", "system_notAMethod"}
	statsName := func(m string) string {
		if m == "system_notAMethod" {
			return "other"
		}
		return m
	}
	single := func(g *gateway, m string) {
		rep, err := postRaw(g.httpURL(path), request(1, m, []any{}), nil)
		if err != nil || rep.Status != 200 {
			t.Errorf("%s: %v %v", m, err, rep)
			return
		}
		tally.add(statsName(m), 2, rep.Body)
	}
	batch := func(g *gateway, size int) {
		var entries []string
		for i := range size {
			entries = append(entries, string(request(i, methods[i%len(methods)], []any{})))
		}
		rep, err := postRaw(g.httpURL(path), []byte("["+strings.Join(entries, ",")+"]"), nil)
		if err != nil {
			t.Errorf("batch: %v", err)
			return
		}
		var replies []json.RawMessage
		if err := json.Unmarshal(rep.Body, &replies); err != nil {
			t.Errorf("batch: %v", rep)
			return
		}
		for _, raw := range replies {
			var r struct{ ID int }
			_ = json.Unmarshal(raw, &r)
			tally.add(statsName(methods[r.ID%len(methods)]), 2, raw)
		}
	}
	ws := func(g *gateway, calls int) {
		c, err := wsDial(g.wsURL(path), nil, 5*time.Second)
		if err != nil {
			t.Errorf("ws: %v", err)
			return
		}
		defer c.Close()
		for i := range calls {
			m := methods[i%len(methods)]
			_, raw, err := wsCall(c, string(request(i, m, []any{})), strconv.Itoa(i))
			if err != nil {
				t.Errorf("ws %s: %v", m, err)
				return
			}
			tally.add(statsName(m), 2, raw)
		}
	}

	// Both gateways take calls; B's records reach the stream at once
	// (its recorder writes each batch as it comes).
	for _, g := range []*gateway{a, b} {
		for _, m := range methods {
			single(g, m)
		}
		batch(g, 30)
		ws(g, 9)
	}
	time.Sleep(time.Second)

	// Load on A while B aggregates; B is killed while it holds a batch.
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rc.Close()
	stream := jobs.NewRedisKeys("elara:").Stream()
	stop := make(chan struct{})
	var load sync.WaitGroup
	for range 2 {
		load.Add(1)
		go func() {
			defer load.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				batch(a, 100)
			}
		}()
	}
	midBatch := false
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if p, err := rc.XPending(context.Background(), stream, jobs.Group).Result(); err == nil && p.Count > 0 {
			midBatch = true
			break
		}
	}
	_ = b.cmd.Process.Kill() // SIGKILL
	<-b.done
	t.Logf("job instance killed; it held a batch read and not acknowledged: %v", midBatch)
	time.Sleep(time.Second) // A goes on alone
	close(stop)
	load.Wait()
	ws(a, 6)
	b.restart(t, chainURLPath)

	// The restarted job reads what it held and the rest.
	var s jobs.Summary
	deadline = time.Now().Add(60 * time.Second)
	for {
		getAdmin(t, a, "/elara/stats/summary?project="+id, &s)
		if s.Today.Calls-before.Today.Calls >= tally.calls || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // a double count would show now
	getAdmin(t, a, "/elara/stats/summary?project="+id, &s)
	for name, got := range map[string]jobs.Totals{"today": s.Today, "total": s.Total} {
		got.Calls -= before.Today.Calls
		got.Errors -= before.Today.Errors
		got.BytesIn -= before.Today.BytesIn
		got.BytesOut -= before.Today.BytesOut
		if got.Calls != tally.calls || got.Errors != tally.errors || got.BytesIn != tally.bytesIn || got.BytesOut != tally.bytesOut {
			t.Errorf("%s: calls %d errors %d bytes in %d out %d; sent %d %d %d %d", name, got.Calls, got.Errors, got.BytesIn, got.BytesOut,
				tally.calls, tally.errors, tally.bytesIn, tally.bytesOut)
		}
	}
	var ms []jobs.MethodUse
	getAdmin(t, b, "/elara/stats/methods?project="+id, &ms)
	got := map[string]int64{}
	for _, m := range ms {
		got[m.Method] = m.Calls
	}
	got["system_chain"] -= before.Today.Calls // the calls that waited for the project
	if fmt.Sprint(got) != fmt.Sprint(tally.methods) {
		t.Errorf("methods %v, sent %v", got, tally.methods)
	}
	if p, _ := rc.XPending(context.Background(), stream, jobs.Group).Result(); p.Count != 0 {
		t.Errorf("%d stream entries still pending", p.Count)
	}
	t.Logf("%d calls (%d errors) over 2 gateways, all counted once", tally.calls, tally.errors)
}

func getAdmin(t *testing.T, g *gateway, path string, v any) {
	t.Helper()
	resp, err := httpClient.Get(fmt.Sprintf("http://127.0.0.1:%d%s", g.adminPort, path))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
