package handler

import "sync/atomic"

// peakQueued is the most bytes any one WebSocket client's send queue has
// held since the process started (or the last resetPeakQueued): what tests
// measure to show the send_queue_bytes bound holds, without relying on
// RSS. Updated only when a queue grows past it, so it costs a load on the
// hot path.
var peakQueued atomic.Int64

func notePeakQueued(n int64) {
	for {
		p := peakQueued.Load()
		if n <= p || peakQueued.CompareAndSwap(p, n) {
			return
		}
	}
}
