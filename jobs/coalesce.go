package jobs

import "time"

// Coalescing: a gateway under load makes thousands of successful calls a
// second that differ only in their time, sizes and exact latency. Before
// they go to the Redis stream, the successful calls of a batch that add to
// the same aggregates are sent as one record with Count calls and summed
// bytes, so the stream, Redis and the job handle a few lines per batch
// instead of one per call. Exact: every aggregate of a call depends on its
// time only through its day and hour, which start at whole minutes (every
// time zone's offset is), and on its latency only through its histogram
// bucket. Failed calls (the latest-errors lists keep each one's time),
// gauges (whose daily peaks depend on their order) and notification sums
// are sent as they are.

// callGroup is what the calls of one coalesced record share.
type callGroup struct {
	minute                                           int64
	chain, project, method, transport, node, country string
	hit                                              bool
	bucket                                           int
}

// coalescer groups the records of batches; it keeps its memory between
// batches and is not safe for concurrent use.
type coalescer struct {
	index map[callGroup]int
	out   []Record
}

// coalesce returns recs with the successful calls of each group merged
// into the first of them (its time, Count the calls, the bytes summed),
// in the order of recs. The result is valid until the next call.
func (c *coalescer) coalesce(recs []Record) []Record {
	if c.index == nil {
		c.index = map[callGroup]int{}
	}
	clear(c.index)
	out := c.out[:0]
	for i := range recs {
		r := &recs[i]
		if r.Kind != KindCall || r.Outcome != OutcomeOK || r.Code != 0 {
			out = append(out, *r)
			continue
		}
		k := callGroup{minute: r.Time.UnixNano() / int64(time.Minute), chain: r.Chain, project: r.Project, method: r.Method,
			transport: r.Transport, node: r.Node, country: r.Country, hit: r.CacheHit, bucket: histBucket(r.Latency)}
		if j, ok := c.index[k]; ok {
			g := &out[j]
			g.Count += r.count()
			g.BytesIn += r.BytesIn
			g.BytesOut += r.BytesOut
			continue
		}
		c.index[k] = len(out)
		out = append(out, *r)
		out[len(out)-1].Count = r.count()
	}
	c.out = out
	return out
}
