package cacher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestMemoryStore(t *testing.T) {
	ctx := context.Background()
	val := func(n int) []byte { return []byte(strings.Repeat("x", n)) }
	// Sizes are counted with key and overhead: a 1000-byte value under a
	// 2-byte key costs 1130 bytes.
	const entry = 1000 + 2 + entryOverhead
	type op struct {
		set     string // key to set, or "" to get
		get     string
		method  string
		share   float64
		ttl     time.Duration
		size    int
		advance time.Duration
		want    bool // get: expect a hit
	}
	cases := []struct {
		name string
		max  int64
		ops  []op
	}{
		{"hit and miss", 10 * entry, []op{
			{set: "k1", size: 1000},
			{get: "k1", want: true},
			{get: "k2", want: false},
		}},
		{"least recently used goes first", 3 * entry, []op{
			{set: "k1", size: 1000}, {set: "k2", size: 1000}, {set: "k3", size: 1000},
			{get: "k1", want: true}, // k2 is now the oldest
			{set: "k4", size: 1000},
			{get: "k2", want: false}, {get: "k1", want: true}, {get: "k3", want: true}, {get: "k4", want: true},
		}},
		{"share evicts within the method only", 10 * entry, []op{
			{set: "o1", method: "other", size: 1000},
			{set: "m1", method: "meta", share: 0.25, size: 1000},
			{set: "m2", method: "meta", share: 0.25, size: 1000},
			{set: "m3", method: "meta", share: 0.25, size: 1000}, // 3 entries > 2.5: m1 goes
			{get: "m1", want: false}, {get: "m2", want: true}, {get: "m3", want: true}, {get: "o1", want: true},
		}},
		{"larger than its share is not kept", 10 * entry, []op{
			{set: "big", method: "meta", share: 0.1, size: 2000},
			{get: "big", want: false},
		}},
		{"overwrite with a too large value drops the old one", 10 * entry, []op{
			{set: "k1", share: 0.1, size: 10},
			{set: "k1", share: 0.1, size: 2000},
			{get: "k1", want: false},
		}},
		{"ttl", 10 * entry, []op{
			{set: "k1", ttl: time.Minute, size: 10},
			{advance: 59 * time.Second},
			{get: "k1", want: true},
			{advance: time.Second},
			{get: "k1", want: false},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			s := NewMemoryStore(tc.max, clock, nil)
			for i, o := range tc.ops {
				switch {
				case o.advance > 0:
					clock.Advance(o.advance)
				case o.set != "":
					if err := s.Set(ctx, o.set, val(o.size), SetOptions{TTL: o.ttl, Chain: "dev", Method: o.method, Share: o.share}); err != nil {
						t.Fatal(err)
					}
				default:
					_, err := s.Get(ctx, o.get)
					if hit := err == nil; hit != o.want {
						t.Fatalf("op %d: get %s: hit=%v, want %v (%v)", i, o.get, hit, o.want, err)
					}
					if err != nil && !errors.Is(err, ErrMiss) {
						t.Fatalf("op %d: %v", i, err)
					}
				}
				if _, used := s.Len(); used > tc.max {
					t.Fatalf("op %d: %d bytes used, bound %d", i, used, tc.max)
				}
			}
		})
	}
}

func TestMemoryStoreBoundUnderChurn(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(1<<20, nil, nil)
	for i := range 10000 {
		_ = s.Set(ctx, fmt.Sprintf("key-%d", i), make([]byte, i%5000), SetOptions{Chain: "dev", Method: fmt.Sprintf("m%d", i%7), Share: 0.5})
		if i%3 == 0 {
			_, _ = s.Get(ctx, fmt.Sprintf("key-%d", i/2))
		}
	}
	n, used := s.Len()
	if used > 1<<20 || n == 0 {
		t.Fatalf("%d entries, %d bytes: bound is 1MiB", n, used)
	}
	_ = s.Close()
	if n, used := s.Len(); n != 0 || used != 0 {
		t.Fatalf("after Close: %d entries, %d bytes", n, used)
	}
}
