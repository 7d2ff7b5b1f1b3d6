package jobs

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltStore keeps the aggregates in a bbolt file: one top-level bucket
// per period, named after it (so periods sort by time and retention
// deletes whole buckets from the oldest on, reading no counter), keys
// "<hash>\x00<field>" with 8-byte big-endian counters. The latest
// errors are JSON lists in bucket "errors", one key per project.
type BoltStore struct {
	db        *bolt.DB
	retention Retention
	keepErrs  int
}

// BoltFile is the statistics file's name in its directory.
const BoltFile = "stats.db"

var (
	bucketErrors = []byte("errors")
	bucketEnds   = []byte("ends") // period -> its end (unix seconds), for retention
)

// OpenBolt opens (or creates) dir/stats.db. bbolt locks the file: one
// opener per process (the app shares it across config reloads).
func OpenBolt(dir string, retention Retention, latestErrors int) (*BoltStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("statistics dir: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, BoltFile), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("statistics file: %w", err)
	}
	if latestErrors <= 0 {
		latestErrors = DefaultLatestErrors
	}
	if err := resetGauges(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("statistics file: %w", err)
	}
	return &BoltStore{db: db, retention: retention.withDefaults(), keepErrs: latestErrors}, nil
}

// resetGauges zeroes the current connections and subscriptions: the
// file is this process's alone (bbolt locks it), and a process starting
// holds none; one that crashed could not record their end.
func resetGauges(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(periodAll))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		var keys [][]byte
		for k, _ := c.Seek([]byte("g|")); k != nil && bytes.HasPrefix(k, []byte("g|")); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := b.Put(k, encode(0)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close closes the file.
func (s *BoltStore) Close() error { return s.db.Close() }

// Apply adds d in one transaction.
func (s *BoltStore) Apply(_ context.Context, d *Delta) error {
	d.Settle()
	return s.db.Update(func(tx *bolt.Tx) error {
		ends, err := tx.CreateBucketIfNotExists(bucketEnds)
		if err != nil {
			return err
		}
		for p, end := range d.Periods {
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], uint64(end.Unix()))
			if err := ends.Put([]byte(p), v[:]); err != nil {
				return err
			}
		}
		var key []byte
		for hk, fields := range d.Incr {
			b, err := tx.CreateBucketIfNotExists([]byte(hk.Period))
			if err != nil {
				return err
			}
			for f, n := range fields {
				if n == 0 {
					continue
				}
				key = append(append(append(key[:0], hk.Hash...), 0), f...)
				if err := b.Put(key, encode(decode(b.Get(key))+n)); err != nil {
					return err
				}
			}
		}
		// Peaks after the increments: the gauge now holds its value
		// after the batch, so its value before is now - net.
		for p, maxNet := range d.Peaks {
			all := tx.Bucket([]byte(periodAll))
			if all == nil {
				continue
			}
			gkey := append(append([]byte(p.Gauge.Hash), 0), p.Field...)
			net := d.Incr[p.Gauge][p.Field]
			before := decode(all.Get(gkey)) - net
			day, err := tx.CreateBucketIfNotExists([]byte(p.Day))
			if err != nil {
				return err
			}
			pkey := append(append([]byte(p.Gauge.Hash), 0), p.Field+peakSuffix...)
			if v := before + maxNet; v > decode(day.Get(pkey)) {
				if err := day.Put(pkey, encode(v)); err != nil {
					return err
				}
			}
		}
		if len(d.Errors) > 0 {
			eb, err := tx.CreateBucketIfNotExists(bucketErrors)
			if err != nil {
				return err
			}
			byProject := map[string][]ErrorRecord{}
			for _, e := range d.Errors {
				byProject[e.Project] = append(byProject[e.Project], e.ErrorRecord)
				byProject[wildcard] = append(byProject[wildcard], e.ErrorRecord)
			}
			for p, add := range byProject {
				var list []ErrorRecord
				if v := eb.Get([]byte(p)); v != nil {
					_ = json.Unmarshal(v, &list)
				}
				list = newestFirst(add, list, s.keepErrs)
				v, err := json.Marshal(list)
				if err != nil {
					return err
				}
				if err := eb.Put([]byte(p), v); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Hashes reads one hash in each period.
func (s *BoltStore) Hashes(_ context.Context, periods []string, hash string) ([]map[string]int64, error) {
	out := make([]map[string]int64, len(periods))
	prefix := append([]byte(hash), 0)
	err := s.db.View(func(tx *bolt.Tx) error {
		for i, p := range periods {
			b := tx.Bucket([]byte(p))
			if b == nil {
				continue
			}
			c := b.Cursor()
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				if out[i] == nil {
					out[i] = map[string]int64{}
				}
				out[i][string(k[len(prefix):])] = decode(v)
			}
		}
		return nil
	})
	return out, err
}

// Latest is a project's latest errors, newest first.
func (s *BoltStore) Latest(_ context.Context, project string) ([]ErrorRecord, error) {
	var list []ErrorRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketErrors)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(project)); v != nil {
			return json.Unmarshal(v, &list)
		}
		return nil
	})
	return list, err
}

// Prune deletes the periods whose retention ended before now: bucket
// "ends" is read (one key per period, a few hundred at most), never the
// counters.
func (s *BoltStore) Prune(now time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		ends := tx.Bucket(bucketEnds)
		if ends == nil {
			return nil
		}
		var old [][]byte
		err := ends.ForEach(func(k, v []byte) error {
			keep := s.retention.keep(string(k))
			if keep > 0 && len(v) == 8 && !now.Before(time.Unix(int64(binary.BigEndian.Uint64(v)), 0).Add(keep)) {
				old = append(old, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			if tx.Bucket(k) != nil {
				if err := tx.DeleteBucket(k); err != nil {
					return err
				}
			}
			if err := ends.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

func encode(n int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return b[:]
}

func decode(b []byte) int64 {
	if len(b) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

var _ Store = (*BoltStore)(nil)

// newestFirst is add (oldest first) reversed, then list, at most n.
func newestFirst(add, list []ErrorRecord, n int) []ErrorRecord {
	if len(add) > n {
		add = add[len(add)-n:]
	}
	out := make([]ErrorRecord, 0, min(n, len(add)+len(list)))
	for i := len(add) - 1; i >= 0; i-- {
		out = append(out, add[i])
	}
	for _, e := range list {
		if len(out) == n {
			break
		}
		out = append(out, e)
	}
	return out
}
