package app

import (
	"sync"
	"sync/atomic"

	"github.com/elara-gateway/elara/limits"
	"github.com/elara-gateway/elara/projects"
)

// ProjectHandle is a project as calls use it, resolved once and shared
// by all its calls until the project changes: the project, its subject
// (plan and overrides applied) and its counters. A call through it copies
// nothing and looks up no map but the handle's own. Read-only.
type ProjectHandle struct {
	// Project is the project as the store had it when the handle was made.
	Project projects.Project
	// Subject is who the project's calls are counted against; its IP is
	// empty (a project's limits do not depend on it).
	Subject limits.Subject
	// Limits is Subject resolved for the enforcer.
	Limits *limits.Handle
	gen    uint64
}

// projectHandles keeps a config's project handles. Any change to any
// project (the store's change feed) makes them all stale: changes are
// rare, and a stale handle is rebuilt on its next use.
type projectHandles struct {
	m   sync.Map // project id → *ProjectHandle
	gen atomic.Uint64
}

// Project is project id's handle, or false when the store does not know
// id. The handle reflects the store within the store's change feed: a
// change seen by Lookup is seen here once the feed has told this config.
func (x *Access) Project(id string) (*ProjectHandle, bool) {
	gen := x.handles.gen.Load()
	if v, ok := x.handles.m.Load(id); ok {
		if h := v.(*ProjectHandle); h.gen == gen {
			return h, true
		}
	}
	// The generation is read before the store: a change that lands in
	// between bumps it, so this handle is stale at once, never kept.
	p, ok := x.Store().Lookup(id)
	if !ok {
		x.handles.m.Delete(id)
		return nil, false
	}
	h := &ProjectHandle{Project: p, Subject: x.Subject(&p, ""), gen: gen}
	h.Limits = x.Enforcer.Handle(h.Subject)
	x.handles.m.Store(id, h)
	return h, true
}

// AddBytes is Enforcer.AddBytes through the project's handle when s is
// the subject the handle counts (the usual case), so it looks up no
// counter; otherwise (public access, or a project admitted under limits
// that have changed since) as Enforcer.AddBytes.
func (x *Access) AddBytes(s limits.Subject, n int64) *limits.Exceeded {
	if s.Project != "" {
		if h, ok := x.Project(s.Project); ok && sameCounting(h.Subject, s) {
			return x.Enforcer.AddBytesHandle(h.Limits, n)
		}
	}
	return x.Enforcer.AddBytes(s, n)
}

// sameCounting reports whether bytes of a and b are counted alike (the
// IP does not matter to a project).
func sameCounting(a, b limits.Subject) bool {
	return a.Project == b.Project && a.Owner == b.Owner && a.Limits == b.Limits &&
		a.OwnerRequestsPerDay == b.OwnerRequestsPerDay && a.OwnerBytesPerDay == b.OwnerBytesPerDay
}

// forgetHandles makes every handle stale and drops id's (the store's
// change feed calls it).
func (x *Access) forgetHandles(id string) {
	x.handles.gen.Add(1)
	x.handles.m.Delete(id)
}
