package jobs

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/elara-gateway/elara/limits"
)

func mustZone(t *testing.T, s string) limits.Days {
	t.Helper()
	loc, err := limits.ParseZone(s)
	if err != nil {
		t.Fatal(err)
	}
	return limits.NewDays(loc)
}

// newEmbedded is an embedded pipeline over a fresh bolt file in dir,
// with a clock the test moves.
func newEmbedded(t *testing.T, dir string, days limits.Days, clock *time.Time, ret Retention) (*Embedded, *StoreReader, *BoltStore) {
	t.Helper()
	st, err := OpenBolt(dir, ret, 5)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return *clock }
	e := NewEmbedded(st, EmbeddedOptions{Days: days, FlushInterval: time.Hour, LatestErrors: 5, Now: now})
	e.Start(nil)
	return e, &StoreReader{Store: e, Days: days, Now: now}, st
}

func call(at time.Time, chain, project, method string, outcome string, code int, latency time.Duration, in, out int64, hit bool) Record {
	return Record{Time: at, Kind: KindCall, Chain: chain, Project: project, Method: method, Transport: "http",
		Outcome: outcome, Code: code, Latency: latency, BytesIn: in, BytesOut: out, CacheHit: hit, Country: "DE"}
}

// TestAggregatesExact sends many random calls and checks every aggregate
// against totals kept by hand, before and after the flush.
func TestAggregatesExact(t *testing.T) {
	clock := time.Date(2026, 12, 6, 10, 30, 0, 0, time.UTC)
	e, rd, st := newEmbedded(t, t.TempDir(), limits.NewDays(time.UTC), &clock, Retention{})
	defer st.Close()
	defer e.Close()
	ctx := context.Background()
	type want struct{ calls, errs, in, out, hits int64 }
	per := map[[2]string]*want{}
	methods := map[string]int64{}
	codes := map[string]int64{}
	rng := rand.New(rand.NewPCG(1, 2))
	chains, projs := []string{"a", "b"}, []string{"public", "0123456789abcdef0123456789abcdef"}
	var batch []Record
	for i := range 5000 {
		ch, pr := chains[rng.IntN(2)], projs[rng.IntN(2)]
		m := []string{"chain_getBlock", "state_getStorage", "other"}[rng.IntN(3)]
		r := call(clock.Add(-time.Duration(rng.IntN(3600))*time.Second), ch, pr, m, OutcomeOK, 0,
			time.Duration(rng.IntN(100))*time.Millisecond, int64(rng.IntN(100)), int64(rng.IntN(1000)), rng.IntN(3) == 0)
		if i%7 == 0 {
			r.Outcome, r.Code = OutcomeError, -32601
			codes["-32601"]++
		} else if i%11 == 0 {
			r.Outcome = OutcomeLimited
			codes["limited"]++
		}
		for _, k := range [][2]string{{ch, pr}, {ch, "*"}, {"*", pr}, {"*", "*"}} {
			w := per[k]
			if w == nil {
				w = &want{}
				per[k] = w
			}
			w.calls++
			w.in += r.BytesIn
			w.out += r.BytesOut
			if r.Outcome != OutcomeOK {
				w.errs++
			}
			if r.CacheHit {
				w.hits++
			}
		}
		methods[m]++
		batch = append(batch, r)
	}
	e.Write(batch)
	check := func(stage string) {
		for k, w := range per {
			q := Query{Chain: k[0], Project: k[1]}
			if q.Chain == "*" {
				q.Chain = ""
			}
			if q.Project == "*" {
				q.Project = ""
			}
			s, err := rd.Summary(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for name, tot := range map[string]Totals{"today": s.Today, "total": s.Total} {
				got := want{tot.Calls, tot.Errors, tot.BytesIn, tot.BytesOut, tot.CacheHits}
				if got != *w {
					t.Errorf("%s %v %s: got %+v, want %+v", stage, k, name, got, *w)
				}
			}
			ser, err := rd.Series(ctx, q, "hour", clock.Add(-2*time.Hour), clock)
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			for _, p := range ser.Points {
				sum += p.Calls
			}
			if sum != w.calls || len(ser.Points) != 3 {
				t.Errorf("%s %v: hourly series sums to %d over %d points, want %d over 3", stage, k, sum, len(ser.Points), w.calls)
			}
		}
		ms, err := rd.Methods(ctx, Query{}, clock)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Calls != methods[m.Method] {
				t.Errorf("%s method %s: %d calls, want %d", stage, m.Method, m.Calls, methods[m.Method])
			}
		}
		s, _ := rd.Summary(ctx, Query{})
		for c, n := range codes {
			if s.ErrorsByCode[c] != n {
				t.Errorf("%s errors by code %s: %d, want %d", stage, c, s.ErrorsByCode[c], n)
			}
		}
		errs, _ := rd.Errors(ctx, "")
		if len(errs) != 5 {
			t.Errorf("%s latest errors: %d, want the 5 kept", stage, len(errs))
		}
		cs, _ := rd.Countries(ctx, "", clock)
		if len(cs) != 1 || cs[0].Country != "DE" || cs[0].Calls != 5000 {
			t.Errorf("%s countries: %+v", stage, cs)
		}
	}
	check("in memory")
	e.Flush()
	check("stored")
	e.Write(batch[:1])
	e.Flush()
	if s, _ := rd.Summary(ctx, Query{}); s.Total.Calls != 5001 {
		t.Errorf("a second flush adds: %d calls, want 5001", s.Total.Calls)
	}
}

func TestPercentiles(t *testing.T) {
	tests := []struct {
		name          string
		latencies     []time.Duration
		p50, p95, p99 time.Duration // true values; the bucket bound is >= and at most 19% above
	}{
		{"uniform 1..100ms", seq(100, time.Millisecond), 50 * time.Millisecond, 95 * time.Millisecond, 99 * time.Millisecond},
		{"one slow call in 100", append(seq(99, 0)[:99:99], 2*time.Second), 0, 0, 0},
		{"all 300ms", repeat(1000, 300*time.Millisecond), 300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h [histBuckets]int64
			for _, d := range tc.latencies {
				h[histBucket(d)]++
			}
			for _, c := range []struct {
				q    float64
				want time.Duration
			}{{.5, tc.p50}, {.95, tc.p95}, {.99, tc.p99}} {
				got := percentile(&h, c.q)
				wantMs := float64(c.want) / float64(time.Millisecond)
				lo := max(wantMs, 0.1)
				if got < lo-1e-9 || got > lo*1.19 {
					t.Errorf("p%v = %vms, want within [%v, %v]", c.q*100, got, lo, lo*1.19)
				}
			}
		})
	}
	var empty [histBuckets]int64
	if percentile(&empty, .99) != 0 {
		t.Error("no calls: percentile not 0")
	}
	for _, d := range []time.Duration{0, time.Microsecond, histBase, histBase + 1, time.Second, time.Hour} {
		i := histBucket(d)
		if d > histBounds[i] || (i > 0 && d <= histBounds[i-1]) {
			t.Errorf("%v in bucket %d (%v..%v]", d, i, histBounds[max(i-1, 0)], histBounds[i])
		}
	}
}

func seq(n int, step time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * step
	}
	return out
}

func repeat(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

// TestDayAndHourBoundariesInZone: calls on both sides of midnight in the
// quotas' zone count on their own days and hours, there and not in UTC.
func TestDayAndHourBoundariesInZone(t *testing.T) {
	tests := []struct {
		zone          string
		before, after time.Time // around the zone's midnight
		dayBefore     string
		dayAfter      string
	}{
		{"UTC+8", time.Date(2026, 12, 6, 15, 59, 0, 0, time.UTC), time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC), "2026-12-06", "2026-12-07"},
		{"Asia/Kolkata", time.Date(2026, 12, 6, 18, 29, 0, 0, time.UTC), time.Date(2026, 12, 6, 18, 30, 0, 0, time.UTC), "2026-12-06", "2026-12-07"},
		{"America/New_York", time.Date(2026, 3, 8, 4, 59, 0, 0, time.UTC), time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC), "2026-03-07", "2026-03-08"},
	}
	for _, tc := range tests {
		t.Run(tc.zone, func(t *testing.T) {
			days := mustZone(t, tc.zone)
			clock := tc.after
			e, rd, st := newEmbedded(t, t.TempDir(), days, &clock, Retention{})
			defer st.Close()
			defer e.Close()
			e.Write([]Record{call(tc.before, "a", "public", "other", OutcomeOK, 0, 0, 0, 0, false),
				call(tc.after, "a", "public", "other", OutcomeOK, 0, 0, 0, 0, false),
				call(tc.after.Add(time.Minute), "a", "public", "other", OutcomeOK, 0, 0, 0, 0, false)})
			e.Flush()
			ctx := context.Background()
			s, _ := rd.Summary(ctx, Query{})
			if s.Day != tc.dayAfter || s.Today.Calls != 2 || s.Total.Calls != 3 {
				t.Errorf("summary: day %s today %d total %d; want %s, 2, 3", s.Day, s.Today.Calls, s.Total.Calls, tc.dayAfter)
			}
			ser, _ := rd.Series(ctx, Query{}, "day", tc.before, tc.after)
			if len(ser.Points) != 2 || ser.Points[0].Calls != 1 || ser.Points[1].Calls != 2 ||
				days.Key(ser.Points[0].Time) != tc.dayBefore || !ser.Points[1].Time.Equal(days.Start(tc.after)) {
				t.Errorf("daily series: %+v", ser.Points)
			}
			hs, _ := rd.Series(ctx, Query{}, "hour", tc.before, tc.after)
			if len(hs.Points) != 2 || hs.Points[0].Calls != 1 || hs.Points[1].Calls != 2 || !hs.Points[1].Time.Equal(tc.after) {
				t.Errorf("hourly series: %+v", hs.Points)
			}
		})
	}
}

// TestRetention: hourly periods go after the hourly retention, daily
// ones after the daily, totals stay; what is deleted is whole periods.
func TestRetention(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := start
	e, rd, st := newEmbedded(t, dir, limits.NewDays(time.UTC), &clock, Retention{Hourly: 2 * time.Hour, Daily: 48 * time.Hour})
	defer st.Close()
	defer e.Close()
	ctx := context.Background()
	e.Write([]Record{call(start, "a", "public", "other", OutcomeOK, 0, 0, 0, 0, false)})
	e.Flush()
	hourly := func() int64 {
		s, _ := rd.Series(ctx, Query{}, "hour", start, start)
		return s.Points[0].Calls
	}
	daily := func() int64 {
		s, _ := rd.Series(ctx, Query{}, "day", start, start)
		return s.Points[0].Calls
	}
	steps := []struct {
		at            time.Duration
		hourly, daily int64
	}{
		{2*time.Hour + 59*time.Minute, 1, 1}, // the hour ended at 11:00; kept until 13:00
		{3 * time.Hour, 0, 1},
		{61*time.Hour + 59*time.Minute, 0, 1}, // the day ended 2026-12-02 00:00 (+14h); kept 48h
		{62 * time.Hour, 0, 0},
	}
	for _, s := range steps {
		clock = start.Add(s.at)
		e.Flush()
		if h, d := hourly(), daily(); h != s.hourly || d != s.daily {
			t.Errorf("at +%v: hourly %d daily %d, want %d %d", s.at, h, d, s.hourly, s.daily)
		}
	}
	if sum, _ := rd.Summary(ctx, Query{}); sum.Total.Calls != 1 {
		t.Errorf("all-time total: %d, want 1 (never expires)", sum.Total.Calls)
	}
}

// TestEmbeddedSurvivesRestart: what was flushed is read back by a new
// store over the same file; connections and subscriptions open now start
// from zero (a process starting holds none), their peaks of the day stay.
func TestEmbeddedSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	clock := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	e, _, st := newEmbedded(t, dir, limits.NewDays(time.UTC), &clock, Retention{})
	e.Write([]Record{call(clock, "a", "public", "other", OutcomeOK, 0, 0, 3, 4, false),
		{Time: clock, Kind: KindConnect, Chain: "a", Project: "public"},
		{Time: clock, Kind: KindSubOpen, Chain: "a", Project: "public", Count: 2}})
	e.Close() // flushes
	st.Close()
	e2, rd, st2 := newEmbedded(t, dir, limits.NewDays(time.UTC), &clock, Retention{})
	defer st2.Close()
	defer e2.Close()
	s, err := rd.Summary(context.Background(), Query{Chain: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Calls != 1 || s.Total.BytesIn != 3 || s.Total.BytesOut != 4 || s.Connections != (Gauge{0, 1}) || s.Subscriptions != (Gauge{0, 2}) {
		t.Errorf("after restart: %+v", s)
	}
}

// TestGaugePeaks: the peak of the day is the highest count reached, even
// within one batch.
func TestGaugePeaks(t *testing.T) {
	clock := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	e, rd, st := newEmbedded(t, t.TempDir(), limits.NewDays(time.UTC), &clock, Retention{})
	defer st.Close()
	defer e.Close()
	ev := func(k Kind) Record { return Record{Time: clock, Kind: k, Chain: "a", Project: "public"} }
	e.Write([]Record{ev(KindConnect), ev(KindConnect), ev(KindConnect), ev(KindDisconnect), ev(KindDisconnect)})
	check := func(stage string, want Gauge) {
		s, _ := rd.Summary(context.Background(), Query{})
		if s.Connections != want {
			t.Errorf("%s: connections %+v, want %+v", stage, s.Connections, want)
		}
	}
	check("in memory", Gauge{1, 3})
	e.Flush()
	check("stored", Gauge{1, 3})
	e.Write([]Record{ev(KindConnect), ev(KindConnect), ev(KindConnect)})
	check("second batch in memory", Gauge{4, 4})
	e.Flush()
	check("second batch stored", Gauge{4, 4})
}

// testMMDB is the CC0 country database the e2e npm install brings.
func testMMDB(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "e2e", "testdata", "node_modules", "@ip-location-db",
		"geo-whois-asn-country-mmdb", "geo-whois-asn-country.mmdb")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("ELARA_REQUIRE_E2E") != "" {
			t.Fatalf("country database missing (%v): run npm ci in e2e/testdata", err)
		}
		t.Skipf("country database missing (%v): run npm ci in e2e/testdata", err)
	}
	return p
}

func TestCountryLookup(t *testing.T) {
	g, err := OpenGeo(testMMDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tests := []struct{ ip, want string }{
		{"8.8.8.8", "US"},
		{"8.8.8.8:443", "US"},
		{"2001:4860:4860::8888", "US"},
		{"[2001:4860:4860::8888]:443", "US"},
		{"::ffff:8.8.8.8", "US"},
		{"127.0.0.1", CountryLocal},
		{"::1", CountryLocal},
		{"10.1.2.3", CountryLocal},
		{"192.168.1.1:5000", CountryLocal},
		{"fd00::1", CountryLocal},
		{"fe80::1%eth0", CountryLocal},
		{"not an ip", CountryUnknown},
		{"", CountryUnknown},
	}
	for _, tc := range tests {
		if got := g.Country(tc.ip); got != tc.want {
			t.Errorf("Country(%q) = %q, want %q", tc.ip, got, tc.want)
		}
	}
	var none *Geo
	if got := none.Country("8.8.8.8"); got != CountryUnknown {
		t.Errorf("no database: %q, want unknown", got)
	}
	if got := none.Country("127.0.0.1"); got != CountryLocal {
		t.Errorf("no database, loopback: %q, want local", got)
	}
}

// TestRecorderDropsWhenFull: a full buffer drops and counts, never
// blocks; what fits reaches the sink.
func TestRecorderDropsWhenFull(t *testing.T) {
	block := make(chan struct{})
	s := &countSink{block: block, entered: make(chan struct{})}
	r := NewRecorder(s, RecorderOptions{Buffer: 10})
	r.Start()
	// The first record's batch is in the sink, which blocks: from here
	// on only the buffer's 10 can wait.
	r.Record(Record{Kind: KindCall})
	<-s.entered
	for range 99 {
		r.Record(Record{Kind: KindCall})
	}
	close(block)
	r.Close()
	if got := s.n + r.Dropped(); got != 100 {
		t.Fatalf("written %d + dropped %d != 100", s.n, r.Dropped())
	}
	if r.Dropped() < 89 {
		t.Errorf("dropped %d, want at least 89 with a buffer of 10 and a blocked sink", r.Dropped())
	}
}

type countSink struct {
	block   chan struct{}
	entered chan struct{} // closed on the first Write
	n       int64
}

func (c *countSink) Write(recs []Record) {
	if c.n == 0 {
		close(c.entered)
	}
	<-c.block
	c.n += int64(len(recs))
}
