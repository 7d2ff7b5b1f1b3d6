package jobs

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Sink takes batches of records off the recorder's goroutine: the
// embedded aggregator, or the writer of the Redis stream. The slice is
// reused after Write returns.
type Sink interface {
	Write(recs []Record)
}

// RecorderOptions configure a Recorder.
type RecorderOptions struct {
	// Buffer is how many records may wait; more are dropped (counted).
	// Default: 65536.
	Buffer int
	// Geo resolves client addresses to countries; nil: "unknown" (and
	// "local" for loopback and private addresses).
	Geo *Geo
	// Dropped counts the records dropped; may be nil.
	Dropped prometheus.Counter
	Logger  *zap.Logger
	// Linger is how long the recorder waits after a batch smaller than
	// the largest before taking the next, so that records arrive at the
	// sink in fewer, larger batches (one XADD each for Redis).
	Linger time.Duration
}

// DefaultBuffer is the default bound of records waiting.
const DefaultBuffer = 1 << 16

// Recorder takes records from the calls' goroutines without blocking
// them: a bounded channel of values (no allocation per record) drained
// by one goroutine into the sink in batches.
type Recorder struct {
	ch      chan Record
	sink    Sink
	geo     *Geo
	dropped atomic.Int64
	metric  prometheus.Counter
	log     *zap.Logger
	// lastDropLog is when a drop was last logged (unix nanos): at most
	// one line every 10s.
	lastDropLog atomic.Int64
	linger      time.Duration
	stop        chan struct{}
	done        chan struct{}
	once        sync.Once
	startOnce   sync.Once
	started     atomic.Bool
	// mu orders Record's check and send before Close: a record that
	// passed the check is in the buffer before run drains it for the
	// last time. Record holds the read lock (no contention among calls).
	mu     sync.RWMutex
	closed bool
}

// NewRecorder returns a recorder feeding sink; Start starts it.
func NewRecorder(sink Sink, o RecorderOptions) *Recorder {
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	r := &Recorder{ch: make(chan Record, o.Buffer), sink: sink, geo: o.Geo, metric: o.Dropped, log: o.Logger, linger: o.Linger,
		stop: make(chan struct{}), done: make(chan struct{})}
	return r
}

// Start starts the goroutine that drains the buffer into the sink.
func (r *Recorder) Start() {
	r.startOnce.Do(func() {
		r.started.Store(true)
		go r.run()
	})
}

// Record queues rec, or drops and counts it when the buffer is full or
// the recorder closed: recording never blocks a call. A nil Recorder
// records nothing.
func (r *Recorder) Record(rec Record) {
	if r == nil {
		return
	}
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		r.drop()
		return
	}
	select {
	case r.ch <- rec:
	default:
		r.drop()
	}
	r.mu.RUnlock()
}

func (r *Recorder) drop() {
	n := r.dropped.Add(1)
	if r.metric != nil {
		r.metric.Inc()
	}
	now := time.Now().UnixNano()
	last := r.lastDropLog.Load()
	if now-last >= int64(10*time.Second) && r.lastDropLog.CompareAndSwap(last, now) {
		r.log.Warn("statistics buffer full or closed: records dropped (elara_stats_records_dropped_total)",
			zap.Int64("dropped_total", n), zap.Int("buffer", cap(r.ch)))
	}
}

// Dropped is how many records were dropped so far.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Pending is how many records wait in the buffer.
func (r *Recorder) Pending() int { return len(r.ch) }

// batchMax bounds one batch handed to the sink.
const batchMax = 1024

func (r *Recorder) run() {
	defer close(r.done)
	batch := make([]Record, 0, batchMax)
	for {
		select {
		case rec := <-r.ch:
			batch = append(batch[:0], rec)
		drain:
			for len(batch) < batchMax {
				select {
				case rec := <-r.ch:
					batch = append(batch, rec)
				default:
					break drain
				}
			}
			r.write(batch)
			if r.linger > 0 && len(batch) < batchMax {
				select {
				case <-time.After(r.linger):
				case <-r.stop:
				}
			}
		case <-r.stop:
			// What was recorded before Close still goes to the sink.
			for {
				batch = batch[:0]
				for len(batch) < batchMax {
					select {
					case rec := <-r.ch:
						batch = append(batch, rec)
						continue
					default:
					}
					break
				}
				if len(batch) == 0 {
					return
				}
				r.write(batch)
			}
		}
	}
}

func (r *Recorder) write(batch []Record) {
	// A connection's calls come in runs from one address: each run is
	// looked up once.
	var lastIP, lastCountry string
	for i := range batch {
		rec := &batch[i]
		if rec.Kind == KindCall && rec.Country == "" {
			if lastCountry == "" || rec.ClientIP != lastIP {
				lastIP, lastCountry = rec.ClientIP, r.geo.Country(rec.ClientIP)
			}
			rec.Country = lastCountry
		}
		rec.ClientIP = "" // not kept past here
	}
	r.sink.Write(batch)
}

// Close stops the recorder once the records queued so far reached the
// sink.
func (r *Recorder) Close() {
	if r == nil {
		return
	}
	r.startOnce.Do(func() {}) // a recorder never started stays so
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		close(r.stop)
		r.mu.Unlock()
	})
	if r.started.Load() {
		<-r.done
	}
}
