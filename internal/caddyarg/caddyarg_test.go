package caddyarg_test

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/elara-gateway/elara/internal/caddyarg"
)

// read runs one reader on `opt <args>` at line 3 of a Caddyfile.
func read[T any](t *testing.T, args string, fn func(*caddyfile.Dispenser) (T, error)) (T, error) {
	t.Helper()
	d := caddyfile.NewTestDispenser("\n\nopt " + args)
	d.Next()
	return fn(d)
}

// check asserts a reader's answer: want on success, or an error that
// names the option, the line and, when set, mentions.
func check[T comparable](t *testing.T, got T, err error, ok bool, want T, mentions string) {
	t.Helper()
	if !ok {
		if err == nil {
			t.Fatalf("accepted as %v", got)
		}
		for _, s := range []string{"opt", "Testfile:3", mentions} {
			if !strings.Contains(err.Error(), s) {
				t.Fatalf("error %q does not mention %q", err, s)
			}
		}
		return
	}
	if err != nil || got != want {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
}

func TestDuration(t *testing.T) {
	cases := []struct {
		name, args     string
		ok, okWithZero bool
		want           time.Duration
		mentions       string
	}{
		{"seconds", "5s", true, true, 5 * time.Second, ""},
		{"days", "1d", true, true, 24 * time.Hour, ""},
		{"compound", "1m30s", true, true, 90 * time.Second, ""},
		{"zero", "0s", false, true, 0, "more than zero"},
		{"bare zero", "0", false, true, 0, "more than zero"},
		{"negative", "-1s", false, false, 0, "negative"},
		{"negative zero", "-0s", false, true, 0, "more than zero"},
		{"no unit", "5", false, false, 0, "'5'"},
		{"garbage", "soon", false, false, 0, "soon"},
		{"no argument", "", false, false, 0, ""},
		{"two arguments", "1s 2s", false, false, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := read(t, tc.args, caddyarg.Duration)
			check(t, got, err, tc.ok, caddy.Duration(tc.want), tc.mentions)
			got, err = read(t, tc.args, caddyarg.DurationOrZero)
			check(t, got, err, tc.okWithZero, caddy.Duration(tc.want), tc.mentions)
		})
	}
}

func TestSize(t *testing.T) {
	cases := []struct {
		name, args string
		ok         bool
		want       int64
		mentions   string
	}{
		{"MiB", "16MiB", true, 16 << 20, ""},
		{"lower case", "64kib", true, 64 << 10, ""},
		{"MB", "16MB", true, 16_000_000, ""},
		{"bytes", "1024", true, 1024, ""},
		{"fraction", "1.5KiB", true, 1536, ""},
		{"1TiB", "1TiB", true, 1 << 40, ""},
		{"zero", "0", false, 0, "more than zero"},
		{"zero with unit", "0MiB", false, 0, "more than zero"},
		{"negative", "-1", false, 0, "-1"},
		{"over 1TiB", "2TiB", false, 0, "1TiB"},
		{"unknown unit", "16XiB", false, 0, "16XiB"},
		{"no argument", "", false, 0, ""},
		{"two arguments", "1MiB 2MiB", false, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := read(t, tc.args, caddyarg.Size)
			check(t, got, err, tc.ok, tc.want, tc.mentions)
		})
	}
}

func TestCount(t *testing.T) {
	cases := []struct {
		name, args     string
		ok, okWithZero bool
		want           int
		mentions       string
	}{
		{"one", "1", true, true, 1, ""},
		{"many", "4096", true, true, 4096, ""},
		{"zero", "0", false, true, 0, "more than zero"},
		{"negative", "-1", false, false, 0, "negative"},
		{"fraction", "1.5", false, false, 0, "1.5"},
		{"words", "lots", false, false, 0, "lots"},
		{"no argument", "", false, false, 0, ""},
		{"two arguments", "1 2", false, false, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := read(t, tc.args, caddyarg.Count)
			check(t, got, err, tc.ok, tc.want, tc.mentions)
			got, err = read(t, tc.args, caddyarg.CountOrZero)
			check(t, got, err, tc.okWithZero, tc.want, tc.mentions)
		})
	}
}

func TestOnOff(t *testing.T) {
	cases := []struct {
		name, args string
		ok, want   bool
	}{
		{"bare", "", true, true},
		{"on", "on", true, true},
		{"off", "off", true, false},
		{"other", "yes", false, false},
		{"two", "on off", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := read(t, tc.args, caddyarg.OnOff)
			check(t, got, err, tc.ok, tc.want, "")
		})
	}
}
