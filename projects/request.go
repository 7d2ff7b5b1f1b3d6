package projects

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/elara-gateway/elara/limits"
)

// CreateRequest is the body of POST /elara/projects. The Store fills in
// id, secret, status (active unless given) and times. The fields mean
// what the Project fields of the same names mean.
type CreateRequest struct {
	Name  string `json:"name"`
	Owner string `json:"owner,omitempty"`
	Plan  string `json:"plan"`
	// Status is active (the default) or disabled.
	Status   Status            `json:"status,omitempty"`
	Limits   *limits.Overrides `json:"limits,omitempty"`
	Chains   []string          `json:"chains,omitempty"`
	Origins  []string          `json:"origins,omitempty"`
	Networks []string          `json:"networks,omitempty"`
	Allow    []string          `json:"allow,omitempty"`
	Deny     []string          `json:"deny,omitempty"`
}

// DecodeCreate reads a CreateRequest, refusing unknown fields (id and
// secret among them: the Store makes those) and trailing data.
func DecodeCreate(r io.Reader) (CreateRequest, error) {
	var req CreateRequest
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return CreateRequest{}, fmt.Errorf("%w: body: %v", ErrInvalid, err)
	}
	if dec.More() {
		return CreateRequest{}, fmt.Errorf("%w: body: data after the JSON object", ErrInvalid)
	}
	return req, nil
}

// project turns the request into a new project with a fresh id and
// secret.
func (r CreateRequest) project(now time.Time) Project {
	p := Project{
		ID: NewID(), Name: r.Name, Owner: r.Owner, Plan: r.Plan, Status: r.Status,
		Limits: r.Limits, Chains: r.Chains, Origins: r.Origins, Networks: r.Networks,
		Allow: r.Allow, Deny: r.Deny, Secret: Secret(NewID()), Created: now, Updated: now,
	}
	if p.Status == "" {
		p.Status = Active
	}
	if p.Limits != nil && p.Limits.IsZero() {
		p.Limits = nil
	}
	p = p.clone()
	normalizeOrigins(p.Origins)
	return p
}

// Patch changes some fields of a project: the body of PATCH
// /elara/projects/{id}, each key a Project JSON field. Any field but id,
// created and updated may be given; null clears an optional field.
// Setting status to active or disabled clears suspended_until.
type Patch map[string]json.RawMessage

var patchable = []string{"name", "owner", "status", "suspended_until", "plan", "limits",
	"chains", "origins", "networks", "allow", "deny", "secret"}

// DecodePatch reads a Patch, refusing unknown keys and id.
func DecodePatch(r io.Reader) (Patch, error) {
	var p Patch
	dec := json.NewDecoder(r)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: body: data after the JSON object", ErrInvalid)
	}
	if p == nil {
		return nil, fmt.Errorf("%w: body: want a JSON object", ErrInvalid)
	}
	for k := range p {
		switch {
		case k == "id":
			return nil, fmt.Errorf("%w: id cannot be changed", ErrInvalid)
		case k == "created" || k == "updated":
			return nil, fmt.Errorf("%w: %s is set by the store", ErrInvalid, k)
		case !slices.Contains(patchable, k):
			return nil, fmt.Errorf("%w: unknown field %q", ErrInvalid, k)
		}
	}
	return p, nil
}

// StatusPatch sets a status; until is needed for Suspended.
func StatusPatch(s Status, until *time.Time) Patch {
	st, _ := json.Marshal(s)
	p := Patch{"status": st}
	if until != nil {
		u, _ := json.Marshal(until.UTC())
		p["suspended_until"] = u
	}
	return p
}

// apply returns a copy of p with the patch applied; the caller
// validates it.
func (pa Patch) apply(p Project) (Project, error) {
	c := p.clone()
	if _, ok := pa["id"]; ok {
		return p, fmt.Errorf("%w: id cannot be changed", ErrInvalid)
	}
	if want, ok := pa[ifStatus]; ok {
		var s Status
		if err := json.Unmarshal(want, &s); err != nil || p.StatusAt(time.Now()) != s {
			return p, ErrPrecondition
		}
	}
	if st, ok := pa["status"]; ok && !bytes.Equal(bytes.TrimSpace(st), []byte("null")) {
		var s Status
		if err := json.Unmarshal(st, &s); err == nil && s != Suspended {
			c.SuspendedUntil = nil
		}
	}
	for k, v := range pa {
		var dst any
		switch k {
		case "name":
			dst = &c.Name
		case "owner":
			dst = &c.Owner
		case "status":
			dst = &c.Status
		case "suspended_until":
			dst = &c.SuspendedUntil
		case "plan":
			dst = &c.Plan
		case "limits":
			c.Limits = nil // replaced as a whole
			dst = &c.Limits
		case "chains":
			dst = &c.Chains
		case "origins":
			dst = &c.Origins
		case "networks":
			dst = &c.Networks
		case "allow":
			dst = &c.Allow
		case "deny":
			dst = &c.Deny
		case "secret":
			dst = &c.Secret
		case ifStatus:
			continue
		default:
			return p, fmt.Errorf("%w: field %q cannot be changed", ErrInvalid, k)
		}
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(dst); err != nil {
			if k == "secret" {
				return p, fmt.Errorf("%w: secret: not a string", ErrInvalid) // never echo it
			}
			return p, fmt.Errorf("%w: %s: %v", ErrInvalid, k, err)
		}
	}
	if c.Limits != nil && c.Limits.IsZero() {
		c.Limits = nil
	}
	if _, ok := pa["origins"]; ok {
		normalizeOrigins(c.Origins)
	}
	return c, nil
}

// ifStatus is a Patch key only code can set (DecodePatch refuses it):
// the patch applies only if the stored status, as of now (a lapsed
// suspension is active), is the one given, checked atomically with the
// write.
const ifStatus = "if_status"

// ErrPrecondition is returned when a conditional patch does not apply.
var ErrPrecondition = errors.New("project changed meanwhile")

// Suspend suspends an active project until the reset of the daily limit
// it reached; a project already suspended or disabled is left alone, even
// when the operator disables it at the same moment (the check and the
// write are one step). It reports whether this call suspended it. Call
// it when the limits refuse a project with a daily limit: the in-memory
// Lookup is checked first, so repeated refusals cost no write.
func Suspend(ctx context.Context, s Store, id string, until time.Time) (bool, error) {
	if p, ok := s.Lookup(id); ok && p.StatusAt(time.Now()) != Active {
		return false, nil
	}
	patch := StatusPatch(Suspended, &until)
	patch[ifStatus] = json.RawMessage(`"active"`)
	_, err := s.Update(ctx, id, patch)
	if errors.Is(err, ErrPrecondition) {
		return false, nil
	}
	return err == nil, err
}

// ErrNotFound is returned for an unknown project id.
var ErrNotFound = errors.New("project not found")
