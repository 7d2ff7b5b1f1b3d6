package limits

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// AddBytes reports a project's daily bytes limit once, when the bytes
// reach it (the project is then suspended); a client IP's or an owner's
// with every addition at or over it (each connection is closed).
func TestEnforcerAddBytesReportsTheCrossing(t *testing.T) {
	clk := newFakeClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	e := NewEnforcer(Local(NewRateLimiter(0, clk.Now)), boltCounters(t, openBolt(t, filepath.Join(t.TempDir(), "c.db")), clk, nil))
	subjects := []struct {
		name         string
		s            Subject
		limit, scope string
		again        bool // reported past the limit too
	}{
		{"project", Subject{Project: "p", Limits: Limits{BytesPerDay: 100}}, BytesPerDay, ScopeProject, false},
		{"client ip", Subject{IP: "10.0.0.1", Limits: Limits{BytesPerDay: 100}}, BytesPerDay, ScopeIP, true},
		{"owner", Subject{Project: "o", Owner: "acme", OwnerBytesPerDay: 100}, OwnerBytesPerDay, ScopeOwner, true},
	}
	for _, sc := range subjects {
		t.Run(sc.name, func(t *testing.T) {
			steps := []struct {
				name  string
				n     int64
				limit bool
			}{
				{"under", 60, false},
				{"reaching it", 40, true},
				{"past it", 10, sc.again},
			}
			for _, st := range steps {
				x := e.AddBytes(sc.s, st.n)
				if (x != nil) != st.limit {
					t.Fatalf("%s: %+v", st.name, x)
				}
				if x != nil && (x.Limit != sc.limit || x.Scope != sc.scope || x.Used < 100 || !x.Daily()) {
					t.Fatalf("%s: %+v", st.name, x)
				}
			}
		})
	}
	if x := e.AddBytes(Subject{Project: "q"}, 1<<30); x != nil {
		t.Fatalf("no limit: %+v", x)
	}
}

// AdmitEnding passes a subject over its day, counts it, and keeps the rate.
func TestEnforcerAdmitEnding(t *testing.T) {
	clk := newFakeClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	counters := boltCounters(t, openBolt(t, filepath.Join(t.TempDir(), "c.db")), clk, nil)
	e := NewEnforcer(Local(NewRateLimiter(0, clk.Now)), counters)
	ctx := context.Background()
	s := Subject{Project: "p", Limits: Limits{RequestsPerDay: 1, RequestsPerSecond: 1, Burst: 2}}
	if x, _ := e.Admit(ctx, s); x != nil {
		t.Fatal(x)
	}
	if x, _ := e.Admit(ctx, s); x == nil || x.Limit != RequestsPerDay {
		t.Fatalf("second call of a day of 1: %+v", x)
	}
	if x := e.AdmitEnding(ctx, s); x != nil {
		t.Fatalf("ending over the day: %+v", x)
	}
	if u := counters.Used(ScopeProject, "p"); u.Requests != 2 {
		t.Fatalf("the ending was not counted: %+v", u)
	}
	if x := e.AdmitEnding(ctx, s); x == nil || x.Limit != RequestsPerSecond {
		t.Fatalf("ending over the rate: %+v", x)
	}
}
