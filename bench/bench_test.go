package main

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// samples returns 1ms..n ms, sorted.
func samples(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = ms(i + 1)
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	tests := []struct {
		n    int
		p    float64
		want time.Duration
	}{
		{1, 50, ms(1)},
		{1, 99, ms(1)},
		{2, 50, ms(1)}, // rank ceil(1) = 1
		{3, 50, ms(2)},
		{4, 50, ms(2)},
		{10, 99, ms(10)},
		{100, 50, ms(50)},
		{100, 99, ms(99)}, // 0.99*100 in floating point must not round up to 100
		{100, 100, ms(100)},
		{1000, 99, ms(990)},
		{1001, 99, ms(991)}, // ceil(990.99)
		{200, 0, ms(1)},     // p=0 clamps to the smallest sample
	}
	for _, tt := range tests {
		if got := percentile(samples(tt.n), tt.p); got != tt.want {
			t.Errorf("percentile(1..%dms, %v) = %v, want %v", tt.n, tt.p, got, tt.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(empty) = %v, want 0", got)
	}
}

func TestSummarize(t *testing.T) {
	s := summarize(samples(1000), 3, 2*time.Second)
	if s.count != 1000 || s.errors != 3 || s.rate != 500 {
		t.Errorf("count/errors/rate = %d/%d/%v, want 1000/3/500", s.count, s.errors, s.rate)
	}
	if s.p50 != ms(500) || s.p99 != ms(990) || s.max != ms(1000) {
		t.Errorf("p50/p99/max = %v/%v/%v", s.p50, s.p99, s.max)
	}
	if z := summarize(nil, 0, time.Second); z.rate != 0 || z.p99 != 0 {
		t.Errorf("empty summary = %+v", z)
	}
}

func TestTableMarkdown(t *testing.T) {
	tb := table{cols: []column{{name: "transport"}, {name: "req/s", right: true}, {name: "p50", right: true}}}
	tb.add("http", "12345", "870 µs")
	tb.add("ws", "9", "1.20 ms")
	want := "" +
		"| transport | req/s |     p50 |\n" +
		"| --------- | ----: | ------: |\n" +
		"| http      | 12345 |  870 µs |\n" +
		"| ws        |     9 | 1.20 ms |\n"
	if got := tb.markdown(); got != want {
		t.Errorf("markdown:\n%s\nwant:\n%s", got, want)
	}
}

func TestReportTable(t *testing.T) {
	direct, elara := &directTarget{}, &caddyTarget{name: "elara"}
	rep := report{results: []Result{
		{Case: Case{Transport: HTTP, Target: direct, Workload: passThrough},
			summary: summarize(samples(100), 0, time.Second), nodeCalls: 1,
			proxyCPU: math.NaN(), helperCPU: math.NaN(), nodeCPU: 20e-6, clientCPU: 31.4e-6, otherCPU: 0.5},
		{Case: Case{Transport: WS, Target: elara, Workload: passThrough},
			nodeCalls: math.NaN(), helperCPU: math.NaN(), err: errTest, summary: summary{errors: 4}},
	}}
	got := rep.table().markdown()
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "| transport | setup  |") {
		t.Fatalf("want header, rule and 2 rows, got:\n%s", got)
	}
	if !strings.Contains(lines[2], "50.00 ms") || !strings.Contains(lines[2], "99.00 ms") || !strings.Contains(lines[2], "1.00") {
		t.Errorf("http row: %s", lines[2])
	}
	if !strings.Contains(lines[2], "|  – |") && !strings.Contains(lines[2], " – |") {
		t.Errorf("http row lacks the dash for no Caddy CPU: %s", lines[2])
	}
	for _, want := range []string{" 20 µs |", " 31 µs |", " 0.50 CPU |"} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("http row lacks %q: %s", want, lines[2])
		}
	}
	if !strings.Contains(lines[3], "failed") || !strings.Contains(lines[3], " 4 |") {
		t.Errorf("failed row: %s", lines[3])
	}
	if h := rep.header(); !strings.Contains(h, "call system_accountNextIndex") {
		t.Errorf("header lacks the call: %s", h)
	}
}

var errTest = &testError{}

type testError struct{}

func (*testError) Error() string { return "test" }

func TestFmtLatency(t *testing.T) {
	for d, want := range map[time.Duration]string{
		870 * time.Microsecond:  "870 µs",
		1234 * time.Microsecond: "1.23 ms",
		ms(250):                 "250 ms",
	} {
		if got := fmtLatency(d); got != want {
			t.Errorf("fmtLatency(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestRPCCall(t *testing.T) {
	req := string(passThrough.Request(nil, 7))
	if want := `{"jsonrpc":"2.0","id":7,"method":"system_accountNextIndex","params":["5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"]}`; req != want {
		t.Errorf("request %s", req)
	}
	if err := passThrough.Check([]byte(`{"jsonrpc":"2.0","id":7,"result":0}`), 7); err != nil {
		t.Errorf("good reply: %v", err)
	}
	for _, bad := range []string{
		`{"jsonrpc":"2.0","id":8,"result":0}`,
		`{"jsonrpc":"2.0","id":7,"result":1}`,
		`{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"x"}}`,
		`{"jsonrpc":"2.0","id":7}`,
		`not json`,
	} {
		if passThrough.Check([]byte(bad), 7) == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestSelectCases(t *testing.T) {
	cs, fan, err := selectCases([]string{"ws"}, []string{"elara", "direct"}, []int{10})
	if err != nil {
		t.Fatal(err)
	}
	if len(fan) != 0 {
		t.Errorf("fan-out cases without the fanout group: %v", fan)
	}
	var names []string
	for _, c := range cs {
		names = append(names, string(c.Transport)+"/"+c.Target.Name())
	}
	if want := []string{"ws/direct", "ws/elara"}; !slices.Equal(names, want) {
		t.Errorf("cases %v, want %v", names, want)
	}
	if _, _, err := selectCases([]string{"nope"}, targetNames(), nil); err == nil {
		t.Error("unknown group accepted")
	}
	if _, _, err := selectCases(caseGroups(), []string{"nope"}, nil); err == nil {
		t.Error("unknown target accepted")
	}
	respond := &caddyTarget{name: "respond", httpOnly: true}
	if respond.Supports(WS) || !respond.Supports(HTTP) {
		t.Error("httpOnly target")
	}
}

func TestCaddyfile(t *testing.T) {
	c := &caddyTarget{name: "rp", site: "reverse_proxy " + nodeAddrToken, port: 8123}
	got := c.caddyfile("127.0.0.1:9944")
	for _, want := range []string{"admin off", "default_bind 127.0.0.1", "auto_https off", "level ERROR",
		"http://127.0.0.1:8123 {\n\treverse_proxy 127.0.0.1:9944\n}"} {
		if !strings.Contains(got, want) {
			t.Errorf("Caddyfile lacks %q:\n%s", want, got)
		}
	}
	c.adminPort = 2020
	if got := c.caddyfile("x"); !strings.Contains(got, "admin 127.0.0.1:2020") {
		t.Errorf("profiling Caddyfile:\n%s", got)
	}
}

func TestCommandLine(t *testing.T) {
	if got := commandLine([]string{"/tmp/go-build123/b001/exe/bench", "-d", "5s", "-cases", "a b"}); got != "go run ./bench -d 5s -cases 'a b'" {
		t.Errorf("commandLine = %q", got)
	}
}

func TestNodeCommands(t *testing.T) {
	n := fakenode.Start(t)
	for cmd, want := range map[string]string{
		"calls system_chain": "0",
		"conns":              "0",
		"subs":               "error usage: subs <method>",
		"frobnicate":         `error unknown command "frobnicate"`,
	} {
		if got := nodeCommand(n, cmd); got != want {
			t.Errorf("%s: got %q, want %q", cmd, got, want)
		}
	}
	before := n.Chain().Best().Number
	if got, want := nodeCommand(n, "new-block"), strconv.FormatUint(before+1, 10); got != want {
		t.Errorf("new-block: got %q, want %q", got, want)
	}
}

func TestCheckLarge(t *testing.T) {
	want := `"0x` + strings.Repeat("ab", fastCheckMin) + `"`
	c := &rpcCall{name: "metadata", method: "state_getMetadata", params: `[]`, want: want}
	good := []string{
		`{"jsonrpc":"2.0","id":7,"result":` + want + `}`,
		`{"jsonrpc":"2.0","result": ` + want + `,"id":7}`,
		` {"id": 7, "jsonrpc":"2.0", "result":` + want + ` } `,
	}
	for _, g := range good {
		if err := c.Check([]byte(g), 7); err != nil {
			t.Errorf("good reply %.60s…: %v", g, err)
		}
	}
	short := want[:len(want)-3] + `"`
	for _, bad := range []string{
		`{"jsonrpc":"2.0","id":8,"result":` + want + `}`,
		`{"jsonrpc":"2.0","result":` + want + `}`,
		`{"jsonrpc":"2.0","id":7,"result":` + short + `}`,
		`{"jsonrpc":"2.0","id":7,"result":` + want[:len(want)-1] + `ab"}`,
		`{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"x"}}`,
		`not json`,
	} {
		if c.Check([]byte(bad), 7) == nil {
			t.Errorf("accepted %.80s…", bad)
		}
	}
	// A static target's reply carries id 1 whatever the request's id.
	s := staticReply{c}
	if err := s.Check([]byte(`{"jsonrpc":"2.0","id":1,"result":`+want+`}`), 99); err != nil {
		t.Errorf("static reply: %v", err)
	}
}

func TestCheckSmallRecompacts(t *testing.T) {
	c := &rpcCall{want: `{"a":1,"b":[2]}`}
	if err := c.Check([]byte(`{"jsonrpc":"2.0","id":3,"result":{"a": 1, "b": [2]}}`), 3); err != nil {
		t.Errorf("spaced result: %v", err)
	}
	if c.Check([]byte(`{"jsonrpc":"2.0","id":3,"result":{"a":2,"b":[2]}}`), 3) == nil {
		t.Error("other result accepted")
	}
}

func TestStaticSites(t *testing.T) {
	ws := []Workload{passThrough, staticReply{&rpcCall{name: "header", want: `{"number":"0x1"}`}}, &rpcCall{name: "unresolved"}}
	site := respondSite(ws)
	for _, want := range []string{
		"handle /bench {\n\theader Content-Type application/json\n\trespond `{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"bench\"}` 200\n}",
		"handle /bench/accountNextIndex {",
		"respond `{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"number\":\"0x1\"}}` 200",
	} {
		if !strings.Contains(site, want) {
			t.Errorf("respond site lacks %q:\n%s", want, site)
		}
	}
	if strings.Contains(site, "unresolved") {
		t.Errorf("respond site routes a workload without a reply:\n%s", site)
	}
	r := &respondTarget{caddyTarget: caddyTarget{name: "respond", port: 8000, httpOnly: true}}
	if got := (Case{Transport: HTTP, Target: r, Workload: staticReply{passThrough}}).URL(); got != "http://127.0.0.1:8000/bench/accountNextIndex" {
		t.Errorf("respond URL %s", got)
	}
}

func TestStaticTargetsGetStaticReplies(t *testing.T) {
	cs, _, err := selectCases([]string{"http", "cache-http", "cache-ws"}, targetNames(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		_, static := c.Target.(staticTarget)
		_, wrapped := c.Workload.(staticReply)
		if static != wrapped {
			t.Errorf("%s: static target %v, static reply %v", c.Name(), static, wrapped)
		}
		if static && c.Transport == WS {
			t.Errorf("%s: static target over WebSocket", c.Name())
		}
		if c.Target.Name() == "reverse_proxy" && c.Section == sectionCached {
			t.Errorf("%s: reverse_proxy in the cached section", c.Name())
		}
	}
}
