package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Redis statistics. Every key is under the hash tag {stats}, one Redis
// Cluster slot, so the job's script may touch them all at once:
//
//	<prefix>{stats}:stream                  the records, up to 256 lines per entry (XADD, approximate MAXLEN)
//	<prefix>{stats}:<period>:<hash>         an aggregate hash (EXPIREAT: period end + retention)
//	<prefix>{stats}:errors:<project>        latest errors, newest first (LPUSH + LTRIM)
//	<prefix>{stats}:w:<writer>:<seq>        a batch a gateway added (60 s): its retry adds nothing
//
// The job reads the stream in a consumer group and applies a batch's
// aggregates and its XACK in one Lua script: a job killed before the
// script ran leaves the entries pending (claimed again by XAUTOCLAIM or
// re-read after a restart) and nothing counted; after, everything. The
// script first checks that this consumer still owns every entry, so a
// batch claimed away from a stalled consumer is never counted twice.

// Group is the consumer group of the statistics job.
const Group = "elara-stats"

// DefaultStreamMaxLen is the stream's approximate bound in entries (of
// up to recordsPerEntry records): far above any backlog a running job
// leaves (a job reads tens of thousands of records a second), so only
// records that no job read for hours are lost.
const DefaultStreamMaxLen = 1_000_000

// recordsPerEntry bounds the records of one stream entry.
const recordsPerEntry = 256

// RedisKeys names the statistics keys under prefix.
type RedisKeys struct{ base string }

// NewRedisKeys returns the keys under prefix ("elara:").
func NewRedisKeys(prefix string) RedisKeys { return RedisKeys{base: prefix + "{stats}:"} }

// Stream is the records stream's key.
func (k RedisKeys) Stream() string { return k.base + "stream" }

func (k RedisKeys) hash(period, hash string) string { return k.base + period + ":" + hash }
func (k RedisKeys) errors(project string) string    { return k.base + "errors:" + project }
func (k RedisKeys) writeMark(batch string) string   { return k.base + "w:" + batch }

// A stream entry's field "r" holds its records as text: one line per
// record ('\n' never occurs in the strings: names, catalogue methods,
// node labels, codes), fields separated by '\t' in wireFields order.
// Hand-written because reflection-based JSON cost the gateway more than
// the rest of recording.
const wireFields = 15 // time kind chain project method transport outcome code in out latency hit node country count

func appendWire(b []byte, r *Record) []byte {
	b = strconv.AppendInt(b, r.Time.UnixNano(), 10)
	b = append(b, '\t')
	b = strconv.AppendUint(b, uint64(r.Kind), 10)
	for _, f := range [...]string{r.Chain, r.Project, r.Method, r.Transport, r.Outcome} {
		b = append(b, '\t')
		b = appendClean(b, f)
	}
	for _, n := range [...]int64{int64(r.Code), r.BytesIn, r.BytesOut, int64(r.Latency)} {
		b = append(b, '\t')
		b = strconv.AppendInt(b, n, 10)
	}
	b = append(b, '\t')
	if r.CacheHit {
		b = append(b, '1')
	} else {
		b = append(b, '0')
	}
	b = append(b, '\t')
	b = appendClean(b, r.Node)
	b = append(b, '\t')
	b = appendClean(b, r.Country)
	b = append(b, '\t')
	b = strconv.AppendInt(b, r.Count, 10)
	return append(b, '\n')
}

// appendClean appends s without the separators (which no valid value
// holds).
func appendClean(b []byte, s string) []byte {
	if !strings.ContainsAny(s, "\t\n") {
		return append(b, s...)
	}
	return append(b, strings.NewReplacer("\t", " ", "\n", " ").Replace(s)...)
}

// parseWire reads one line; ok is false for a malformed one.
func parseWire(line string) (r Record, ok bool) {
	var f [wireFields]string
	for i := range f {
		if i == wireFields-1 {
			f[i] = line
			break
		}
		j := strings.IndexByte(line, '\t')
		if j < 0 {
			return r, false
		}
		f[i], line = line[:j], line[j+1:]
	}
	var n [8]int64
	for i, k := range [...]int{0, 1, 7, 8, 9, 10, 14} {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return r, false
		}
		n[i] = v
	}
	return Record{Time: time.Unix(0, n[0]), Kind: Kind(n[1]), Chain: f[2], Project: f[3], Method: f[4], Transport: f[5],
		Outcome: f[6], Code: int(n[2]), BytesIn: n[3], BytesOut: n[4], Latency: time.Duration(n[5]), CacheHit: f[11] == "1",
		Node: f[12], Country: f[13], Count: n[6]}, true
}

// RedisWriter is the Sink of gateways with Redis statistics: each batch
// is one script that adds its entries to the stream.
type RedisWriter struct {
	Client redis.UniversalClient
	Keys   RedisKeys
	MaxLen int64
	// Dropped counts records that could not be written (Redis down).
	Dropped prometheus.Counter
	Logger  *zap.Logger

	lastLog time.Time
	co      coalescer
	idOnce  sync.Once
	id      string        // this writer's batches: <id>:<seq>
	seq     atomic.Uint64 // batches written
}

// writeMarkTTL is how long Redis remembers a batch it added: far longer
// than the writer's tries of one batch take.
const writeMarkTTL = 60 // seconds

// addScript adds a batch's entries and a marker of the batch at once,
// or nothing when the marker is there: a try whose reply was lost (a
// timeout, a reset connection) after Redis ran it is not added again.
//
// KEYS: stream, marker. ARGV: maxlen (0: unbounded), marker TTL seconds,
// the entries' texts.
var addScript = redis.NewScript(`
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then return 0 end
local maxlen = tonumber(ARGV[1])
for i = 3, #ARGV do
  if maxlen > 0 then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'r', ARGV[i])
  else
    redis.call('XADD', KEYS[1], '*', 'r', ARGV[i])
  end
end
return 1
`)

// Write implements Sink: the batch's calls coalesced (see coalesce.go),
// one stream entry per recordsPerEntry records (lines of text, see
// appendWire), so Redis does one XADD, and the job one entry's
// bookkeeping, per few hundred calls. The recorder's goroutine calls it,
// one batch at a time. A failed batch is tried once more
// (the script makes that safe: see addScript), then counted as dropped:
// waiting longer would only fill the recorder's buffer (and hold up a
// config reload draining it).
func (w *RedisWriter) Write(recs []Record) {
	w.idOnce.Do(func() {
		var b [8]byte
		_, _ = rand.Read(b[:])
		w.id = hex.EncodeToString(b[:])
	})
	n := len(recs)
	recs = w.co.coalesce(recs)
	maxLen := max(w.MaxLen, 0)
	args := []any{maxLen, writeMarkTTL}
	var b []byte
	for i := 0; i < len(recs); i += recordsPerEntry {
		b = b[:0]
		for j := i; j < min(i+recordsPerEntry, len(recs)); j++ {
			b = appendWire(b, &recs[j])
		}
		args = append(args, string(b))
	}
	keys := []string{w.Keys.Stream(), w.Keys.writeMark(w.id + ":" + strconv.FormatUint(w.seq.Add(1), 10))}
	var err error
	for attempt := range 2 {
		if attempt > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = addScript.Run(ctx, w.Client, keys, args...).Err()
		cancel()
		if err == nil {
			return
		}
	}
	if w.Dropped != nil {
		w.Dropped.Add(float64(n))
	}
	if w.Logger != nil && time.Since(w.lastLog) > 10*time.Second {
		w.lastLog = time.Now()
		w.Logger.Error("statistics records could not be written to Redis: dropped (elara_stats_records_dropped_total)",
			zap.Int("records", n), zap.Error(err))
	}
}

// RedisStore reads and writes the aggregates in Redis.
type RedisStore struct {
	Client    redis.UniversalClient
	Keys      RedisKeys
	Retention Retention
	// LatestErrors bounds each project's error list.
	LatestErrors int
}

// applyScript applies a delta and acknowledges its entries, or nothing
// when this consumer no longer owns every entry (returns 0).
//
// KEYS: stream, then the keys the ops name by index (1-based past the
// stream: index i is KEYS[i+1]).
// ARGV: group, consumer, nIDs, ids..., nIncr, (key, field, n)...,
// nPeak, (gaugeKey, field, dayKey, net, maxNet)..., nExpire,
// (key, unixSeconds)..., nErr, (key, json)..., errCap.
var applyScript = redis.NewScript(`
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local i = 3
local nids = tonumber(ARGV[i]); i = i + 1
local ids = {}
for j = 1, nids do ids[j] = ARGV[i]; i = i + 1 end
for _, id in ipairs(ids) do
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  if #p == 0 or p[1][2] ~= consumer then return 0 end
end
local n = tonumber(ARGV[i]); i = i + 1
for j = 1, n do
  redis.call('HINCRBY', KEYS[tonumber(ARGV[i]) + 1], ARGV[i+1], ARGV[i+2]); i = i + 3
end
n = tonumber(ARGV[i]); i = i + 1
for j = 1, n do
  local g, f, d = KEYS[tonumber(ARGV[i]) + 1], ARGV[i+1], KEYS[tonumber(ARGV[i+2]) + 1]
  local net, maxnet = tonumber(ARGV[i+3]), tonumber(ARGV[i+4])
  local cur = tonumber(redis.call('HGET', g, f) or '0')
  local v = cur - net + maxnet
  local peak = tonumber(redis.call('HGET', d, f .. '_peak') or '0')
  if v > peak then redis.call('HSET', d, f .. '_peak', v) end
  i = i + 5
end
n = tonumber(ARGV[i]); i = i + 1
for j = 1, n do
  redis.call('EXPIREAT', KEYS[tonumber(ARGV[i]) + 1], ARGV[i+1]); i = i + 2
end
n = tonumber(ARGV[i]); i = i + 1
local trim = {}
for j = 1, n do
  local k = KEYS[tonumber(ARGV[i]) + 1]
  redis.call('LPUSH', k, ARGV[i+1]); trim[k] = true; i = i + 2
end
local cap = tonumber(ARGV[i])
for k, _ in pairs(trim) do redis.call('LTRIM', k, 0, cap - 1) end
if nids > 0 then redis.call('XACK', stream, group, unpack(ids)) end
return 1
`)

// errNotOwner is a batch claimed by another consumer meanwhile.
var errNotOwner = errors.New("statistics batch claimed by another consumer")

// applyAcked applies d and acknowledges ids as consumer, atomically.
func (s *RedisStore) applyAcked(ctx context.Context, d *Delta, consumer string, ids []string) error {
	d.Settle()
	keys := []string{s.Keys.Stream()}
	index := map[string]int{}
	key := func(k string) string {
		i, ok := index[k]
		if !ok {
			keys = append(keys, k)
			i = len(keys) - 1
			index[k] = i
		}
		return strconv.Itoa(i)
	}
	args := []any{Group, consumer, len(ids)}
	for _, id := range ids {
		args = append(args, id)
	}
	var incr []any
	for hk, fields := range d.Incr {
		k := key(s.Keys.hash(hk.Period, hk.Hash))
		for f, n := range fields {
			if n != 0 {
				incr = append(incr, k, f, n)
			}
		}
	}
	args = append(args, len(incr)/3)
	args = append(args, incr...)
	args = append(args, len(d.Peaks))
	for p, maxNet := range d.Peaks {
		args = append(args, key(s.Keys.hash(p.Gauge.Period, p.Gauge.Hash)), p.Field, key(s.Keys.hash(p.Day, p.Gauge.Hash)),
			d.Incr[p.Gauge][p.Field], maxNet)
	}
	ret := s.Retention.withDefaults()
	var exp []any
	for hk := range d.Incr {
		if keep := ret.keep(hk.Period); keep > 0 {
			if end, ok := d.Periods[hk.Period]; ok {
				exp = append(exp, key(s.Keys.hash(hk.Period, hk.Hash)), end.Add(keep).Unix())
			}
		}
	}
	for p := range d.Peaks {
		if end, ok := d.Periods[p.Day]; ok {
			exp = append(exp, key(s.Keys.hash(p.Day, p.Gauge.Hash)), end.Add(ret.keep(p.Day)).Unix())
		}
	}
	args = append(args, len(exp)/2)
	args = append(args, exp...)
	var errs []any
	for _, e := range d.Errors {
		b, _ := json.Marshal(e.ErrorRecord)
		errs = append(errs, key(s.Keys.errors(e.Project)), string(b), key(s.Keys.errors(wildcard)), string(b))
	}
	args = append(args, len(errs)/2)
	args = append(args, errs...)
	latest := s.LatestErrors
	if latest <= 0 {
		latest = DefaultLatestErrors
	}
	args = append(args, latest)
	n, err := applyScript.Run(ctx, s.Client, keys, args...).Int()
	if err != nil {
		return fmt.Errorf("applying statistics: %w", err)
	}
	if n == 0 {
		return errNotOwner
	}
	return nil
}

// Apply implements Store (no stream entries to acknowledge).
func (s *RedisStore) Apply(ctx context.Context, d *Delta) error {
	return s.applyAcked(ctx, d, "", nil)
}

// Hashes implements Store.
func (s *RedisStore) Hashes(ctx context.Context, periods []string, hash string) ([]map[string]int64, error) {
	cmds := make([]*redis.MapStringStringCmd, len(periods))
	_, err := s.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, per := range periods {
			cmds[i] = p.HGetAll(ctx, s.Keys.hash(per, hash))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]map[string]int64, len(periods))
	for i, c := range cmds {
		m := c.Val()
		if len(m) == 0 {
			continue
		}
		out[i] = make(map[string]int64, len(m))
		for f, v := range m {
			n, _ := strconv.ParseInt(v, 10, 64)
			out[i][f] = n
		}
	}
	return out, nil
}

// Latest implements Store.
func (s *RedisStore) Latest(ctx context.Context, project string) ([]ErrorRecord, error) {
	vals, err := s.Client.LRange(ctx, s.Keys.errors(project), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]ErrorRecord, 0, len(vals))
	for _, v := range vals {
		var e ErrorRecord
		if json.Unmarshal([]byte(v), &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// JobOptions configure a RedisJob.
type JobOptions struct {
	// Consumer names this instance in the group (Caddy's instance id):
	// after a restart it re-reads what it had not acknowledged.
	Consumer string
	Batch    int64
	// ClaimIdle is how long an entry stays with a consumer that does not
	// acknowledge it before another takes it over. Default: 30s.
	ClaimIdle time.Duration
	// Linger is how long the job waits after a batch of fewer than Batch
	// entries before reading the next, so that one apply holds the
	// entries of many writes: Redis's cost is mostly per apply (one
	// HINCRBY per counter touched), not per record. It delays the
	// statistics by as much. Default: DefaultJobLinger; negative: none.
	Linger  time.Duration
	Backlog prometheus.Gauge
	Lag     prometheus.Gauge
	Counted prometheus.Counter
	Logger  *zap.Logger
}

// DefaultJobLinger is the job's default Linger.
const DefaultJobLinger = 250 * time.Millisecond

// RedisJob aggregates the stream: any number of instances may run it.
type RedisJob struct {
	store *RedisStore
	agg   Aggregator
	o     JobOptions
	stop  chan struct{}
	done  chan struct{}
}

// StartRedisJob starts the job's loop.
func StartRedisJob(store *RedisStore, agg Aggregator, o JobOptions) *RedisJob {
	if o.Batch <= 0 {
		o.Batch = 64 // entries, of up to recordsPerEntry records
	}
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = 30 * time.Second
	}
	if o.Linger == 0 {
		o.Linger = DefaultJobLinger
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	j := &RedisJob{store: store, agg: agg, o: o, stop: make(chan struct{}), done: make(chan struct{})}
	go j.loop()
	return j
}

// Stop ends the loop after the batch in hand (its read waits at most a
// second).
func (j *RedisJob) Stop() {
	close(j.stop)
	<-j.done
}

func (j *RedisJob) stopped() bool {
	select {
	case <-j.stop:
		return true
	default:
		return false
	}
}

// jobSlots lets one job loop per stream and consumer name run in a
// process at a time: a reload that changes the statistics settings
// starts the new pipeline's job before it stops the old one, and two
// loops under one consumer name could both apply a pending batch (the
// script's ownership check cannot tell them apart).
var jobSlots sync.Map // stream "\x00" consumer → chan struct{} (capacity 1)

func (j *RedisJob) loop() {
	defer close(j.done)
	v, _ := jobSlots.LoadOrStore(j.store.Keys.Stream()+"\x00"+j.o.Consumer, make(chan struct{}, 1))
	slot := v.(chan struct{})
	select {
	case slot <- struct{}{}:
		defer func() { <-slot }()
	case <-j.stop:
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-j.stop; cancel() }()
	c, stream := j.store.Client, j.store.Keys.Stream()
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-j.stop:
			return false
		case <-t.C:
			return true
		}
	}
	backoff := func() bool { return wait(time.Second) }
	for {
		err := c.XGroupCreateMkStream(ctx, stream, Group, "0").Err()
		if err == nil || strings.Contains(err.Error(), "BUSYGROUP") {
			break
		}
		j.o.Logger.Warn("statistics job: creating the consumer group failed", zap.Error(err))
		if !backoff() {
			return
		}
	}
	own := "0" // first what this consumer read before a restart
	lastClaim, lastGauge := time.Time{}, time.Time{}
	linger := false
	for !j.stopped() {
		if linger && j.o.Linger > 0 && !wait(j.o.Linger) {
			return
		}
		linger = false
		if time.Since(lastGauge) > 2*time.Second {
			lastGauge = time.Now()
			j.gauges(ctx)
		}
		var msgs []redis.XMessage
		var err error
		switch {
		case own != "":
			var res []redis.XStream
			res, err = c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: Group, Consumer: j.o.Consumer,
				Streams: []string{stream, own}, Count: j.o.Batch}).Result()
			if len(res) > 0 {
				msgs = res[0].Messages
			}
			if err == nil && len(msgs) == 0 {
				own = ""
				continue
			}
		case time.Since(lastClaim) > j.o.ClaimIdle/2:
			lastClaim = time.Now()
			start := "0-0"
			for !j.stopped() {
				var next string
				msgs, next, err = c.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: stream, Group: Group, Consumer: j.o.Consumer,
					MinIdle: j.o.ClaimIdle, Start: start, Count: j.o.Batch}).Result()
				if err != nil || len(msgs) == 0 {
					break
				}
				j.o.Logger.Info("statistics job: took over entries of a consumer that stopped", zap.Int("entries", len(msgs)))
				if err = j.process(ctx, msgs); err != nil {
					break
				}
				if next == "0-0" {
					break
				}
				start = next
			}
			msgs = nil
		default:
			var res []redis.XStream
			res, err = c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: Group, Consumer: j.o.Consumer,
				Streams: []string{stream, ">"}, Count: j.o.Batch, Block: time.Second}).Result()
			if errors.Is(err, redis.Nil) {
				err = nil
			}
			if len(res) > 0 {
				msgs = res[0].Messages
			}
			linger = len(msgs) > 0 && int64(len(msgs)) < j.o.Batch
		}
		if err == nil && len(msgs) > 0 {
			err = j.process(ctx, msgs)
			if own != "" && err == nil {
				own = msgs[len(msgs)-1].ID
			}
		}
		if err != nil && !j.stopped() {
			if errors.Is(err, errNotOwner) {
				continue
			}
			j.o.Logger.Warn("statistics job failed; retrying", zap.Error(err))
			if !backoff() {
				return
			}
			own = "0" // what was read and not applied is pending: re-read it
		}
	}
}

// process aggregates and applies one batch.
func (j *RedisJob) process(ctx context.Context, msgs []redis.XMessage) error {
	d := NewDelta()
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
		s, _ := m.Values["r"].(string)
		for s != "" {
			line := s
			if k := strings.IndexByte(s, '\n'); k >= 0 {
				line, s = s[:k], s[k+1:]
			} else {
				s = ""
			}
			// a malformed line is skipped (and acknowledged with its
			// entry): retrying it would never succeed
			if r, ok := parseWire(line); ok {
				j.agg.Add(d, &r)
			}
		}
	}
	if err := j.store.applyAcked(ctx, d, j.o.Consumer, ids); err != nil {
		return err
	}
	if j.o.Counted != nil {
		j.o.Counted.Add(float64(d.Records))
	}
	return nil
}

// gauges reads the stream's length and the group's lag for the metrics.
func (j *RedisJob) gauges(ctx context.Context) {
	c, stream := j.store.Client, j.store.Keys.Stream()
	if j.o.Backlog != nil {
		if n, err := c.XLen(ctx, stream).Result(); err == nil {
			j.o.Backlog.Set(float64(n))
		}
	}
	if j.o.Lag != nil {
		if gs, err := c.XInfoGroups(ctx, stream).Result(); err == nil {
			for _, g := range gs {
				if g.Name == Group {
					j.o.Lag.Set(float64(max(g.Lag, 0) + g.Pending))
				}
			}
		}
	}
}

var (
	_ Sink  = (*RedisWriter)(nil)
	_ Store = (*RedisStore)(nil)
)
