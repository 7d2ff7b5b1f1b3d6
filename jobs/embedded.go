package jobs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/elara-gateway/elara/limits"
)

// Embedded aggregates records in memory and adds them to its BoltStore
// every flush interval: a crash loses at most the records of one
// interval (and those still in the recorder's buffer). Reads see the
// stored aggregates plus what waits for the next flush.
type Embedded struct {
	store    *BoltStore
	agg      Aggregator
	interval time.Duration
	log      *zap.Logger
	now      func() time.Time
	counted  prometheus.Counter

	// rw orders flushes and reads: a read sees a delta either in the
	// store or in memory, never in both.
	rw      sync.RWMutex
	mu      sync.Mutex // guards pending
	pending *Delta
	// failed holds deltas a flush could not write, retried first.
	failed []*Delta

	stop      chan struct{}
	done      chan struct{}
	startOnce sync.Once
	started   bool // set once, under startOnce
}

// EmbeddedOptions configure Embedded.
type EmbeddedOptions struct {
	Days          limits.Days
	FlushInterval time.Duration
	LatestErrors  int
	Logger        *zap.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Aggregated counts the records aggregated; may be nil.
	Aggregated prometheus.Counter
}

// DefaultFlushInterval is how often embedded aggregates are written.
const DefaultFlushInterval = 5 * time.Second

// NewEmbedded returns the aggregator over store; Start starts its flush
// loop.
func NewEmbedded(store *BoltStore, o EmbeddedOptions) *Embedded {
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LatestErrors <= 0 {
		o.LatestErrors = DefaultLatestErrors
	}
	e := &Embedded{store: store, agg: Aggregator{Days: o.Days, LatestErrors: o.LatestErrors}, interval: o.FlushInterval,
		log: o.Logger, now: o.Now, counted: o.Aggregated, pending: NewDelta(), stop: make(chan struct{}), done: make(chan struct{})}
	return e
}

// Start starts the flush loop. store, when not nil, replaces the one
// given to NewEmbedded: the app opens the file only when a config starts
// (so `caddy validate` beside a running gateway does not wait for its
// lock).
func (e *Embedded) Start(store *BoltStore) {
	e.startOnce.Do(func() {
		if store != nil {
			e.rw.Lock()
			e.store = store
			e.rw.Unlock()
		}
		e.started = true
		go e.loop()
	})
}

// ErrNotStarted is a read of statistics whose store is not open yet.
var ErrNotStarted = errors.New("statistics store not open (config not started)")

// Write implements Sink.
func (e *Embedded) Write(recs []Record) {
	e.mu.Lock()
	for i := range recs {
		e.agg.Add(e.pending, &recs[i])
	}
	e.mu.Unlock()
	if e.counted != nil {
		e.counted.Add(float64(len(recs)))
	}
}

func (e *Embedded) loop() {
	defer close(e.done)
	t := time.NewTicker(e.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			e.Flush()
		case <-e.stop:
			return
		}
	}
}

// Flush writes what waits and prunes periods past their retention.
func (e *Embedded) Flush() {
	e.rw.Lock()
	defer e.rw.Unlock()
	e.mu.Lock()
	d := e.pending
	e.pending = NewDelta()
	e.mu.Unlock()
	if !d.Empty() {
		e.failed = append(e.failed, d)
	}
	if e.store == nil {
		return
	}
	for len(e.failed) > 0 {
		if err := e.store.Apply(context.Background(), e.failed[0]); err != nil {
			e.log.Error("writing statistics failed; kept in memory for the next flush", zap.Error(err))
			break
		}
		e.failed = e.failed[1:]
	}
	if n, err := e.store.Prune(e.now()); err != nil {
		e.log.Warn("statistics retention failed", zap.Error(err))
	} else if n > 0 {
		e.log.Debug("statistics periods past retention deleted", zap.Int("periods", n))
	}
}

// Close flushes and stops the loop.
func (e *Embedded) Close() {
	e.startOnce.Do(func() {})
	close(e.stop)
	if e.started {
		<-e.done
	}
	e.Flush()
}

// Apply implements Store (the Redis job's store interface; unused here).
func (e *Embedded) Apply(ctx context.Context, d *Delta) error {
	e.rw.RLock()
	defer e.rw.RUnlock()
	if e.store == nil {
		return ErrNotStarted
	}
	return e.store.Apply(ctx, d)
}

// Hashes reads the store plus the deltas not written yet.
func (e *Embedded) Hashes(ctx context.Context, periods []string, hash string) ([]map[string]int64, error) {
	e.rw.RLock()
	defer e.rw.RUnlock()
	if e.store == nil {
		return nil, ErrNotStarted
	}
	out, err := e.store.Hashes(ctx, periods, hash)
	if err != nil {
		return nil, err
	}
	var current []map[string]int64 // the gauges' stored current values, for peaks
	if strings.HasPrefix(hash, "g|") {
		if current, err = e.store.Hashes(ctx, []string{periodAll}, hash); err != nil {
			return nil, err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pending.Settle()
	for _, d := range append(append([]*Delta(nil), e.failed...), e.pending) {
		for i, p := range periods {
			for f, n := range d.Incr[HashKey{p, hash}] {
				if out[i] == nil {
					out[i] = map[string]int64{}
				}
				out[i][f] += n
			}
		}
		for pk, maxNet := range d.Peaks {
			if pk.Gauge.Hash != hash {
				continue
			}
			for i, p := range periods {
				if p != pk.Day {
					continue
				}
				v := current[0][pk.Field] + maxNet
				if out[i] == nil {
					out[i] = map[string]int64{}
				}
				if v > out[i][pk.Field+peakSuffix] {
					out[i][pk.Field+peakSuffix] = v
				}
			}
		}
		if current != nil {
			for f, n := range d.Incr[HashKey{periodAll, hash}] {
				if current[0] == nil {
					current[0] = map[string]int64{}
				}
				current[0][f] += n
			}
		}
	}
	return out, nil
}

// Latest reads the stored errors and those not written yet.
func (e *Embedded) Latest(ctx context.Context, project string) ([]ErrorRecord, error) {
	e.rw.RLock()
	defer e.rw.RUnlock()
	if e.store == nil {
		return nil, ErrNotStarted
	}
	list, err := e.store.Latest(ctx, project)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var add []ErrorRecord // oldest first
	for _, d := range append(append([]*Delta(nil), e.failed...), e.pending) {
		for _, le := range d.Errors {
			if project == wildcard || le.Project == project {
				add = append(add, le.ErrorRecord)
			}
		}
	}
	return newestFirst(add, list, e.agg.LatestErrors), nil
}

var (
	_ Sink  = (*Embedded)(nil)
	_ Store = (*Embedded)(nil)
)
