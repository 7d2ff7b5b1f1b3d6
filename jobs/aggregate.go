package jobs

import (
	"strconv"
	"time"

	"github.com/elara-gateway/elara/limits"
)

// The aggregates are hashes of counters, each in a period: "all" (since
// statistics began), a day "d/2006-01-02" or an hour "h/2006-01-02T15:04Z"
// (its start in UTC; an hour starts at whole hours from the start of the
// day in the statistics time zone). The hashes of a period:
//
//	c|<chain>|<project>  calls errors bin bout hits notes notes_b l0..l81 (latency buckets)
//	m|<chain>|<project>  <method>|c <method>|b <method>|e   (days)
//	e|<chain>|<project>  <code or outcome>                  (days and all)
//	k|<project>          <country>                          (days)
//	g|<chain>|<project>  conn subs (all: current), conn_peak subs_peak (days)
//
// <chain> and <project> are "*" for every chain or project: each call
// counts in the four combinations, so a read is one hash.
const (
	periodAll = "all"
	wildcard  = "*"
)

// Counter fields of the c| hashes.
const (
	fCalls     = "calls"
	fErrors    = "errors"
	fBytesIn   = "bin"
	fBytesOut  = "bout"
	fHits      = "hits"
	fNotes     = "notes"
	fNoteBytes = "notes_b"
	fConn      = "conn"
	fSubs      = "subs"
	peakSuffix = "_peak"
)

// HashKey names one hash of one period.
type HashKey struct {
	Period string
	Hash   string
}

// Peak is the running maximum of a gauge within one batch: the peak of
// the day is the gauge's value before the batch plus Max.
type Peak struct {
	Gauge HashKey // in period all
	Field string  // conn or subs
	Day   string  // the day period whose <field>_peak it updates
}

// LatestError is one failed call for the latest-errors lists.
type LatestError struct {
	Project string
	ErrorRecord
}

// Delta is what a batch of records adds to the aggregates: counter
// increments, gauge peaks and failed calls. The zero value is not
// usable: see NewDelta.
type Delta struct {
	Incr map[HashKey]map[string]int64
	// Peaks are the highest net change of each gauge within the batch,
	// per day.
	Peaks map[Peak]int64
	// Errors are the batch's failed calls, oldest first.
	Errors []LatestError
	// Periods are the periods the batch touched, with when each ends
	// (retention counts from there).
	Periods map[string]time.Time
	// Records is how many records the delta holds, a coalesced call
	// record counting its calls.
	Records int

	running map[HashKey]map[string]int64 // gauges' net change so far
	calls   map[callKey]callSum          // calls not yet in Incr (Settle)
}

// NewDelta returns an empty delta.
func NewDelta() *Delta {
	return &Delta{Incr: map[HashKey]map[string]int64{}, Peaks: map[Peak]int64{},
		Periods: map[string]time.Time{}, running: map[HashKey]map[string]int64{}}
}

// Empty reports whether the delta changes nothing.
func (d *Delta) Empty() bool { return d.Records == 0 && len(d.Incr) == 0 && len(d.calls) == 0 }

func (d *Delta) add(period, hash, field string, n int64) {
	k := HashKey{period, hash}
	m := d.Incr[k]
	if m == nil {
		m = map[string]int64{}
		d.Incr[k] = m
	}
	m[field] += n
}

// gauge moves a current value (period all) and keeps the day's peak.
func (d *Delta) gauge(hash, field, day string, n int64) {
	d.add(periodAll, hash, field, n)
	k := HashKey{periodAll, hash}
	r := d.running[k]
	if r == nil {
		r = map[string]int64{}
		d.running[k] = r
	}
	r[field] += n
	p := Peak{Gauge: k, Field: field, Day: day}
	if v, ok := d.Peaks[p]; !ok || r[field] > v {
		d.Peaks[p] = r[field]
	}
}

// Aggregator turns records into a Delta. It is not safe for concurrent
// use.
type Aggregator struct {
	Days limits.Days
	// LatestErrors bounds the errors kept per project in one delta.
	LatestErrors int

	// the hour of the last record, its name and end: records come in
	// time order, mostly within one hour.
	hourStart, hourEnd time.Time
	hourName           string
	dayStart, dayEnd   time.Time
	dayName            string
}

// Add adds one record to d.
func (a *Aggregator) Add(d *Delta, r *Record) {
	if r.Kind == KindCall {
		d.Records += int(r.count()) // coalesced calls (see coalesce.go)
	} else {
		d.Records++
	}
	dayP := a.dayPeriod(d, r.Time)
	project := r.Project
	if project == "" {
		project = Public
	}
	chains := [2]string{r.Chain, wildcard}
	projs := [2]string{project, wildcard}
	switch r.Kind {
	case KindCall:
		hourP := a.hourPeriod(d, r.Time)
		method := r.Method
		if method == "" {
			method = "other"
		}
		country := r.Country
		if country == "" {
			country = CountryUnknown
		}
		failed := r.failed()
		k := callKey{dayP: dayP, hourP: hourP, chain: r.Chain, project: project, method: method, country: country,
			hit: r.CacheHit, failed: failed, bucket: histBucket(r.Latency)}
		if failed {
			k.errName = r.errorName()
		}
		if d.calls == nil {
			d.calls = map[callKey]callSum{}
		}
		sum := d.calls[k]
		sum.n += r.count()
		sum.in += r.BytesIn
		sum.out += r.BytesOut
		d.calls[k] = sum
		if failed {
			d.Errors = append(d.Errors, LatestError{Project: project, ErrorRecord: ErrorRecord{
				Time: r.Time.UTC(), Chain: r.Chain, Method: method, Code: r.Code, Outcome: r.Outcome}})
		}
	case KindConnect, KindDisconnect, KindSubOpen, KindSubClose:
		field, n := fConn, int64(1)
		switch r.Kind {
		case KindDisconnect:
			n = -1
		case KindSubOpen:
			field, n = fSubs, r.count()
		case KindSubClose:
			field, n = fSubs, -r.count()
		}
		for _, ch := range chains {
			for _, pr := range projs {
				d.gauge("g|"+ch+"|"+pr, field, dayP, n)
			}
		}
	case KindNotify:
		for _, ch := range chains {
			for _, pr := range projs {
				c := "c|" + ch + "|" + pr
				d.add(periodAll, c, fNotes, r.count())
				d.add(periodAll, c, fNoteBytes, r.BytesOut)
				d.add(dayP, c, fNotes, r.count())
				d.add(dayP, c, fNoteBytes, r.BytesOut)
			}
		}
	}
}

// callKey groups the calls of a batch that add to the same counters, so
// a batch's thousands of records expand into hashes once per group.
type callKey struct {
	dayP, hourP, chain, project, method, errName, country string
	hit, failed                                           bool
	bucket                                                int
}

type callSum struct{ n, in, out int64 }

// hourPeriod names the hour period of t, and notes its end.
func (a *Aggregator) hourPeriod(d *Delta, t time.Time) string {
	if !t.Before(a.hourStart) && t.Before(a.hourEnd) {
		d.Periods[a.hourName] = a.hourEnd
		return a.hourName
	}
	a.hourStart = hourOf(a.Days, t)
	a.hourEnd = a.hourStart.Add(time.Hour)
	a.hourName = "h/" + a.hourStart.UTC().Format(hourLayout)
	d.Periods[a.hourName] = a.hourEnd
	return a.hourName
}

// dayPeriod names the day period of t, and notes its end.
func (a *Aggregator) dayPeriod(d *Delta, t time.Time) string {
	if t.Before(a.dayStart) || !t.Before(a.dayEnd) {
		a.dayStart, a.dayEnd = a.Days.Start(t), a.Days.ResetAt(t)
		a.dayName = dayPeriod(a.Days, t)
	}
	d.Periods[a.dayName] = a.dayEnd
	return a.dayName
}

// Settle expands the grouped calls into Incr: call it before reading
// Incr (the stores and readers do).
func (d *Delta) Settle() {
	for k, sum := range d.calls {
		bucket := histFields[k.bucket]
		chains := [2]string{k.chain, wildcard}
		projs := [2]string{k.project, wildcard}
		for _, ch := range chains {
			for _, pr := range projs {
				c := "c|" + ch + "|" + pr
				for _, p := range [3]string{periodAll, k.dayP, k.hourP} {
					f := d.fields(p, c)
					f[fCalls] += sum.n
					f[fBytesIn] += sum.in
					f[fBytesOut] += sum.out
					f[bucket] += sum.n
					if k.failed {
						f[fErrors] += sum.n
					}
					if k.hit {
						f[fHits] += sum.n
					}
				}
				m := d.fields(k.dayP, "m|"+ch+"|"+pr)
				m[k.method+"|c"] += sum.n
				m[k.method+"|b"] += sum.in + sum.out
				if k.failed {
					m[k.method+"|e"] += sum.n
					e := "e|" + ch + "|" + pr
					d.fields(k.dayP, e)[k.errName] += sum.n
					d.fields(periodAll, e)[k.errName] += sum.n
				}
			}
		}
		d.fields(k.dayP, "k|"+k.project)[k.country] += sum.n
		d.fields(k.dayP, "k|"+wildcard)[k.country] += sum.n
	}
	clear(d.calls)
}

func (d *Delta) fields(period, hash string) map[string]int64 {
	k := HashKey{period, hash}
	m := d.Incr[k]
	if m == nil {
		m = map[string]int64{}
		d.Incr[k] = m
	}
	return m
}

// hourLayout formats an hour period's start (in UTC).
const hourLayout = "2006-01-02T15:04Z"

// hourOf is the start of the hour of t: whole hours from the start of
// its day in the statistics zone (zones a half hour off UTC included).
func hourOf(days limits.Days, t time.Time) time.Time {
	start := days.Start(t)
	return start.Add(t.Sub(start).Truncate(time.Hour))
}

// dayPeriod and hourPeriod name the periods holding t.
func dayPeriod(days limits.Days, t time.Time) string { return "d/" + days.Key(t) }
func hourPeriod(days limits.Days, t time.Time) string {
	return "h/" + hourOf(days, t).UTC().Format(hourLayout)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
