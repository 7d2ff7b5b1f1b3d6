package limits

import (
	"testing"
	"time"
)

func TestParseZone(t *testing.T) {
	at := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC) // summer in the north
	cases := []struct {
		in     string
		offset int // seconds east of UTC at `at`
		bad    bool
	}{
		{"", 0, false},
		{"UTC", 0, false},
		{"UTC+8", 8 * 3600, false},
		{"+08:00", 8 * 3600, false},
		{"UTC-03:30", -(3*3600 + 30*60), false},
		{"Asia/Shanghai", 8 * 3600, false},
		{"America/New_York", -4 * 3600, false},
		{"UTC+15", 0, true},
		{"UTC+8:99", 0, true},
		{"Mars/Olympus", 0, true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			loc, err := ParseZone(c.in)
			if c.bad {
				if err == nil {
					t.Fatalf("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, off := at.In(loc).Zone(); off != c.offset {
				t.Errorf("offset %d, want %d", off, c.offset)
			}
		})
	}
}
