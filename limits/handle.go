package limits

// Handle is a subject resolved once for many calls: a gateway keeps one
// per project (rebuilt when the project changes) so that a call finds
// its daily counters without a map lookup or building keys. A Handle is
// safe for concurrent use; it belongs to the Enforcer that made it (or
// one sharing its counters).
type Handle struct {
	s Subject
	// self is the subject's counter (project or client IP); owner the
	// owner's, with an empty id when the owner is not counted.
	self, owner tally
	// interval and tolerance are the GCRA's parameters of s.Limits.
	interval, tolerance int64
}

// Handle resolves s for AdmitHandle and AddBytesHandle.
func (e *Enforcer) Handle(s Subject) *Handle {
	h := &Handle{s: s}
	h.init()
	return h
}

func (h *Handle) init() {
	h.self.scope, h.self.id = h.s.scope()
	if h.s.Project != "" && h.s.Owner != "" {
		h.owner.scope, h.owner.id = ScopeOwner, h.s.Owner
	}
	if h.s.Limits.RequestsPerSecond > 0 {
		h.interval, h.tolerance = gcraParams(h.s.Limits)
	}
}

// Subject is the subject the handle was made for.
func (h *Handle) Subject() Subject { return h.s }
