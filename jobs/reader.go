package jobs

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/elara-gateway/elara/limits"
)

// MaxSeriesPoints bounds one Series read.
const MaxSeriesPoints = 24 * 92

// ErrBadQuery is a read the aggregates cannot answer (a series too long,
// an unknown "by"): the caller's mistake.
var ErrBadQuery = errors.New("bad statistics query")

// StoreReader is the Reader over a Store.
type StoreReader struct {
	Store Store
	Days  limits.Days
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

func (s *StoreReader) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func names(q Query) (chain, project string) {
	chain, project = q.Chain, q.Project
	if chain == "" {
		chain = wildcard
	}
	if project == "" {
		project = wildcard
	}
	return chain, project
}

// totals reads a c| hash.
func totals(m map[string]int64) Totals {
	t := Totals{Calls: m[fCalls], Errors: m[fErrors], BytesIn: m[fBytesIn], BytesOut: m[fBytesOut], CacheHits: m[fHits],
		Notifications: m[fNotes], NotificationBytes: m[fNoteBytes]}
	var h [histBuckets]int64
	for i, f := range histFields {
		h[i] = m[f]
	}
	t.P50Ms, t.P95Ms, t.P99Ms = percentile(&h, .50), percentile(&h, .95), percentile(&h, .99)
	if t.Calls > 0 {
		t.CacheHitRatio = float64(t.CacheHits) / float64(t.Calls)
	}
	return t
}

// Summary implements Reader.
func (s *StoreReader) Summary(ctx context.Context, q Query) (Summary, error) {
	now := s.now()
	chain, project := names(q)
	day := dayPeriod(s.Days, now)
	c, err := s.Store.Hashes(ctx, []string{day, periodAll}, "c|"+chain+"|"+project)
	if err != nil {
		return Summary{}, err
	}
	g, err := s.Store.Hashes(ctx, []string{day, periodAll}, "g|"+chain+"|"+project)
	if err != nil {
		return Summary{}, err
	}
	e, err := s.Store.Hashes(ctx, []string{day}, "e|"+chain+"|"+project)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Day: s.Days.Key(now), TimeZone: s.Days.Location().String(), Today: totals(c[0]), Total: totals(c[1]),
		Connections:   Gauge{Current: g[1][fConn], Peak: max(g[0][fConn+peakSuffix], g[1][fConn])},
		Subscriptions: Gauge{Current: g[1][fSubs], Peak: max(g[0][fSubs+peakSuffix], g[1][fSubs])},
		ErrorsByCode:  e[0]}
	return sum, nil
}

// Series implements Reader.
func (s *StoreReader) Series(ctx context.Context, q Query, by string, from, to time.Time) (Series, error) {
	if to.Before(from) {
		return Series{}, errors.Join(ErrBadQuery, errors.New("to is before from"))
	}
	var starts []time.Time
	var periods []string
	switch by {
	case "hour":
		for t := hourOf(s.Days, from); !t.After(to); t = hourOf(s.Days, t.Add(time.Hour)) {
			if len(starts) == MaxSeriesPoints {
				return Series{}, errors.Join(ErrBadQuery, errors.New("too many points: narrow from and to"))
			}
			starts = append(starts, t)
			periods = append(periods, "h/"+t.UTC().Format(hourLayout))
		}
	case "day":
		for t := s.Days.Start(from); !t.After(to); t = s.Days.ResetAt(t) {
			if len(starts) == MaxSeriesPoints {
				return Series{}, errors.Join(ErrBadQuery, errors.New("too many points: narrow from and to"))
			}
			starts = append(starts, t)
			periods = append(periods, dayPeriod(s.Days, t))
		}
	default:
		return Series{}, errors.Join(ErrBadQuery, errors.New(`by must be "hour" or "day"`))
	}
	chain, project := names(q)
	hs, err := s.Store.Hashes(ctx, periods, "c|"+chain+"|"+project)
	if err != nil {
		return Series{}, err
	}
	out := Series{By: by, Points: make([]Point, len(starts))}
	for i := range starts {
		out.Points[i] = Point{Time: starts[i], Totals: totals(hs[i])}
	}
	return out, nil
}

// Methods implements Reader.
func (s *StoreReader) Methods(ctx context.Context, q Query, day time.Time) ([]MethodUse, error) {
	chain, project := names(q)
	hs, err := s.Store.Hashes(ctx, []string{dayPeriod(s.Days, day)}, "m|"+chain+"|"+project)
	if err != nil {
		return nil, err
	}
	byName := map[string]*MethodUse{}
	for f, n := range hs[0] {
		i := strings.LastIndexByte(f, '|')
		if i < 0 {
			continue
		}
		m := byName[f[:i]]
		if m == nil {
			m = &MethodUse{Method: f[:i]}
			byName[f[:i]] = m
		}
		switch f[i+1:] {
		case "c":
			m.Calls = n
		case "b":
			m.Bytes = n
		case "e":
			m.Errors = n
		}
	}
	out := make([]MethodUse, 0, len(byName))
	for _, m := range byName {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b MethodUse) int {
		if a.Calls != b.Calls {
			return cmp.Compare(b.Calls, a.Calls)
		}
		return strings.Compare(a.Method, b.Method)
	})
	return out, nil
}

// Errors implements Reader; project "" is every project's.
func (s *StoreReader) Errors(ctx context.Context, project string) ([]ErrorRecord, error) {
	if project == "" {
		project = wildcard
	}
	list, err := s.Store.Latest(ctx, project)
	if list == nil {
		list = []ErrorRecord{}
	}
	return list, err
}

// Countries implements Reader; project "" is every project's.
func (s *StoreReader) Countries(ctx context.Context, project string, day time.Time) ([]CountryUse, error) {
	if project == "" {
		project = wildcard
	}
	hs, err := s.Store.Hashes(ctx, []string{dayPeriod(s.Days, day)}, "k|"+project)
	if err != nil {
		return nil, err
	}
	out := make([]CountryUse, 0, len(hs[0]))
	for c, n := range hs[0] {
		out = append(out, CountryUse{Country: c, Calls: n})
	}
	slices.SortFunc(out, func(a, b CountryUse) int {
		if a.Calls != b.Calls {
			return cmp.Compare(b.Calls, a.Calls)
		}
		return strings.Compare(a.Country, b.Country)
	})
	return out, nil
}

var _ Reader = (*StoreReader)(nil)
