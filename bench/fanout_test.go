package main

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
)

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tcaddy\nVmPeak:\t  900000 kB\nVmRSS:\t   61648 kB\nRssAnon:\t   40000 kB\n"
	got, err := parseVmRSS([]byte(status))
	if err != nil || got != 61648*1024 {
		t.Errorf("parseVmRSS = %d, %v; want %d", got, err, 61648*1024)
	}
	for _, bad := range []string{"", "Name:\tx\n", "VmRSS:\t12 MB\n", "VmRSS:\tx kB\n"} {
		if _, err := parseVmRSS([]byte(bad)); err == nil {
			t.Errorf("parseVmRSS(%q) accepted", bad)
		}
	}
}

func TestReadRSSSelf(t *testing.T) {
	if _, err := readRSS(1 << 30); err == nil {
		t.Error("readRSS of a missing pid")
	}
}

func TestHeadNumber(t *testing.T) {
	for msg, want := range map[string]uint64{
		`{"params":{"result":{"parentHash":"0x00","number":"0x1a","stateRoot":"0x"}}}`: 26,
		`{"number":"0x0"}`:                0,
		`{"number":"0xFFffFFffFFffFFff"}`: math.MaxUint64,
	} {
		if got, ok := headNumber([]byte(msg)); !ok || got != want {
			t.Errorf("headNumber(%s) = %d, %v; want %d", msg, got, ok, want)
		}
	}
	for _, bad := range []string{`{"number":26}`, `{"number":"0x"}`, `{"number":"0x1g"}`, `{"number":"0x1`,
		`{"number":"0x10000000000000000"}`, `{}`} {
		if n, ok := headNumber([]byte(bad)); ok {
			t.Errorf("headNumber(%s) = %d, accepted", bad, n)
		}
	}
}

func TestAggregateFanout(t *testing.T) {
	sent := map[uint64]time.Duration{10: ms(100), 11: ms(300), 12: ms(500)}
	clients := [][]reception{
		// the head at subscription (9) is ignored; all three on time
		{{9, ms(50)}, {10, ms(102)}, {11, ms(301)}, {12, ms(505)}},
		// 11 lost, 12 twice
		{{10, ms(110)}, {12, ms(520)}, {12, ms(521)}},
		// 11 after 12: reordered
		{{10, ms(104)}, {12, ms(503)}, {11, ms(530)}},
	}
	st := aggregateFanout(sent, clients)
	if st.blocks != 3 || st.expected != 9 || st.delivered != 8 || st.lost != 1 || st.dup != 1 || st.reordered != 1 {
		t.Errorf("counts %+v", st)
	}
	wantPer := []time.Duration{ms(1), ms(2), ms(3), ms(4), ms(5), ms(10), ms(20), ms(230)}
	if !slices.Equal(st.perClient, wantPer) {
		t.Errorf("perClient %v, want %v", st.perClient, wantPer)
	}
	// block 10: last at 110 (10ms); 11: last at 530 (230ms); 12: last at 520 (20ms)
	if want := []time.Duration{ms(10), ms(20), ms(230)}; !slices.Equal(st.last, want) {
		t.Errorf("last %v, want %v", st.last, want)
	}
	if st.firstLast != ms(10) || st.finalLast != ms(20) {
		t.Errorf("first/final block %v/%v, want 10ms/20ms", st.firstLast, st.finalLast)
	}
	if p := percentile(st.last, 50); p != ms(20) {
		t.Errorf("last p50 %v", p)
	}

	// A block nobody got has no last-client latency; it is lost for all.
	st = aggregateFanout(map[uint64]time.Duration{1: 0, 2: ms(10)}, [][]reception{{{1, ms(1)}}, {{1, ms(3)}}})
	if st.lost != 2 || len(st.last) != 1 || st.last[0] != ms(3) {
		t.Errorf("block lost by all: %+v", st)
	}
	if st := aggregateFanout(nil, nil); st.expected != 0 || len(st.last) != 0 {
		t.Errorf("empty: %+v", st)
	}
}

func TestSubscriptionID(t *testing.T) {
	id, isReply, err := subscriptionID([]byte(`{"jsonrpc":"2.0","id":1,"result":"abcDEF0123456789"}`))
	if err != nil || !isReply || id != "abcDEF0123456789" {
		t.Errorf("reply: %q %v %v", id, isReply, err)
	}
	if _, isReply, err := subscriptionID([]byte(`{"jsonrpc":"2.0","method":"chain_newHead","params":{"subscription":"x","result":{}}}`)); isReply || err != nil {
		t.Errorf("notification taken for a reply: %v %v", isReply, err)
	}
	for _, bad := range []string{
		`{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"x"}}`,
		`{"jsonrpc":"2.0","id":2,"result":"abc"}`,
		`{"jsonrpc":"2.0","id":1,"result":17}`,
		`nope`,
	} {
		if _, _, err := subscriptionID([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestSubscriberHandle(t *testing.T) {
	s := &subscriber{pattern: []byte(`"subscription":"abc"`)}
	s.handle([]byte(`{"method":"chain_newHead","params":{"subscription":"abc","result":{"number":"0x5"}}}`), ms(1))
	s.handle([]byte(`{"method":"chain_newHead","params":{"subscription":"other","result":{"number":"0x6"}}}`), ms(2))
	s.handle([]byte(`{"method":"chain_newHead","params":{"subscription":"abc","result":{"number":"0x4"}}}`), ms(3))
	if len(s.recs) != 2 || s.recs[0] != (reception{5, ms(1)}) || s.bad != 1 || s.newest.Load() != 5 {
		t.Errorf("recs %v bad %d newest %d", s.recs, s.bad, s.newest.Load())
	}
	if !strings.Contains(s.badMsg, "other") {
		t.Errorf("badMsg %q", s.badMsg)
	}
}

func TestFanoutTable(t *testing.T) {
	r := FanoutResult{
		Case: FanoutCase{Clients: 1000, Target: "elara"},
		fanoutStats: fanoutStats{blocks: 2, expected: 2000, delivered: 2000,
			perClient: samples(2000), last: []time.Duration{ms(1500), ms(2000)}},
		subsBefore: 1, subsWith: 2, connectTime: 1500 * time.Millisecond, every: ms(200), ackP50: 400 * time.Microsecond,
		rssBefore: 60 << 20, rssWith: 60<<20 + 1000*50*1024,
		proxyCPU: 0.025, nodeCPU: math.NaN(), clientCPU: 0.011, otherCPU: 0.5,
	}
	failed := FanoutResult{Case: FanoutCase{Clients: 10, Target: "direct"}, subsBefore: -1, subsWith: -1}
	got := fanoutTable([]FanoutResult{r, failed}).markdown()
	rows := strings.Split(strings.TrimSpace(got), "\n")
	if len(rows) != 4 {
		t.Fatalf("want header, rule and 2 rows:\n%s", got)
	}
	want := []string{"1000", "elara", "1 → 2 (1)", "1.5 s", "200 ms", "1500 ms", "2000 ms", "0 µs → 0 µs", "1000 ms", "1980 ms",
		"0/0/0", "0", "400 µs", "60 → 109 MiB", "50.0 KiB", "25.00 ms", "–", "11.00 ms", "0.50 CPU"}
	if cells := tableCells(rows[2]); !slices.Equal(cells, want) {
		t.Errorf("row %q\nwant %q", cells, want)
	}
	if cells := tableCells(rows[3]); cells[2] != "?" || cells[4] != "failed" {
		t.Errorf("failed row %q", cells)
	}
	rep := report{fanout: []FanoutResult{r}, fanSpec: fanoutSpec{blocks: 30, interval: 200 * time.Millisecond}, nofile: 20000}
	var b strings.Builder
	if err := rep.write(&b); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "30 blocks, one every 200ms; open-file limit 20000") || strings.Contains(out, "per case after") {
		t.Errorf("fan-out-only report:\n%s", out)
	}
}

func TestSelectFanout(t *testing.T) {
	cs, fan, err := selectCases([]string{"fanout"}, []string{"elara", "reverse_proxy", "respond"}, []int{1000, 10000})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Errorf("request cases in a fan-out-only selection: %d", len(cs))
	}
	var names []string
	for _, f := range fan {
		names = append(names, f.Name())
	}
	want := []string{"fanout-1000-elara", "fanout-1000-reverse_proxy", "fanout-follow-1000-elara",
		"fanout-10000-elara", "fanout-10000-reverse_proxy", "fanout-follow-10000-elara"}
	if !slices.Equal(names, want) {
		t.Errorf("fan-out cases %v, want %v", names, want)
	}
	if _, _, err := selectCases([]string{"fanout"}, []string{"respond"}, []int{10}); err == nil {
		t.Error("fan-out on respond only: want no case selected")
	}
}

func TestParseSizes(t *testing.T) {
	if got, err := parseSizes("1000, 10000"); err != nil || !slices.Equal(got, []int{1000, 10000}) {
		t.Errorf("parseSizes = %v, %v", got, err)
	}
	for _, bad := range []string{"0", "x", "10,-1"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) accepted", bad)
		}
	}
	o, err := parseFlags([]string{"-quick"})
	if err != nil || !slices.Equal(o.fanout, []int{1000}) {
		t.Errorf("-quick fan-out sizes %v, %v", o.fanout, err)
	}
	o, err = parseFlags(nil)
	if err != nil || !slices.Equal(o.fanout, []int{1000, 10000}) || o.blocks != 30 || o.interval != 200*time.Millisecond {
		t.Errorf("defaults %v %d %v, %v", o.fanout, o.blocks, o.interval, err)
	}
}

func TestNodeStorageCommands(t *testing.T) {
	n := fakenode.Start(t)
	if got := nodeCommand(n, "set-storage "+storageKey+" "+storageValue); got != "ok" {
		t.Fatalf("set-storage: %q", got)
	}
	if v, ok := n.Chain().Storage(storageKey); !ok || v != storageValue {
		t.Errorf("storage %q %v", v, ok)
	}
	if got := nodeCommand(n, "best-hash"); got != n.Chain().Best().Hash {
		t.Errorf("best-hash %q", got)
	}
	if got := nodeCommand(n, "set-storage 12 34"); !strings.HasPrefix(got, "error usage") {
		t.Errorf("bad set-storage: %q", got)
	}
}

// tableCells splits a Markdown table row into trimmed cells.
func tableCells(row string) []string {
	f := strings.Split(strings.Trim(row, "|"), "|")
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	return f
}
