package limits

import "time"

// Days cuts time into days in a time zone: daily counters reset at the
// start of each day there.
type Days struct {
	loc *time.Location
}

// NewDays returns days in loc; nil means UTC.
func NewDays(loc *time.Location) Days {
	if loc == nil {
		loc = time.UTC
	}
	return Days{loc: loc}
}

// Location is the time zone of the day boundary.
func (d Days) Location() *time.Location {
	if d.loc == nil {
		return time.UTC
	}
	return d.loc
}

// Key names the day of now, "2006-01-02" in the zone.
func (d Days) Key(now time.Time) string {
	return now.In(d.Location()).Format(time.DateOnly)
}

// Start is when the day of now began.
func (d Days) Start(now time.Time) time.Time {
	y, m, day := now.In(d.Location()).Date()
	return d.midnight(y, m, day)
}

// ResetAt is when the day of now ends and daily counters start again.
// In a zone with daylight saving a day may last 23 or 25 hours; where
// midnight does not exist the day starts at the first instant after it.
func (d Days) ResetAt(now time.Time) time.Time {
	y, m, day := now.In(d.Location()).Date()
	return d.midnight(y, m, day+1)
}

// midnight is the first instant of a day. Where clocks jump over
// midnight (America/Santiago in September), time.Date answers 23:00 of
// the day before in the old offset; the day then starts at the
// transition, which is where that offset's period ends.
func (d Days) midnight(y int, m time.Month, day int) time.Time {
	t := time.Date(y, m, day, 0, 0, 0, 0, d.Location())
	want := time.Date(y, m, day, 0, 0, 0, 0, time.UTC) // normalises day overflow
	ly, lm, ld := t.Date()
	if time.Date(ly, lm, ld, 0, 0, 0, 0, time.UTC).Before(want) {
		if _, end := t.ZoneBounds(); !end.IsZero() {
			return end
		}
	}
	return t
}
