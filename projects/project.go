package projects

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/elara-gateway/elara/limits"
)

// Status of a project.
type Status string

// The statuses.
const (
	// Active projects are served.
	Active Status = "active"
	// Suspended projects reached a daily limit; they are active again by
	// themselves at SuspendedUntil (the limit's reset).
	Suspended Status = "suspended"
	// Disabled projects were turned off by the operator.
	Disabled Status = "disabled"
)

func (s Status) valid() bool { return s == Active || s == Suspended || s == Disabled }

// Secret is a project's secret: 32 lowercase hex characters. Printed it
// reads "[redacted]"; only its JSON holds the value.
type Secret string

func (Secret) String() string   { return "[redacted]" }
func (Secret) GoString() string { return "[redacted]" }

// Reveal returns the secret itself, to compare it with what a client sent.
func (s Secret) Reveal() string { return string(s) }

// Project is one dApp's access to the gateway. Treat a Project returned by
// a Store as read-only: its slices are shared with the Store's memory.
type Project struct {
	// ID is 32 lowercase hex characters from crypto/rand; it is the
	// {project} of a path.
	ID string `json:"id"`
	// Name is a label for people.
	Name string `json:"name"`
	// Owner is free text: the customer or team. Owner-wide daily caps of
	// a plan count across all projects with the same Owner.
	Owner string `json:"owner,omitempty"`
	// Status is active, suspended or disabled; see StatusAt.
	Status Status `json:"status"`
	// SuspendedUntil is when a suspended project becomes active again.
	SuspendedUntil *time.Time `json:"suspended_until,omitempty"`
	// Plan names the plan whose limits apply.
	Plan string `json:"plan"`
	// Limits overrides some limits of the plan for this project.
	Limits *limits.Overrides `json:"limits,omitempty"`
	// Chains the project may use; empty means all.
	Chains []string `json:"chains,omitempty"`
	// Origins allowed to call from a browser (CORS and WebSocket
	// Origin), as scheme://host[:port]; empty means any.
	Origins []string `json:"origins,omitempty"`
	// Networks are the client networks allowed, as CIDRs; empty means any.
	Networks []string `json:"networks,omitempty"`
	// Allow and Deny are method patterns (at most one '*') applied on
	// top of the handler's policy.
	Allow []string `json:"allow,omitempty"`
	Deny  []string `json:"deny,omitempty"`
	// Secret lets the project see its own statistics.
	Secret Secret `json:"secret"`
	// Created and Updated are set by the Store.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`

	// prefixes are Networks parsed, set by compile.
	prefixes []netip.Prefix
	// origins are Origins normalized, set by compile: a project stored
	// before origins were normalized on write still matches.
	origins []string
}

// NewID returns 32 lowercase hex characters from crypto/rand, used for
// ids and secrets.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// ValidID reports whether s looks like a project id (32 lowercase hex).
// The handler can refuse anything else without a lookup.
func ValidID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// StatusAt is the status at now: a suspension ends by itself at
// SuspendedUntil, with no job to lift it.
func (p *Project) StatusAt(now time.Time) Status {
	if p.Status == Suspended && p.SuspendedUntil != nil && !now.Before(*p.SuspendedUntil) {
		return Active
	}
	return p.Status
}

// ErrInvalid wraps every validation error.
var ErrInvalid = errors.New("invalid project")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Limits of names and lists, so a project stays small.
const (
	maxText = 200
	maxList = 100
)

// Validate checks every field; knownPlan says whether a plan exists (nil
// accepts any non-empty name). Errors wrap ErrInvalid and never include
// the secret.
func (p *Project) Validate(knownPlan func(string) bool) error {
	if !ValidID(p.ID) {
		return invalid("id must be 32 lowercase hex characters")
	}
	if strings.TrimSpace(p.Name) == "" {
		return invalid("name is required")
	}
	if len(p.Name) > maxText || len(p.Owner) > maxText {
		return invalid("name and owner are at most %d bytes", maxText)
	}
	if !p.Status.valid() {
		return invalid("status %q: want active, suspended or disabled", p.Status)
	}
	if p.Status == Suspended && p.SuspendedUntil == nil {
		return invalid("a suspended project needs suspended_until")
	}
	if p.Plan == "" {
		return invalid("plan is required")
	}
	if knownPlan != nil && !knownPlan(p.Plan) {
		return invalid("unknown plan %q", p.Plan)
	}
	if p.Limits != nil {
		if err := p.Limits.Validate(); err != nil {
			return invalid("limits: %v", err)
		}
	}
	for _, l := range []struct {
		name string
		v    []string
	}{{"chains", p.Chains}, {"origins", p.Origins}, {"networks", p.Networks}, {"allow", p.Allow}, {"deny", p.Deny}} {
		if len(l.v) > maxList {
			return invalid("%s: at most %d entries", l.name, maxList)
		}
		for _, s := range l.v {
			if s == "" || len(s) > maxText {
				return invalid("%s: an empty or over-long entry", l.name)
			}
		}
	}
	for _, o := range p.Origins {
		if err := checkOrigin(o); err != nil {
			return invalid("origins: %v", err)
		}
	}
	for _, n := range p.Networks {
		if _, err := netip.ParsePrefix(n); err != nil {
			return invalid("networks: %q is not a CIDR like 203.0.113.0/24 or 2001:db8::/32", n)
		}
	}
	for _, m := range append(append([]string(nil), p.Allow...), p.Deny...) {
		if strings.Count(m, "*") > 1 {
			return invalid("method pattern %q: at most one '*'", m)
		}
	}
	if !ValidID(string(p.Secret)) {
		return invalid("secret must be 32 lowercase hex characters")
	}
	return nil
}

func checkOrigin(o string) error {
	_, err := normalizeOrigin(o)
	return err
}

// compile prepares what per-call checks need; the project is valid.
func (p *Project) compile() {
	p.prefixes = p.prefixes[:0:0]
	for _, n := range p.Networks {
		if pr, err := netip.ParsePrefix(n); err == nil {
			p.prefixes = append(p.prefixes, pr.Masked())
		}
	}
	p.origins = p.origins[:0:0]
	for _, o := range p.Origins {
		if n, err := normalizeOrigin(o); err == nil {
			p.origins = append(p.origins, n)
		}
	}
}

// AllowsChain reports whether the project may use chain.
func (p *Project) AllowsChain(chain string) bool {
	if len(p.Chains) == 0 {
		return true
	}
	for _, c := range p.Chains {
		if c == chain {
			return true
		}
	}
	return false
}

// AllowsOrigin reports whether a browser at origin (the Origin header)
// may call; an empty origin (not a browser) always may.
func (p *Project) AllowsOrigin(origin string) bool {
	if len(p.Origins) == 0 || origin == "" {
		return true
	}
	origins := p.origins
	if len(origins) == 0 { // not compiled: a Project built by hand
		c := *p
		c.compile()
		origins = c.origins
	}
	for _, o := range origins {
		if o == "*" || o == origin { // browsers send the normal form
			return true
		}
	}
	n, err := normalizeOrigin(origin)
	if err != nil || n == origin {
		return false
	}
	for _, o := range origins {
		if o == n {
			return true
		}
	}
	return false
}

// AllowsIP reports whether a client at ip may call.
func (p *Project) AllowsIP(ip netip.Addr) bool {
	if len(p.Networks) == 0 {
		return true
	}
	prefixes := p.prefixes
	if len(prefixes) == 0 { // not compiled: a Project built by hand
		c := *p
		c.compile()
		prefixes = c.prefixes
	}
	ip = ip.Unmap()
	for _, pr := range prefixes {
		if pr.Contains(ip) {
			return true
		}
	}
	return false
}

// EffectiveLimits is the project's plan with its overrides.
func (p *Project) EffectiveLimits(plan limits.Plan) limits.Limits {
	return plan.For(p.Limits)
}

// String names the project without its secret.
func (p Project) String() string {
	return fmt.Sprintf("project %s (%q, owner %q, %s, plan %s)", p.ID, p.Name, p.Owner, p.Status, p.Plan)
}

// MarshalLogObject logs the project without its secret (zap.Any and
// zap.Object use it).
func (p Project) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("id", p.ID)
	enc.AddString("name", p.Name)
	enc.AddString("owner", p.Owner)
	enc.AddString("status", string(p.Status))
	enc.AddString("plan", p.Plan)
	return nil
}

// clone copies p deeply enough that changing the copy's fields or lists
// leaves p alone.
func (p Project) clone() Project {
	c := p
	cp := func(s []string) []string {
		if s == nil {
			return nil
		}
		return append([]string(nil), s...)
	}
	c.Chains, c.Origins, c.Networks, c.Allow, c.Deny = cp(p.Chains), cp(p.Origins), cp(p.Networks), cp(p.Allow), cp(p.Deny)
	if p.Limits != nil {
		l := *p.Limits
		c.Limits = &l
	}
	if p.SuspendedUntil != nil {
		t := *p.SuspendedUntil
		c.SuspendedUntil = &t
	}
	c.prefixes, c.origins = nil, nil
	return c
}
