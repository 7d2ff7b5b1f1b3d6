package limits

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A gateway that runs for days keeps only today's and yesterday's counts
// in its Bolt file: each new day prunes the ones before, with no restart.
func TestBoltCountersPruneWhenTheDayChanges(t *testing.T) {
	clk := newFakeClock(time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC))
	db := openBolt(t, filepath.Join(t.TempDir(), "c.db"))
	defer db.Close()
	c := boltCounters(t, db, clk, nil)
	ctx := context.Background()
	for _, ip := range []string{"203.0.113.1", "203.0.113.2"} {
		c.Add(ScopeProject, ip, Usage{Requests: 1})
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	days := func() map[string]int {
		got := map[string]int{}
		_ = db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(usageBucket).ForEach(func(k, _ []byte) error {
				got[string(k[:10])]++
				return nil
			})
		})
		return got
	}
	for _, c2 := range []struct {
		name    string
		advance time.Duration
		want    map[string]int
	}{
		{"same day", 30 * time.Minute, map[string]int{"2026-12-06": 3}},
		{"next day keeps yesterday", 2 * time.Hour, map[string]int{"2026-12-06": 3, "2026-12-07": 1}},
		{"two days on", 24 * time.Hour, map[string]int{"2026-12-07": 1, "2026-12-08": 1}},
		{"three days on", 24 * time.Hour, map[string]int{"2026-12-08": 1, "2026-12-09": 1}},
	} {
		t.Run(c2.name, func(t *testing.T) {
			clk.Advance(c2.advance)
			c.Add(ScopeProject, "203.0.113.9", Usage{Requests: 1})
			if err := c.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			got := days()
			if len(got) != len(c2.want) {
				t.Fatalf("keys per day %v, want %v", got, c2.want)
			}
			for d, n := range c2.want {
				if got[d] != n {
					t.Fatalf("keys per day %v, want %v", got, c2.want)
				}
			}
		})
	}
}
