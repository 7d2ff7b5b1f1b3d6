package limits

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// A Handle counts exactly as the subject it was made for: the same
// totals, refusals and resets, also after Flush forgot its counters (an
// idle subject) and after the day changed.
func TestHandleCountsAsItsSubject(t *testing.T) {
	clk := newFakeClock(time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC))
	b, err := NewBoltCounters(openBolt(t, filepath.Join(t.TempDir(), "c.db")))
	if err != nil {
		t.Fatal(err)
	}
	c := NewCounters(b, CountersOptions{Clock: clk.Now, FlushInterval: time.Hour, IdleAfter: time.Minute})
	t.Cleanup(func() { _ = c.Close() })
	e := NewEnforcer(Local(NewRateLimiter(0, clk.Now)), c)
	ctx := context.Background()
	s := Subject{Project: "p", Owner: "o", Limits: Limits{RequestsPerDay: 3, BytesPerDay: 1000}, OwnerRequestsPerDay: 10}
	h := e.Handle(s)
	flush := func() {
		if err := c.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name   string
		before func()
		handle bool   // through h, else through s
		limit  string // "" allowed
		used   int64  // the project's requests after the call, as this gateway knows them
	}{
		{"first call", nil, true, "", 1},
		{"the subject shares the handle's counts", nil, false, "", 2},
		{"after Flush forgot the idle counters", func() {
			flush()
			clk.Advance(2 * time.Minute)
			flush() // nothing pending and idle: forgotten
			if n := len(c.entries); n != 0 {
				t.Fatalf("%d counters kept, want them forgotten", n)
			}
		}, true, "", 1},
		{"the store's count is learnt at the next flush", flush, true, RequestsPerDay, 3},
		{"a new day starts over", func() { clk.Advance(time.Hour) }, true, "", 1},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		var x *Exceeded
		if st.handle {
			x, err = e.AdmitHandle(ctx, h)
		} else {
			x, err = e.Admit(ctx, s)
		}
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if x != nil {
			got = x.Limit
		}
		if got != st.limit {
			t.Errorf("%s: refused by %q, want %q", st.name, got, st.limit)
		}
		if u := c.Used(ScopeProject, "p"); u.Requests != st.used {
			t.Errorf("%s: the project has %d requests, want %d", st.name, u.Requests, st.used)
		}
	}
	if u := c.Used(ScopeOwner, "o"); u.Requests != 1 {
		t.Errorf("the owner has %d requests today, want 1", u.Requests)
	}
	// Bytes through the handle reach the project's limit once, and count
	// for the owner too.
	if x := e.AddBytesHandle(h, 999); x != nil {
		t.Fatalf("under the bytes limit: %v", x)
	}
	if x := e.AddBytesHandle(h, 1); x == nil || x.Limit != BytesPerDay || x.Used != 1000 {
		t.Fatalf("reaching the bytes limit: %+v", x)
	}
	if x := e.AddBytes(s, 1); x != nil {
		t.Fatalf("the project's bytes limit was reported twice: %v", x)
	}
	if u := c.Used(ScopeOwner, "o"); u.Bytes != 1001 {
		t.Errorf("the owner has %d bytes, want 1001", u.Bytes)
	}
}
