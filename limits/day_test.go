package limits

import (
	"testing"
	"time"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("no zone %s: %v", name, err)
	}
	return loc
}

func TestDays(t *testing.T) {
	cases := []struct {
		name    string
		zone    string
		now     string // RFC 3339
		key     string
		resetAt string // RFC 3339 in UTC
		length  time.Duration
	}{
		{"UTC midday", "UTC", "2026-12-06T12:00:00Z", "2026-12-06", "2026-12-07T00:00:00Z", 24 * time.Hour},
		{"UTC last nanosecond", "UTC", "2026-12-06T23:59:59.999999999Z", "2026-12-06", "2026-12-07T00:00:00Z", 24 * time.Hour},
		{"UTC midnight starts a day", "UTC", "2026-12-07T00:00:00Z", "2026-12-07", "2026-12-08T00:00:00Z", 24 * time.Hour},
		// The original reset at midnight in UTC+8: 16:00 UTC.
		{"UTC+8 before its midnight", "Asia/Shanghai", "2026-12-06T15:59:59Z", "2026-12-06", "2026-12-06T16:00:00Z", 24 * time.Hour},
		{"UTC+8 after its midnight", "Asia/Shanghai", "2026-12-06T16:00:00Z", "2026-12-07", "2026-12-07T16:00:00Z", 24 * time.Hour},
		{"UTC+8 is the next day already", "Asia/Shanghai", "2026-12-06T20:00:00Z", "2026-12-07", "2026-12-07T16:00:00Z", 24 * time.Hour},
		// New York: DST starts 2026-03-08 (23 h day), ends 2026-11-01 (25 h day).
		{"DST spring day is 23 hours", "America/New_York", "2026-03-08T12:00:00Z", "2026-03-08", "2026-03-09T04:00:00Z", 23 * time.Hour},
		{"DST autumn day is 25 hours", "America/New_York", "2026-11-01T12:00:00Z", "2026-11-01", "2026-11-02T05:00:00Z", 25 * time.Hour},
		// Santiago's clocks jump from 00:00 to 01:00 on 2026-09-06: that
		// day starts at 01:00 -03 (04:00 UTC) and lasts 23 hours.
		{"no midnight: the day before", "America/Santiago", "2026-09-06T03:30:00Z", "2026-09-05", "2026-09-06T04:00:00Z", 24 * time.Hour},
		{"no midnight: the day itself", "America/Santiago", "2026-09-06T12:00:00Z", "2026-09-06", "2026-09-07T03:00:00Z", 23 * time.Hour},
		{"DST zone before its midnight", "America/New_York", "2026-12-07T04:59:00Z", "2026-12-06", "2026-12-07T05:00:00Z", 24 * time.Hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := NewDays(mustZone(t, c.zone))
			now, err := time.Parse(time.RFC3339Nano, c.now)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Key(now); got != c.key {
				t.Errorf("Key = %s, want %s", got, c.key)
			}
			reset := d.ResetAt(now)
			if got := reset.UTC().Format(time.RFC3339); got != c.resetAt {
				t.Errorf("ResetAt = %s, want %s", got, c.resetAt)
			}
			if got := reset.Sub(d.Start(now)); got != c.length {
				t.Errorf("day lasts %s, want %s", got, c.length)
			}
			if d.Key(reset) == d.Key(now) || d.Key(reset.Add(-time.Nanosecond)) != d.Key(now) {
				t.Errorf("ResetAt %s is not where the day key changes", reset)
			}
		})
	}
	if NewDays(nil).Location() != time.UTC {
		t.Error("the default zone is not UTC")
	}
}
