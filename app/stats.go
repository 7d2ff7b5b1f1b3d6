package app

import (
	"sync/atomic"

	"github.com/elara-gateway/elara/jobs"
)

// currentStats is the statistics Reader of the config started last.
var currentStats atomic.Pointer[jobs.Reader]

// CurrentStats is the statistics Reader of the config started last, for
// the admin API and the dashboard; nil while statistics are off.
func CurrentStats() jobs.Reader {
	if r := currentStats.Load(); r != nil {
		return *r
	}
	return nil
}
