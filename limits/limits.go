package limits

import (
	"errors"
	"fmt"
	"math"
)

// Names of the limits, as used in JSON and in Exceeded.Limit.
const (
	RequestsPerSecond   = "requests_per_second"
	Burst               = "burst"
	RequestsPerDay      = "requests_per_day"
	BytesPerDay         = "bytes_per_day"
	Connections         = "connections"
	Subscriptions       = "subscriptions"
	OwnerRequestsPerDay = "owner_requests_per_day"
	OwnerBytesPerDay    = "owner_bytes_per_day"
)

// Bounds of the rate limit, so the limiter's times (int64 nanoseconds)
// cannot overflow: at the slowest rate a burst of MaxBurst spans about 31
// years.
const (
	// MinRequestsPerSecond is the slowest rate: one call per 1000 s.
	MinRequestsPerSecond = 0.001
	// MaxRequestsPerSecond is the fastest: one call per nanosecond.
	MaxRequestsPerSecond = 1e9
	// MaxBurst is the largest burst.
	MaxBurst = 1_000_000
)

// Limits is a set of limits. Zero means unlimited.
type Limits struct {
	// RequestsPerSecond is the sustained rate of calls.
	RequestsPerSecond float64 `json:"requests_per_second,omitempty"`
	// Burst is how many calls may arrive at once above the rate; zero
	// means the rate rounded up (at least 1).
	Burst int64 `json:"burst,omitempty"`
	// RequestsPerDay caps the calls of one day.
	RequestsPerDay int64 `json:"requests_per_day,omitempty"`
	// BytesPerDay caps the response bytes of one day.
	BytesPerDay int64 `json:"bytes_per_day,omitempty"`
	// Connections caps the open WebSocket connections.
	Connections int64 `json:"connections,omitempty"`
	// Subscriptions caps the subscriptions of one connection.
	Subscriptions int64 `json:"subscriptions,omitempty"`
}

// EffectiveBurst is Burst, or the rate rounded up (at least 1) when
// Burst is zero.
func (l Limits) EffectiveBurst() int64 {
	if l.Burst > 0 {
		return l.Burst
	}
	return max(1, int64(math.Ceil(l.RequestsPerSecond)))
}

// Validate reports a negative or non-finite limit, and a rate or burst
// out of bounds.
func (l Limits) Validate() error {
	if math.IsNaN(l.RequestsPerSecond) || math.IsInf(l.RequestsPerSecond, 0) || l.RequestsPerSecond < 0 {
		return fmt.Errorf("%s must be a finite number ≥ 0, got %v", RequestsPerSecond, l.RequestsPerSecond)
	}
	if r := l.RequestsPerSecond; r != 0 && (r < MinRequestsPerSecond || r > MaxRequestsPerSecond) {
		return fmt.Errorf("%s must be 0 (no limit) or from %v to %v, got %v (use %s for slower limits)",
			RequestsPerSecond, MinRequestsPerSecond, MaxRequestsPerSecond, r, RequestsPerDay)
	}
	if l.Burst > MaxBurst {
		return fmt.Errorf("%s must be at most %d, got %d", Burst, MaxBurst, l.Burst)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{Burst, l.Burst}, {RequestsPerDay, l.RequestsPerDay}, {BytesPerDay, l.BytesPerDay}, {Connections, l.Connections}, {Subscriptions, l.Subscriptions}} {
		if f.v < 0 {
			return fmt.Errorf("%s must be ≥ 0, got %d", f.name, f.v)
		}
	}
	return nil
}

// Overrides replace some limits of a plan for one project. A nil field
// keeps the plan's value; a field set to 0 removes that limit.
type Overrides struct {
	RequestsPerSecond *float64 `json:"requests_per_second,omitempty"`
	Burst             *int64   `json:"burst,omitempty"`
	RequestsPerDay    *int64   `json:"requests_per_day,omitempty"`
	BytesPerDay       *int64   `json:"bytes_per_day,omitempty"`
	Connections       *int64   `json:"connections,omitempty"`
	Subscriptions     *int64   `json:"subscriptions,omitempty"`
}

// IsZero reports whether no limit is overridden.
func (o Overrides) IsZero() bool { return o == Overrides{} }

// Apply returns l with the overridden limits replaced.
func (o Overrides) Apply(l Limits) Limits {
	if o.RequestsPerSecond != nil {
		l.RequestsPerSecond = *o.RequestsPerSecond
	}
	set := func(dst *int64, v *int64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&l.Burst, o.Burst)
	set(&l.RequestsPerDay, o.RequestsPerDay)
	set(&l.BytesPerDay, o.BytesPerDay)
	set(&l.Connections, o.Connections)
	set(&l.Subscriptions, o.Subscriptions)
	return l
}

// Validate reports a negative or non-finite override.
func (o Overrides) Validate() error {
	var zero Limits
	// Every set field is checked: applied to an all-zero set, an unset
	// field stays 0, which is valid.
	return o.Apply(zero).Validate()
}

// Plan is a named set of limits from the app's config.
type Plan struct {
	// Name identifies the plan; projects name it.
	Name string `json:"name"`
	// Limits of each project on this plan.
	Limits
	// OwnerRequestsPerDay caps the calls of one day across all projects
	// of one owner. Zero means unlimited.
	OwnerRequestsPerDay int64 `json:"owner_requests_per_day,omitempty"`
	// OwnerBytesPerDay caps the response bytes of one day across all
	// projects of one owner. Zero means unlimited.
	OwnerBytesPerDay int64 `json:"owner_bytes_per_day,omitempty"`
}

// Validate checks the name and every limit.
func (p Plan) Validate() error {
	if p.Name == "" {
		return errors.New("plan without a name")
	}
	if err := p.Limits.Validate(); err != nil {
		return fmt.Errorf("plan %q: %w", p.Name, err)
	}
	if p.OwnerRequestsPerDay < 0 || p.OwnerBytesPerDay < 0 {
		return fmt.Errorf("plan %q: owner limits must be ≥ 0", p.Name)
	}
	return nil
}

// For returns the limits of a project on plan p with its overrides.
func (p Plan) For(o *Overrides) Limits {
	if o == nil {
		return p.Limits
	}
	return o.Apply(p.Limits)
}

// Plans finds plans by name.
type Plans map[string]Plan

// NewPlans validates plans and indexes them by name; a name given twice
// is an error.
func NewPlans(ps ...Plan) (Plans, error) {
	out := make(Plans, len(ps))
	for _, p := range ps {
		if err := p.Validate(); err != nil {
			return nil, err
		}
		if _, dup := out[p.Name]; dup {
			return nil, fmt.Errorf("plan %q defined twice", p.Name)
		}
		out[p.Name] = p
	}
	return out, nil
}

// Has reports whether a plan is named name: the lookup projects
// validation takes.
func (ps Plans) Has(name string) bool {
	_, ok := ps[name]
	return ok
}
