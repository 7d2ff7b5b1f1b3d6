package projects

import (
	"context"
	"testing"
	"time"

	"github.com/elara-gateway/elara/cacher/cachertest"
)

// Gateways order changes by Redis' version, not by their clocks: with B's
// clock 2s ahead of A's, a change A makes to a project B wrote still
// reaches B within a second.
func TestRedisStoresIgnoreClockSkew(t *testing.T) {
	r := cachertest.StartRedis(t)
	clkA := newClock()
	clkB := &fixedClock{t: clkA.Now().Add(2 * time.Second)}
	a := newRedisStore(t, redisClient(t, r.Addr), clkA, nil)
	b := newRedisStore(t, redisClient(t, r.Addr), clkB, nil)
	ctx := context.Background()
	until := clkA.Now().Add(time.Hour)

	cases := []struct {
		name   string
		change func(id string) error
		want   Status
	}{
		{"an admin disables", func(id string) error {
			_, err := a.Update(ctx, id, StatusPatch(Disabled, nil))
			return err
		}, Disabled},
		{"the limits suspend", func(id string) error {
			_, err := Suspend(ctx, a, id, until)
			return err
		}, Suspended},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := create(t, b, `{"name":"skewed","plan":"gold"}`)
			waitFor(t, "A sees the project", func() bool { _, ok := a.Lookup(p.ID); return ok })
			if err := c.change(p.ID); err != nil {
				t.Fatal(err)
			}
			if got, _ := a.Get(ctx, p.ID); got.Status != c.want {
				t.Fatalf("Redis holds %s, want %s", got.Status, c.want)
			}
			waitFor(t, "B sees the change", func() bool { q, _ := b.Lookup(p.ID); return q.Status == c.want })
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 1s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A Bolt gateway whose clock steps back between two writes keeps the
// later one in memory.
func TestBoltStoreIgnoresClockSteps(t *testing.T) {
	clk := newClock()
	s := boltMaker(t, clk)
	p := create(t, s, `{"name":"stepped","plan":"gold"}`)
	clk.Advance(-2 * time.Second)
	if _, err := s.Update(context.Background(), p.ID, StatusPatch(Disabled, nil)); err != nil {
		t.Fatal(err)
	}
	if q, _ := s.Lookup(p.ID); q.Status != Disabled {
		t.Fatalf("Lookup says %s after a disable, want disabled", q.Status)
	}
}
