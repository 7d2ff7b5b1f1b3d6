package limits

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

var usageBucket = []byte("usage")

// BoltCounters keeps daily totals in a bucket of a bbolt file; give it
// the projects store's file (projects.BoltStore.DB), since a process can
// open a file once. Counters flush to it periodically and on Close, and
// load today's totals at start. Days before yesterday are pruned at
// start and whenever a day begins.
type BoltCounters struct {
	db *bolt.DB
}

// NewBoltCounters creates the bucket if needed. The caller owns db.
func NewBoltCounters(db *bolt.DB) (*BoltCounters, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(usageBucket)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("daily counters: creating the bucket: %w", err)
	}
	return &BoltCounters{db: db}, nil
}

func usageKey(day, scope, id string) []byte { return []byte(day + "\x00" + scope + "\x00" + id) }

func decodeUsage(v []byte) Usage {
	if len(v) != 16 {
		return Usage{}
	}
	return Usage{int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:]))}
}

func encodeUsage(u Usage) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, uint64(u.Requests))
	binary.BigEndian.PutUint64(b[8:], uint64(u.Bytes))
	return b
}

// Add implements CounterBackend in one transaction.
func (b *BoltCounters) Add(_ context.Context, deltas []Delta) ([]Usage, error) {
	out := make([]Usage, len(deltas))
	write := false
	for _, d := range deltas {
		write = write || d.Usage != (Usage{})
	}
	fn := func(tx *bolt.Tx) error {
		bk := tx.Bucket(usageBucket)
		for i, d := range deltas {
			k := usageKey(d.Day, d.Scope, d.ID)
			u := decodeUsage(bk.Get(k)).plus(d.Usage)
			if d.Usage != (Usage{}) {
				if err := bk.Put(k, encodeUsage(u)); err != nil {
					return err
				}
			}
			out[i] = u
		}
		return nil
	}
	var err error
	if write {
		err = b.db.Update(fn)
	} else {
		err = b.db.View(fn)
	}
	if err != nil {
		return nil, fmt.Errorf("daily counters: %w", err)
	}
	return out, nil
}

// Load returns the totals of day, and prunes days before before.
func (b *BoltCounters) Load(day, before string) ([]Delta, error) {
	var out []Delta
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(usageBucket)
		var stale [][]byte
		err := bk.ForEach(func(k, v []byte) error {
			parts := strings.SplitN(string(k), "\x00", 3)
			if len(parts) != 3 || parts[0] < before {
				stale = append(stale, append([]byte(nil), k...))
				return nil
			}
			if parts[0] == day {
				out = append(out, Delta{Day: day, Scope: parts[1], ID: parts[2], Usage: decodeUsage(v)})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("daily counters: loading: %w", err)
	}
	return out, nil
}

// Prune implements Pruner.
func (b *BoltCounters) Prune(before string) error {
	err := b.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(usageBucket).Cursor()
		// Keys start with the day, so the stale ones come first.
		for k, _ := c.First(); k != nil && string(k) < before; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("daily counters: pruning before %s: %w", before, err)
	}
	return nil
}

// Close does nothing: the file belongs to the caller.
func (b *BoltCounters) Close() error { return nil }

// Loader is a backend that can hand its totals of a day at start.
type Loader interface {
	// Load returns day's totals, and may prune days before before.
	Load(day, before string) ([]Delta, error)
}

// Pruner is a backend that keeps days until told to drop them (Redis
// keys expire by themselves).
type Pruner interface {
	// Prune drops the days before before.
	Prune(before string) error
}
