package limits

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	// The zone database is embedded so a zone name works on hosts and
	// containers without /usr/share/zoneinfo.
	_ "time/tzdata"
)

// ParseZone reads the time zone of the day boundary: an IANA name
// ("Asia/Shanghai", "America/New_York"), "UTC" or "" (UTC), or a fixed
// offset from UTC ("UTC+8", "UTC-03:30", "+08:00").
func ParseZone(s string) (*time.Location, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "UTC") || s == "Z" {
		return time.UTC, nil
	}
	off := strings.TrimPrefix(strings.TrimPrefix(s, "UTC"), "GMT")
	if off != "" && (off[0] == '+' || off[0] == '-') {
		sign := 1
		if off[0] == '-' {
			sign = -1
		}
		h, m, hasMin := strings.Cut(off[1:], ":")
		hours, err1 := strconv.Atoi(h)
		minutes := 0
		var err2 error
		if hasMin {
			minutes, err2 = strconv.Atoi(m)
		}
		if err1 != nil || err2 != nil || hours > 14 || minutes < 0 || minutes > 59 || len(h) > 2 {
			return nil, fmt.Errorf("time zone %q: want an offset like UTC+8 or +05:30", s)
		}
		return time.FixedZone("UTC"+off, sign*(hours*3600+minutes*60)), nil
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: want an IANA name like Asia/Shanghai, UTC, or an offset like UTC+8: %w", s, err)
	}
	return loc, nil
}
