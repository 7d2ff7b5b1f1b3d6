package app

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestStatsCaddyfile(t *testing.T) {
	cases := []struct {
		name, input string
		// want is the JSON of the stats option, or the error's text.
		want    string
		wantErr bool
	}{
		{"every option", `elara {
			stats {
				store redis
				dir /var/lib/elara
				prefix gw:
				flush_interval 2s
				hourly_retention 72h
				daily_retention 720h
				latest_errors 50
				buffer 1000
				jobs off
				geoip /usr/share/GeoIP/GeoLite2-Country.mmdb
				project_label
			}
		}`, `{"store":"redis","dir":"/var/lib/elara","prefix":"gw:","flush_interval":2000000000,"hourly_retention":259200000000000,` +
			`"daily_retention":2592000000000000,"latest_errors":50,"buffer":1000,"jobs":false,"geoip":"/usr/share/GeoIP/GeoLite2-Country.mmdb","project_label":true}`, false},
		{"off", "elara {\n stats off\n}", `{"disabled":true}`, false},
		{"empty block: defaults", "elara {\n stats {\n }\n}", `{}`, false},
		{"jobs bare is on", "elara {\n stats {\n jobs\n }\n}", `{"jobs":true}`, false},
		{"off with a block", "elara {\n stats off {\n buffer 5\n }\n}", "takes no block", true},
		{"bad argument", "elara {\n stats on\n}", "no argument but 'off'", true},
		{"bad store", "elara {\n stats {\n store etcd\n }\n}", "bolt or redis", true},
		{"bad duration", "elara {\n stats {\n flush_interval soon\n }\n}", "flush_interval", true},
		{"zero buffer", "elara {\n stats {\n buffer 0\n }\n}", "buffer", true},
		{"project_label takes no argument", "elara {\n stats {\n project_label yes\n }\n}", "wrong argument count", true},
		{"unknown option", "elara {\n stats {\n ttl 5\n }\n}", "unrecognized stats option 'ttl'", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkAppOption(t, tc.input, tc.want, tc.wantErr, func(a *App) any { return a.Stats })
		})
	}
}

func TestStatsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		sc   StatsConfig
		want string
	}{
		{"store", StatsConfig{Store: "etcd"}, "store must be bolt or redis"},
		{"hourly retention under an hour", StatsConfig{HourlyRetention: caddy.Duration(30 * 60e9)}, "at least 1h"},
		{"daily retention under a day", StatsConfig{DailyRetention: caddy.Duration(3600e9)}, "at least 24h"},
		{"latest_errors", StatsConfig{LatestErrors: 20000}, "latest_errors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.sc.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	off := StatsConfig{Disabled: true, Store: "etcd"}
	if err := off.validate(); err != nil {
		t.Errorf("stats off: %v", err)
	}
}
