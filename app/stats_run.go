package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/elara-gateway/elara/jobs"
	"github.com/elara-gateway/elara/limits"
)

// statsPool keeps the statistics pipeline across config reloads with the
// same settings (the records waiting must not be lost), statsBoltPool
// the bolt file by directory (bbolt opens a file once per process).
var (
	statsPool     = caddy.NewUsagePool()
	statsBoltPool = caddy.NewUsagePool()
)

type statsBolt struct{ *jobs.BoltStore }

func (b statsBolt) Destruct() error { return b.Close() }

// statsShared is one running statistics pipeline: the recorder, where it
// writes, and the reader.
type statsShared struct {
	recorder *jobs.Recorder
	reader   jobs.Reader
	// starters start the goroutines, once, when the first config using
	// the pipeline starts (Provision only builds).
	starters []func()
	once     sync.Once
	closers  []func() // in order, after the recorder

	// holds keep the pipeline running: the pool's usage counts as one,
	// every WebSocket session bound to a config using it as one more
	// (see App.HoldStats). The last release closes it, so the records of
	// sessions that end after their config's cleanup (caddy stop closes
	// them then) are written too.
	mu     sync.Mutex
	holds  int
	closed bool
}

// hold adds a hold on the pipeline; release drops it, once.
func (s *statsShared) hold() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return func() {}
	}
	s.holds++
	var once sync.Once
	return func() { once.Do(s.release) }
}

func (s *statsShared) release() {
	s.mu.Lock()
	s.holds--
	last := s.holds == 0 && !s.closed
	if last {
		s.closed = true
	}
	s.mu.Unlock()
	if last {
		s.shutdown()
	}
}

func (s *statsShared) start() {
	s.once.Do(func() {
		for _, f := range s.starters {
			f()
		}
	})
}

// Destruct drops the pool's hold: the pipeline closes now, or when the
// last session holding it ends.
func (s *statsShared) Destruct() error {
	s.release()
	return nil
}

// shutdown writes what was recorded and closes the stores.
func (s *statsShared) shutdown() {
	s.once.Do(func() {}) // never started: nothing to start now
	s.recorder.Close()
	for _, c := range s.closers {
		c()
	}
}

// Statistics metrics, process-wide like the pipeline.
var statsMetrics = sync.OnceValue(func() *statsCollectors {
	return &statsCollectors{
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "elara", Subsystem: "stats", Name: "records_dropped_total",
			Help: "Statistics records dropped: the recording buffer was full, the pipeline closed, or Redis could not take them."}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "elara", Subsystem: "stats", Name: "stream_backlog",
			Help: "Entries in the Redis statistics stream (store redis)."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "elara", Subsystem: "stats", Name: "consumer_lag",
			Help: "Statistics stream entries not yet read by the job's consumer group, plus those read and not acknowledged (store redis)."}),
		aggregated: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "elara", Subsystem: "stats", Name: "records_aggregated_total",
			Help: "Statistics records this instance aggregated."}),
		projectCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "elara", Subsystem: "stats", Name: "project_calls_total",
			Help: "Client calls by chain, project and outcome (stats project_label on)."}, []string{"chain", "project", "outcome"}),
	}
})

type statsCollectors struct {
	dropped      prometheus.Counter
	backlog      prometheus.Gauge
	lag          prometheus.Gauge
	aggregated   prometheus.Counter
	projectCalls *prometheus.CounterVec
}

func (m *statsCollectors) register(reg prometheus.Registerer, projectLabel bool) error {
	cs := []prometheus.Collector{m.dropped, m.backlog, m.lag, m.aggregated}
	if projectLabel {
		cs = append(cs, m.projectCalls)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// Recorder records the calls of this config; nil while statistics are
// off. Recording never blocks.
func (a *App) Recorder() *jobs.Recorder {
	if a.stats == nil {
		return nil
	}
	return a.stats.recorder
}

// statsDays is the day boundary of statistics: the one quotas use.
func (a *App) statsDays() (limits.Days, error) {
	zone := ""
	if a.Projects != nil {
		zone = a.Projects.TimeZone
	}
	loc, err := limits.ParseZone(zone)
	if err != nil {
		return limits.Days{}, fmt.Errorf("stats: %w", err)
	}
	return limits.NewDays(loc), nil
}

// provisionStats sets the defaults and opens (or reuses) the pipeline.
func (a *App) provisionStats(ctx caddy.Context) error {
	if a.Stats == nil {
		a.Stats = new(StatsConfig) // on by default, like the cache
	}
	sc := a.Stats
	if sc.Disabled {
		return nil
	}
	if sc.Store == "" {
		sc.Store = StatsStoreBolt
		if a.Redis != nil {
			sc.Store = StatsStoreRedis
		}
	}
	if sc.Store == StatsStoreRedis && a.redis == nil {
		return fmt.Errorf("stats: store redis needs the app's redis option")
	}
	if sc.Store == StatsStoreBolt && sc.Dir == "" {
		sc.Dir = filepath.Join(caddy.AppDataDir(), "elara")
	}
	if sc.Prefix == "" {
		sc.Prefix = "elara:"
	}
	if sc.FlushInterval == 0 {
		sc.FlushInterval = caddy.Duration(jobs.DefaultFlushInterval)
	}
	if sc.HourlyRetention == 0 {
		sc.HourlyRetention = caddy.Duration(jobs.DefaultHourlyRetention)
	}
	if sc.DailyRetention == 0 {
		sc.DailyRetention = caddy.Duration(jobs.DefaultDailyRetention)
	}
	if sc.LatestErrors == 0 {
		sc.LatestErrors = jobs.DefaultLatestErrors
	}
	if sc.Buffer == 0 {
		sc.Buffer = jobs.DefaultBuffer
	}
	days, err := a.statsDays()
	if err != nil {
		return err
	}
	m := statsMetrics()
	if err := m.register(ctx.GetMetricsRegistry(), sc.ProjectLabel); err != nil {
		return fmt.Errorf("stats metrics: %w", err)
	}
	keyJSON, err := json.Marshal(struct {
		S    *StatsConfig
		R    string
		Zone string
	}{sc, a.redisKey, days.Location().String()})
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	key := string(keyJSON)
	log := a.log.Named("stats")
	val, _, err := statsPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		return a.newStats(sc, days, log)
	})
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	a.stats = val.(*statsShared)
	a.statsKey = key
	return nil
}

// newStats builds a pipeline.
func (a *App) newStats(sc *StatsConfig, days limits.Days, log *zap.Logger) (*statsShared, error) {
	m := statsMetrics()
	var geo *jobs.Geo
	if sc.GeoIP != "" {
		g, err := jobs.OpenGeo(caddy.NewReplacer().ReplaceKnown(sc.GeoIP, ""))
		if err != nil {
			return nil, err
		}
		geo = g
	}
	sh := &statsShared{holds: 1} // the pool's
	retention := jobs.Retention{Hourly: time.Duration(sc.HourlyRetention), Daily: time.Duration(sc.DailyRetention)}
	var sink jobs.Sink
	var linger time.Duration
	switch sc.Store {
	case StatsStoreRedis:
		rs, err := a.newRedisStats(sc, days, retention, log)
		if err != nil {
			_ = geo.Close()
			return nil, err
		}
		sink = rs.writer
		// Fewer, larger batches: each write costs the gateway and Redis
		// about as much as the records it carries once coalesced.
		linger = 100 * time.Millisecond
		sh.reader = &jobs.StoreReader{Store: rs.store, Days: days}
		sh.starters = append(sh.starters, rs.start)
		sh.closers = append(sh.closers, rs.close)
	default:
		emb := jobs.NewEmbedded(nil, jobs.EmbeddedOptions{Days: days,
			FlushInterval: time.Duration(sc.FlushInterval), LatestErrors: sc.LatestErrors, Logger: log,
			Aggregated: m.aggregated})
		sink = emb
		sh.reader = &jobs.StoreReader{Store: emb, Days: days}
		dir := sc.Dir
		opened := false
		// The file is opened when the config starts, not when it is
		// provisioned: bbolt locks it, and `caddy validate` next to a
		// running gateway would wait for the lock.
		sh.starters = append(sh.starters, func() {
			bval, _, err := statsBoltPool.LoadOrNew(dir, func() (caddy.Destructor, error) {
				st, err := jobs.OpenBolt(dir, retention, sc.LatestErrors)
				if err != nil {
					return nil, err
				}
				return statsBolt{st}, nil
			})
			if err != nil {
				log.Error("statistics file could not be opened: aggregates are kept in memory only, until the next start", zap.Error(err))
				emb.Start(nil)
				return
			}
			opened = true
			emb.Start(bval.(statsBolt).BoltStore)
		})
		sh.closers = append(sh.closers, emb.Close, func() {
			if opened {
				_, _ = statsBoltPool.Delete(dir)
			}
		})
	}
	if sc.ProjectLabel {
		sink = projectLabelSink{next: sink, calls: m.projectCalls}
	}
	sh.closers = append(sh.closers, func() { _ = geo.Close() })
	sh.recorder = jobs.NewRecorder(sink, jobs.RecorderOptions{Buffer: sc.Buffer, Geo: geo, Dropped: m.dropped, Logger: log, Linger: linger})
	sh.starters = append(sh.starters, sh.recorder.Start)
	return sh, nil
}

// projectLabelSink counts calls by project for Prometheus on the
// recorder's goroutine, not the call's.
type projectLabelSink struct {
	next  jobs.Sink
	calls *prometheus.CounterVec
}

func (s projectLabelSink) Write(recs []jobs.Record) {
	for i := range recs {
		if r := &recs[i]; r.Kind == jobs.KindCall {
			s.calls.WithLabelValues(r.Chain, r.Project, r.Outcome).Inc()
		}
	}
	s.next.Write(recs)
}

func (a *App) startStats() {
	if a.stats != nil {
		a.stats.start()
		r := a.stats.reader
		a.statsCurrent = &r // this config's own slot: a reload's next config has another
		currentStats.Store(a.statsCurrent)
	}
}

func (a *App) stopStats() {
	if a.statsCurrent != nil {
		// Only if no newer config took over (a reload starts the next
		// config before it stops this one).
		currentStats.CompareAndSwap(a.statsCurrent, nil)
	}
}

// HoldStats keeps this config's statistics pipeline running until
// release is called, past the config's Cleanup: a WebSocket session
// holds it until its end is recorded (caddy stop cleans the app up,
// possibly before the handlers close the sessions). release must be
// called once; it may close the pipeline (writing what waits), so not
// under a lock others need. Without statistics it does nothing.
func (a *App) HoldStats() (release func()) {
	if a.stats == nil {
		return func() {}
	}
	return a.stats.hold()
}

func (a *App) cleanupStats() {
	// a.stats stays: WebSocket sessions of this config may still record
	// their end (they hold the pipeline: HoldStats).
	if a.statsKey != "" {
		_, _ = statsPool.Delete(a.statsKey)
		a.statsKey = ""
	}
}
