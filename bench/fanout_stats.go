package main

import (
	"bytes"
	"slices"
	"time"
)

// reception is one new-head notification as a fan-out client got it.
type reception struct {
	num uint64        // block number in the header
	at  time.Duration // when it was read, on the bench's monotonic clock
}

// fanoutStats is what the clients of a fan-out case received.
type fanoutStats struct {
	blocks   int // blocks made while clients were subscribed
	expected int // blocks × clients
	// delivered counts first deliveries of those blocks; lost is
	// expected - delivered, dup the deliveries of a block a client had
	// already got, reordered the first deliveries of a block older than
	// one the client had already got.
	delivered, lost, dup, reordered int
	// perClient is the latency of every first delivery, sorted: the
	// distribution one client sees. last is, for each block that reached
	// any client, the latency to the last client that got it, sorted.
	perClient, last []time.Duration
	// firstLast and finalLast are the last-client latencies of the first
	// and the final block (0 if nobody got it): a latency that grows from
	// one to the other means notifications queue up.
	firstLast, finalLast time.Duration
}

// aggregateFanout matches what clients received against the blocks made:
// sent maps each block number to when the bench asked the node for it.
// Notifications of other blocks (the head each client gets when it
// subscribes) are ignored.
func aggregateFanout(sent map[uint64]time.Duration, clients [][]reception) fanoutStats {
	st := fanoutStats{blocks: len(sent), expected: len(sent) * len(clients)}
	lastAt := make(map[uint64]time.Duration, len(sent))
	seen := make(map[uint64]bool, len(sent))
	for _, recs := range clients {
		clear(seen)
		var newest uint64
		for _, r := range recs {
			t0, ok := sent[r.num]
			if !ok {
				continue
			}
			if seen[r.num] {
				st.dup++
				continue
			}
			seen[r.num] = true
			st.delivered++
			if r.num < newest {
				st.reordered++
			}
			newest = max(newest, r.num)
			st.perClient = append(st.perClient, r.at-t0)
			if at, ok := lastAt[r.num]; !ok || r.at > at {
				lastAt[r.num] = r.at
			}
		}
	}
	st.lost = st.expected - st.delivered
	var first, final uint64
	found := false
	for num := range sent {
		if !found || num < first {
			first = num
		}
		final, found = max(final, num), true
	}
	for num, at := range lastAt {
		st.last = append(st.last, at-sent[num])
		switch num {
		case first:
			st.firstLast = at - sent[num]
		case final:
			st.finalLast = at - sent[num]
		}
	}
	slices.Sort(st.perClient)
	slices.Sort(st.last)
	return st
}

var numberKey = []byte(`"number":"0x`)

// headNumber reads the block number of a header notification without
// decoding it: Substrate headers carry it as a hex string.
func headNumber(msg []byte) (uint64, bool) {
	i := bytes.Index(msg, numberKey)
	if i < 0 {
		return 0, false
	}
	var n uint64
	digits := 0
	for _, c := range msg[i+len(numberKey):] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		case c == '"':
			return n, digits > 0
		default:
			return 0, false
		}
		if digits++; digits > 16 {
			return 0, false
		}
		n = n<<4 | uint64(d)
	}
	return 0, false
}
