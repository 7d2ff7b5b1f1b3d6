package limits

import "time"

// Clock tells time; tests give a fake one.
type Clock func() time.Time

func (c Clock) now() time.Time {
	if c == nil {
		return time.Now()
	}
	return c()
}
