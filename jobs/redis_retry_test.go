package jobs

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/elara-gateway/elara/cacher/cachertest"
	"github.com/elara-gateway/elara/limits"
)

// replyLosingProxy relays between clients and Redis; once armed, the
// first client message holding trigger reaches Redis, but the connection
// is then cut before Redis's reply comes back: what a timeout or a reset
// after Redis ran the command looks like to the gateway.
type replyLosingProxy struct {
	ln      net.Listener
	target  string
	trigger []byte
	armed   atomic.Bool
	cut     atomic.Int32
	wg      sync.WaitGroup
}

func startReplyLosingProxy(t *testing.T, target string, trigger string) *replyLosingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &replyLosingProxy{ln: ln, target: target, trigger: []byte(trigger)}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.relay(c) }()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); p.wg.Wait() })
	return p
}

func (p *replyLosingProxy) relay(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	var replies sync.Mutex // held while a triggering message is in Redis
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := s.Read(buf)
			replies.Lock()
			if n > 0 {
				_, _ = c.Write(buf[:n])
			}
			replies.Unlock()
			if err != nil {
				_ = c.Close()
				return
			}
		}
	}()
	buf := make([]byte, 1<<20)
	var pending []byte
	for {
		n, err := c.Read(buf)
		if n > 0 {
			pending = append(pending[:0], buf[:n]...)
			if p.armed.Load() && bytes.Contains(pending, p.trigger) && p.armed.CompareAndSwap(true, false) {
				replies.Lock()
				_, _ = s.Write(pending)
				time.Sleep(300 * time.Millisecond) // Redis runs it; its reply waits here
				_ = c.Close()
				_ = s.Close()
				replies.Unlock()
				p.cut.Add(1)
				return
			}
			if _, werr := s.Write(pending); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	_ = c.Close()
	_ = s.Close()
}

// streamRecords counts the records in the stream's entries, a coalesced
// call record counting its calls.
func streamRecords(t *testing.T, c redis.UniversalClient, stream string) int {
	t.Helper()
	msgs, err := c.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range msgs {
		s, _ := m.Values["r"].(string)
		for line := range strings.SplitSeq(strings.TrimSuffix(s, "\n"), "\n") {
			r, ok := parseWire(line)
			if !ok {
				t.Fatalf("malformed line %q", line)
			}
			if r.Kind == KindCall {
				n += int(r.count())
			} else {
				n++
			}
		}
	}
	return n
}

// TestRedisWriterRetryAddsOnce: Redis runs a batch but the reply is lost
// (the connection is cut); the writer tries again and the stream still
// holds the batch once, so the job cannot count it twice.
func TestRedisWriterRetryAddsOnce(t *testing.T) {
	rd := cachertest.StartRedis(t)
	proxy := startReplyLosingProxy(t, rd.Addr, "trigger_method")
	client := redis.NewClient(&redis.Options{Addr: proxy.ln.Addr().String()})
	defer client.Close()
	direct := redis.NewClient(&redis.Options{Addr: rd.Addr})
	defer direct.Close()
	keys := NewRedisKeys("test:")
	w := &RedisWriter{Client: client, Keys: keys, MaxLen: DefaultStreamMaxLen}

	at := time.Now()
	first := testRecords(300, at)
	w.Write(first) // a batch that goes through
	batch := testRecords(600, at)
	for i := range batch {
		batch[i].Method = "trigger_method"
	}
	proxy.armed.Store(true)
	w.Write(batch)
	if proxy.cut.Load() != 1 {
		t.Fatalf("the proxy cut %d replies, want 1", proxy.cut.Load())
	}
	if got, want := streamRecords(t, direct, keys.Stream()), len(first)+len(batch); got != want {
		t.Fatalf("the stream holds %d records, want %d (each once)", got, want)
	}
	// Later batches are added as usual.
	w.Write(first)
	if got, want := streamRecords(t, direct, keys.Stream()), 2*len(first)+len(batch); got != want {
		t.Fatalf("the stream holds %d records, want %d", got, want)
	}
}

// TestRedisJobOneLoopPerConsumer: a reload that changes the statistics
// settings starts a second job under the same consumer name before it
// stops the first; the second waits, so a pending batch is never
// applied by both, and it takes over once the first stops.
func TestRedisJobOneLoopPerConsumer(t *testing.T) {
	rd := cachertest.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: rd.Addr})
	defer client.Close()
	ctx := context.Background()
	days := limits.NewDays(time.UTC)
	keys := NewRedisKeys("test:")
	store := &RedisStore{Client: client, Keys: keys}
	w := &RedisWriter{Client: client, Keys: keys, MaxLen: DefaultStreamMaxLen}
	countedA := &addCounter{Counter: prometheus.NewCounter(prometheus.CounterOpts{Name: "a"})}
	countedB := &addCounter{Counter: prometheus.NewCounter(prometheus.CounterOpts{Name: "b"})}
	a := StartRedisJob(store, Aggregator{Days: days}, JobOptions{Consumer: "gw", Batch: 1, Counted: countedA})
	reader := &StoreReader{Store: store, Days: days}
	waitCalls := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			s, err := reader.Summary(ctx, Query{})
			if err != nil {
				t.Fatal(err)
			}
			if s.Total.Calls == n {
				return
			}
			if s.Total.Calls > n || time.Now().After(deadline) {
				t.Fatalf("total calls %d, want %d", s.Total.Calls, n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	recs := testRecords(3000, time.Now().Add(-time.Hour))
	// The first job runs (as it has before any reload) when the second
	// starts.
	w.Write(recs[:100])
	waitCalls(100)
	b := StartRedisJob(store, Aggregator{Days: days}, JobOptions{Consumer: "gw", Batch: 1, Counted: countedB})
	defer b.Stop()
	for i := 100; i < len(recs); i += 100 {
		w.Write(recs[i : i+100])
	}
	waitCalls(3000)
	if got := countedB.n.Load(); got != 0 {
		t.Fatalf("the second job counted %d records while the first ran", got)
	}
	a.Stop()
	for i := 0; i < 1000; i += 100 {
		w.Write(recs[i : i+100])
	}
	waitCalls(4000)
	if got := countedB.n.Load(); got != 1000 {
		t.Fatalf("the second job counted %d records after the first stopped, want 1000", got)
	}
}

// addCounter is a Counter whose sum the test reads.
type addCounter struct {
	prometheus.Counter
	n atomic.Int64
}

func (c *addCounter) Add(v float64) { c.n.Add(int64(v)) }
