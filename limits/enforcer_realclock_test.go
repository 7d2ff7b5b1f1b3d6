package limits

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// With real clocks (what a gateway runs) the enforcer hands its own clock
// reading to the in-memory rate limiter: the rate still holds, per key,
// and a project and a client IP with the same name are different keys.
func TestAdmitRateWithRealClocks(t *testing.T) {
	bc, err := NewBoltCounters(openBolt(t, filepath.Join(t.TempDir(), "c.db")))
	if err != nil {
		t.Fatal(err)
	}
	c := NewCounters(bc, CountersOptions{FlushInterval: time.Hour})
	defer c.Close()
	e := NewEnforcer(Local(NewRateLimiter(0, nil)), c)
	// One call a minute after a burst of 3: the test cannot refill it.
	lim := Limits{RequestsPerSecond: 1.0 / 60, Burst: 3}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		s    Subject
	}{
		{"project", Subject{Project: "a", Limits: lim}},
		{"client IP named like the project", Subject{IP: "a", Limits: lim}},
		{"project of an owner", Subject{Project: "b", Owner: "o", Limits: lim, OwnerRequestsPerDay: 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 3 {
				if x, err := e.Admit(ctx, tc.s); x != nil || err != nil {
					t.Fatalf("call %d of a burst of 3 refused: %v %v", i+1, x, err)
				}
			}
			x, err := e.Admit(ctx, tc.s)
			if err != nil || x == nil || x.Limit != RequestsPerSecond || x.RetryAfter <= 0 || x.RetryAfter > time.Minute {
				t.Fatalf("4th call: got %+v, %v; want a rate refusal with a retry within a minute", x, err)
			}
			// Refused calls are not counted.
			scope, id := tc.s.scope()
			if got := c.Used(scope, id).Requests; got != 3 {
				t.Fatalf("counted %d calls, want 3", got)
			}
		})
	}
}
