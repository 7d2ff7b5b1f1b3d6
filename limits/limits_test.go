package limits

import (
	"encoding/json"
	"strings"
	"testing"
)

// originalPlans are the four levels of the original Elara.
func originalPlans(t *testing.T) Plans {
	t.Helper()
	const gb = 1 << 30
	ps, err := NewPlans(
		Plan{Name: "normal", Limits: Limits{RequestsPerSecond: 5, RequestsPerDay: 100_000, BytesPerDay: 1 * gb}},
		Plan{Name: "bronze", Limits: Limits{RequestsPerSecond: 10, RequestsPerDay: 200_000, BytesPerDay: 2 * gb}},
		Plan{Name: "silver", Limits: Limits{RequestsPerSecond: 15, RequestsPerDay: 500_000, BytesPerDay: 5 * gb}},
		Plan{Name: "gold", Limits: Limits{RequestsPerSecond: 20, RequestsPerDay: 1_000_000, BytesPerDay: 10 * gb}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func ptr[T any](v T) *T { return &v }

func TestPlanWithOverrides(t *testing.T) {
	plans := originalPlans(t)
	cases := []struct {
		name string
		plan string
		o    *Overrides
		want Limits
	}{
		{"no overrides keep the plan", "normal", nil,
			Limits{RequestsPerSecond: 5, RequestsPerDay: 100_000, BytesPerDay: 1 << 30}},
		{"empty overrides keep the plan", "gold", &Overrides{},
			Limits{RequestsPerSecond: 20, RequestsPerDay: 1_000_000, BytesPerDay: 10 << 30}},
		{"one override replaces one limit", "bronze", &Overrides{RequestsPerDay: ptr(int64(7))},
			Limits{RequestsPerSecond: 10, RequestsPerDay: 7, BytesPerDay: 2 << 30}},
		{"zero removes a limit", "silver", &Overrides{BytesPerDay: ptr(int64(0)), Connections: ptr(int64(3))},
			Limits{RequestsPerSecond: 15, RequestsPerDay: 500_000, Connections: 3}},
		{"rate and burst", "normal", &Overrides{RequestsPerSecond: ptr(0.5), Burst: ptr(int64(4)), Subscriptions: ptr(int64(9))},
			Limits{RequestsPerSecond: 0.5, Burst: 4, RequestsPerDay: 100_000, BytesPerDay: 1 << 30, Subscriptions: 9}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, ok := plans[c.plan]
			if !ok {
				t.Fatalf("no plan %q", c.plan)
			}
			if got := p.For(c.o); got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
	if !plans.Has("gold") || plans.Has("platinum") {
		t.Error("Has is wrong")
	}
}

func TestPlanValidation(t *testing.T) {
	cases := []struct {
		name  string
		plans []Plan
		want  string
	}{
		{"no name", []Plan{{Limits: Limits{RequestsPerDay: 1}}}, "without a name"},
		{"negative limit", []Plan{{Name: "x", Limits: Limits{RequestsPerDay: -1}}}, "requests_per_day must be ≥ 0"},
		{"negative rate", []Plan{{Name: "x", Limits: Limits{RequestsPerSecond: -2}}}, "requests_per_second"},
		{"duplicate", []Plan{{Name: "x"}, {Name: "x"}}, `plan "x" defined twice`},
		{"negative owner cap", []Plan{{Name: "x", OwnerBytesPerDay: -5}}, "owner limits"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewPlans(c.plans...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
	if err := (Overrides{Burst: ptr(int64(-1))}).Validate(); err == nil {
		t.Error("a negative override passed")
	}
}

func TestEffectiveBurst(t *testing.T) {
	cases := []struct {
		name string
		l    Limits
		want int64
	}{
		{"explicit", Limits{RequestsPerSecond: 5, Burst: 20}, 20},
		{"rate rounded up", Limits{RequestsPerSecond: 2.5}, 3},
		{"at least one", Limits{RequestsPerSecond: 0.1}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.l.EffectiveBurst(); got != c.want {
				t.Errorf("got %d, want %d", got, c.want)
			}
		})
	}
}

// The JSON of plans and overrides is what the config and admin API use.
func TestLimitsJSON(t *testing.T) {
	plans := originalPlans(t)
	got, _ := json.Marshal(plans["gold"])
	if want := `{"name":"gold","requests_per_second":20,"requests_per_day":1000000,"bytes_per_day":10737418240}`; string(got) != want {
		t.Errorf("plan JSON %s, want %s", got, want)
	}
	var o Overrides
	if err := json.Unmarshal([]byte(`{"requests_per_day":0,"burst":7}`), &o); err != nil {
		t.Fatal(err)
	}
	l := o.Apply(plans["gold"].Limits)
	if l.RequestsPerDay != 0 || l.Burst != 7 || l.RequestsPerSecond != 20 {
		t.Errorf("overrides from JSON: %+v", l)
	}
	back, _ := json.Marshal(o)
	if string(back) != `{"burst":7,"requests_per_day":0}` {
		t.Errorf("overrides JSON %s keeps an explicit 0", back)
	}
}
