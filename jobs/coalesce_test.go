package jobs

import (
	"reflect"
	"testing"
	"time"

	"github.com/elara-gateway/elara/limits"
)

// aggregated is what recs add to the aggregates, settled.
func aggregated(days limits.Days, recs []Record) *Delta {
	d := NewDelta()
	agg := Aggregator{Days: days}
	for i := range recs {
		agg.Add(d, &recs[i])
	}
	d.Settle()
	return d
}

// TestCoalesceKeepsEveryAggregate: the records a gateway sends to Redis
// with its calls coalesced add exactly what the calls one by one add,
// every counter, histogram bucket, latest error and gauge peak, across
// minute, hour and day boundaries of a zone 45 minutes off the hour;
// and a batch of a busy gateway's calls shrinks to a few records.
func TestCoalesceKeepsEveryAggregate(t *testing.T) {
	nepal := limits.NewDays(time.FixedZone("+0545", 5*3600+45*60))
	// 18:14:50 UTC is 23:59:50 in the zone: the day and the hour end 10s in.
	midnight := time.Date(2026, 3, 1, 18, 14, 50, 0, time.UTC)
	gauges := func(at time.Time) []Record {
		var out []Record
		for i, k := range []Kind{KindConnect, KindSubOpen, KindCall, KindConnect, KindDisconnect, KindSubClose, KindDisconnect, KindNotify} {
			r := Record{Time: at.Add(time.Duration(i) * time.Second), Kind: k, Chain: "polkadot", Project: Public, Count: 2, BytesOut: 10,
				Method: "system_chain", Transport: "ws", Outcome: OutcomeOK, Latency: time.Millisecond}
			out = append(out, r)
		}
		return out
	}
	failing := gatewayRecords(500, midnight)
	for i := range failing {
		if i%5 == 0 {
			failing[i].Outcome, failing[i].Code = OutcomeError, -32000-i%3
		}
		if i%7 == 0 {
			failing[i].Outcome, failing[i].Code = OutcomeLimited, 0
		}
	}
	tests := []struct {
		name   string
		days   limits.Days
		recs   []Record
		atMost int // coalesced records, 0: no bound
	}{
		{"busy gateway: one method, one latency", limits.NewDays(time.UTC), func() []Record {
			recs := gatewayRecords(1000, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
			for i := range recs {
				recs[i].Method, recs[i].CacheHit, recs[i].Latency, recs[i].Outcome, recs[i].Code = "system_accountNextIndex", false, 1400*time.Microsecond, OutcomeOK, 0
				recs[i].Time = recs[i].Time.Add(-time.Duration(i) * time.Millisecond / 2) // 1000 calls in 0.5 s
			}
			return recs
		}(), 1},
		{"across the zone's midnight and hour", nepal, func() []Record {
			recs := gatewayRecords(1000, midnight)
			for i := range recs {
				recs[i].Time = midnight.Add(time.Duration(i) * 25 * time.Millisecond) // 25 s
				recs[i].Latency = time.Millisecond + time.Duration(i%3)*time.Millisecond
			}
			return recs
		}(), 100},
		{"seconds apart over minutes", limits.NewDays(time.UTC), testRecords(400, midnight), 0},
		{"failed calls, each kept", nepal, failing, 0},
		{"gauges and notifications in order", nepal, gauges(midnight.Add(-4 * time.Second)), 8},
	}
	var c coalescer // reused across the cases, as by a writer
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := c.coalesce(tc.recs)
			if tc.atMost > 0 && len(out) > tc.atMost {
				t.Errorf("%d records coalesced into %d, want at most %d", len(tc.recs), len(out), tc.atMost)
			}
			t.Logf("%d records coalesced into %d", len(tc.recs), len(out))
			want, got := aggregated(tc.days, tc.recs), aggregated(tc.days, out)
			if !reflect.DeepEqual(got.Incr, want.Incr) {
				t.Errorf("counters differ:\n got %v\nwant %v", got.Incr, want.Incr)
			}
			if !reflect.DeepEqual(got.Peaks, want.Peaks) || !reflect.DeepEqual(got.Periods, want.Periods) || got.Records != want.Records {
				t.Errorf("peaks, periods or records differ:\n got %v %v %d\nwant %v %v %d", got.Peaks, got.Periods, got.Records,
					want.Peaks, want.Periods, want.Records)
			}
			if !reflect.DeepEqual(got.Errors, want.Errors) {
				t.Errorf("latest errors differ: got %d, want %d", len(got.Errors), len(want.Errors))
			}
		})
	}
}
