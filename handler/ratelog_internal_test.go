package handler

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// A flood of one kind of event gives one line per interval, which says
// how many were left out; kinds do not hold each other back.
func TestRateLogOneLinePerKindPerInterval(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	now := time.Unix(1_700_000_000, 0)
	l := newRateLog(zap.New(core), 10*time.Second, func() time.Time { return now })
	type want struct {
		kind       string
		suppressed int64
	}
	steps := []struct {
		name    string
		advance time.Duration
		kind    string
		logged  *want
	}{
		{"first timeout is logged", 0, logUpstreamTimeout, &want{logUpstreamTimeout, 0}},
		{"second within the interval is counted", time.Second, logUpstreamTimeout, nil},
		{"third within the interval is counted", 8 * time.Second, logUpstreamTimeout, nil},
		{"another kind is not held back", 0, logClientSlow, &want{logClientSlow, 0}},
		{"after the interval, logged with the count", time.Second, logUpstreamTimeout, &want{logUpstreamTimeout, 2}},
		{"the count starts over", time.Second, logUpstreamTimeout, nil},
		{"long after, logged with the new count", time.Hour, logUpstreamTimeout, &want{logUpstreamTimeout, 1}},
	}
	for _, st := range steps {
		now = now.Add(st.advance)
		l.warn(st.kind, "event", zap.String("chain", "dev"))
		entries := logs.TakeAll()
		if st.logged == nil {
			if len(entries) != 0 {
				t.Fatalf("%s: logged %v, want nothing", st.name, entries[0].ContextMap())
			}
			continue
		}
		if len(entries) != 1 {
			t.Fatalf("%s: %d lines, want 1", st.name, len(entries))
		}
		f := entries[0].ContextMap()
		if f["kind"] != st.logged.kind || f["suppressed"] != st.logged.suppressed || f["chain"] != "dev" || entries[0].Level != zap.WarnLevel {
			t.Fatalf("%s: line %v at %v, want kind %s suppressed %d chain dev at warn", st.name, f, entries[0].Level, st.logged.kind, st.logged.suppressed)
		}
	}
}

func TestPeekMethod(t *testing.T) {
	cases := []struct{ name, data, want string }{
		{"plain", `{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":["0x00`, "author_submitExtrinsic"},
		{"spaces", `{"method" : "system_chain"`, "system_chain"},
		{"no method", `{"jsonrpc":"2.0","params":["0x`, ""},
		{"cut in the name", `{"method":"author_sub`, ""},
		{"not a name", `{"method":"<script>"}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := peekMethod([]byte(tc.data))
			if got := f.String; got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
