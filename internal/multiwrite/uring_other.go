//go:build !linux

package multiwrite

import "sync/atomic"

// There is no ring: nothing counts sends through one, nor is refused.
var (
	ringSends atomic.Int64
	refused   atomic.Bool
)

// ring is io_uring's, which only Linux has: every batch writes one buffer
// at a time.
type ring struct{ broken bool }

func getRing() *ring            { return nil }
func putRing(*ring)             {}
func (*ring) send(items []item) {}

// Batched reports whether batches go to the kernel in one call.
func Batched() bool { return false }
