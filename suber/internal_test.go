package suber

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestOptionsDefaults(t *testing.T) {
	defaults := Options{
		PoolSize: DefaultPoolSize, DialTimeout: DefaultDialTimeout, PingInterval: DefaultPingInterval,
		ReadLimit: DefaultReadLimit, BackoffMin: DefaultBackoffMin, BackoffMax: DefaultBackoffMax,
		HealthInterval:                DefaultHealthInterval,
		MaxSubscriptionsPerConnection: DefaultMaxSubscriptionsPerConnection,
		MaxExtraConnections:           DefaultMaxExtraConnections,
		ExtraIdle:                     DefaultExtraIdle,
	}
	with := func(change func(o *Options)) Options {
		o := defaults
		change(&o)
		return o
	}
	cases := []struct {
		name string
		in   Options
		want Options // Logger is checked separately
	}{
		{"zero", Options{}, defaults},
		{"negative", Options{PoolSize: -1, DialTimeout: -1, PingInterval: -1, ReadLimit: -1, BackoffMin: -1, BackoffMax: -1, HealthInterval: -1}, defaults},
		{"set values kept",
			Options{PoolSize: 2, DialTimeout: time.Second, PingInterval: 3 * time.Second, ReadLimit: 10, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, HealthInterval: time.Second},
			Options{PoolSize: 2, DialTimeout: time.Second, PingInterval: 3 * time.Second, ReadLimit: 10, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, HealthInterval: time.Second,
				MaxSubscriptionsPerConnection: DefaultMaxSubscriptionsPerConnection, MaxExtraConnections: DefaultMaxExtraConnections, ExtraIdle: DefaultExtraIdle}},
		{"no extra connections", Options{MaxExtraConnections: -1}, with(func(o *Options) { o.MaxExtraConnections = 0 })},
		{"max below min uses default max", Options{BackoffMin: time.Second, BackoffMax: time.Millisecond},
			with(func(o *Options) { o.BackoffMin = time.Second })},
		{"min above default max", Options{BackoffMin: time.Minute},
			with(func(o *Options) { o.BackoffMin, o.BackoffMax = time.Minute, time.Minute })},
		{"max equal to min", Options{BackoffMin: time.Second, BackoffMax: time.Second},
			with(func(o *Options) { o.BackoffMin, o.BackoffMax = time.Second, time.Second })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.withDefaults()
			if got.Logger == nil {
				t.Error("Logger left nil")
			}
			got.Logger = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestJitter(t *testing.T) {
	for _, d := range []time.Duration{2, 3, 20 * time.Millisecond, time.Second, 30 * time.Second} {
		for range 1000 {
			j := jitter(d)
			if j < d/2 || j >= d {
				t.Fatalf("jitter(%v) = %v, want in [%v, %v)", d, j, d/2, d)
			}
		}
	}
	for _, d := range []time.Duration{0, 1} {
		if j := jitter(d); j != d {
			t.Errorf("jitter(%v) = %v", d, j)
		}
	}
}

func TestRedact(t *testing.T) {
	cases := []struct {
		name    string
		url     string
		want    string
		secrets []string
	}{
		{"plain", "ws://127.0.0.1:9944", "ws://127.0.0.1:9944", nil},
		{"root path kept", "wss://rpc.example.com/", "wss://rpc.example.com/", nil},
		{"credentials", "wss://user:s3cret@rpc.example.com", "wss://rpc.example.com", []string{"user", "s3cret"}},
		{"api key in path", "wss://rpc.example.com/ws/0123456789abcdef", "", []string{"0123456789abcdef", "/ws/"}},
		{"api key in query", "https://rpc.example.com?apikey=XYZ", "https://rpc.example.com", []string{"XYZ", "apikey"}},
		{"escaped path", "wss://h/a%2Fkey%20x", "", []string{"key", "a%2F"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			got := redact(u)
			if tc.want != "" && got != tc.want {
				t.Errorf("redact(%s) = %s, want %s", tc.url, got, tc.want)
			}
			for _, s := range tc.secrets {
				if strings.Contains(got, s) {
					t.Errorf("redact(%s) = %s still contains %q", tc.url, got, s)
				}
			}
			if u.String() != tc.url && !strings.Contains(tc.url, "%") {
				t.Errorf("redact modified its argument: %s", u)
			}
		})
	}
}

func TestIsSubscriptionID(t *testing.T) {
	cases := []struct {
		raw  string
		want bool
	}{
		{`"abc"`, true},
		{`""`, true},
		{`12`, true},
		{`-3`, true},
		{`0`, true},
		{``, false},
		{`null`, false},
		{`true`, false},
		{`false`, false},
		{`{}`, false},
		{`[1]`, false},
	}
	for _, tc := range cases {
		t.Run(tc.raw, func(t *testing.T) {
			if got := isSubscriptionID(json.RawMessage(tc.raw)); got != tc.want {
				t.Errorf("isSubscriptionID(%s) = %v, want %v", tc.raw, got, tc.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	if got := truncate([]byte("short")); got != "short" {
		t.Errorf("truncate(short) = %q", got)
	}
	long := strings.Repeat("a", 100)
	if got := truncate([]byte(long)); got != strings.Repeat("a", 64)+"…" {
		t.Errorf("truncate(long) = %q", got)
	}
}
