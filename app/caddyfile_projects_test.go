package app

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestProjectsCaddyfile(t *testing.T) {
	cases := []struct {
		name, input string
		// want is the JSON of plans and projects, or the error's text.
		want    string
		wantErr bool
	}{
		{"plan and projects", `elara {
			plan gold {
				requests_per_second 20
				burst 40
				requests_per_day 1000000
				bytes_per_day 10GB
				connections 100
				subscriptions 64
				owner_requests_per_day 3000000
				owner_bytes_per_day 30GB
			}
			projects {
				store bolt
				dir /var/lib/elara
				time_zone UTC+8
				public gold
				redis_down closed
			}
		}`, `{"plans":[{"name":"gold","requests_per_second":20,"burst":40,"requests_per_day":1000000,"bytes_per_day":10000000000,` +
			`"connections":100,"subscriptions":64,"owner_requests_per_day":3000000,"owner_bytes_per_day":30000000000}],` +
			`"projects":{"store":"bolt","dir":"/var/lib/elara","time_zone":"UTC+8","public":"gold","redis_down":"closed"}}`, false},
		{"fractional rate", "elara {\n plan slow {\n requests_per_second 0.5\n }\n projects\n}",
			`{"plans":[{"name":"slow","requests_per_second":0.5}],"projects":{}}`, false},
		{"plan twice", "elara {\n plan a\n plan a\n}", "defined twice", true},
		{"plan without name", "elara {\n plan {\n }\n}", "wrong argument count", true},
		{"unknown plan option", "elara {\n plan a {\n requests 5\n }\n}", "unrecognized plan option 'requests'", true},
		{"negative rate", "elara {\n plan a {\n requests_per_second -1\n }\n}", "bad requests_per_second", true},
		{"bad size", "elara {\n plan a {\n bytes_per_day lots\n }\n}", "bad size", true},
		{"bad store", "elara {\n projects {\n store etcd\n }\n}", "bolt or redis", true},
		{"bad zone", "elara {\n projects {\n time_zone Mars/Base\n }\n}", "time zone", true},
		{"bad redis_down", "elara {\n projects {\n redis_down maybe\n }\n}", "open or closed", true},
		{"unknown projects option", "elara {\n projects {\n ttl 5\n }\n}", "unrecognized projects option", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkAppOption(t, tc.input, tc.want, tc.wantErr, func(a *App) any {
				return struct {
					Plans    any `json:"plans,omitempty"`
					Projects any `json:"projects,omitempty"`
				}{a.Plans, a.Projects}
			})
		})
	}
}

func TestProjectsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		pc   ProjectsConfig
		want string
	}{
		{"store", ProjectsConfig{Store: "etcd"}, "store must be bolt or redis"},
		{"redis_down", ProjectsConfig{RedisDown: "sometimes"}, "redis_down must be open or closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &App{Projects: &tc.pc}
			if err := a.validateAccess(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// checkAppOption adapts input as the elara global option: with wantErr
// its error must contain want, otherwise the JSON of the part of the
// config that part picks must equal want.
func checkAppOption(t *testing.T, input, want string, wantErr bool, part func(*App) any) {
	t.Helper()
	a := new(App)
	err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
	if wantErr {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want %q", err, want)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(part(a))
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
