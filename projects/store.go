package projects

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Store keeps projects. Every method is safe for concurrent use.
type Store interface {
	// Create stores a new project made from req with a fresh id and
	// secret, and returns it whole. An invalid request (unknown plan
	// included) gives an error wrapping ErrInvalid.
	Create(ctx context.Context, req CreateRequest) (Project, error)
	// Get reads a project from the backing store (ErrNotFound if none).
	Get(ctx context.Context, id string) (Project, error)
	// Lookup reads a project from memory: the per-call lookup, no I/O.
	// Changes made by any instance show within a second.
	Lookup(id string) (Project, bool)
	// List returns the projects matching f, oldest first.
	List(ctx context.Context, f Filter) ([]Project, error)
	// Update applies patch to a project and returns the result.
	Update(ctx context.Context, id string, patch Patch) (Project, error)
	// Delete removes a project (ErrNotFound if none).
	Delete(ctx context.Context, id string) error
	// Watch calls fn after every change seen by this instance, its own or
	// another's, until cancel is called. fn runs on the goroutine that
	// made or saw the change, in order per project; it must not block nor
	// write to the store (hand the change to another goroutine).
	Watch(fn func(Change)) (cancel func())
	// Close stops the store's goroutines and releases its resources.
	Close() error
}

// Change is one project created, changed or deleted.
type Change struct {
	ID string
	// Project is the new state; nil when deleted.
	Project *Project
}

// Filter selects projects in List; empty fields match all.
type Filter struct {
	Owner string
	// Status matches the status at Now (a lapsed suspension is active).
	Status Status
	Plan   string
	// Now is when Status is judged; zero means time.Now().
	Now time.Time
}

func (f Filter) match(p *Project) bool {
	if f.Owner != "" && p.Owner != f.Owner {
		return false
	}
	if f.Plan != "" && p.Plan != f.Plan {
		return false
	}
	if f.Status != "" {
		now := f.Now
		if now.IsZero() {
			now = time.Now()
		}
		if p.StatusAt(now) != f.Status {
			return false
		}
	}
	return true
}

func filterSorted(all []Project, f Filter) []Project {
	out := make([]Project, 0, len(all))
	for i := range all {
		if f.match(&all[i]) {
			out = append(out, all[i])
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// memory is the in-memory copy of all projects every Store keeps, and
// its watchers. Reads take a read lock only.
//
// Changes are ordered by revision: the store's version at the write (Redis'
// INCR, Bolt's counter), never by a gateway's clock. A state read with a
// revision older than the one held is a late read and is dropped.
type memory struct {
	mu       sync.RWMutex
	projects map[string]*Project
	revs     map[string]int64 // revision of each project held
	// tombs are the revisions of deletions, so a late read does not bring
	// a deleted project back; forget drops them once no read can be late.
	tombs map[string]int64

	wmu      sync.Mutex
	watchers map[uint64]func(Change)
	next     atomic.Uint64
}

func newMemory() *memory {
	return &memory{projects: make(map[string]*Project), revs: make(map[string]int64),
		tombs: make(map[string]int64), watchers: make(map[uint64]func(Change))}
}

func (m *memory) lookup(id string) (Project, bool) {
	m.mu.RLock()
	p, ok := m.projects[id]
	m.mu.RUnlock()
	if !ok {
		return Project{}, false
	}
	return *p, true
}

// set stores p (nil deletes id) as of revision rev and tells the watchers
// if anything changed. A rev older than the one held is ignored.
func (m *memory) set(id string, p *Project, rev int64) {
	if p != nil {
		p.compile()
	}
	m.mu.Lock()
	old, had := m.projects[id]
	held, known := m.revs[id]
	if !known {
		held, known = m.tombs[id]
	}
	if known && rev < held {
		m.mu.Unlock()
		return
	}
	if p == nil {
		delete(m.projects, id)
		delete(m.revs, id)
		m.tombs[id] = rev
	} else {
		m.projects[id] = p
		m.revs[id] = rev
		delete(m.tombs, id)
	}
	m.mu.Unlock()
	if p == nil && !had {
		return
	}
	if p != nil && had && sameStored(old, p) {
		return
	}
	m.notify(Change{ID: id, Project: p})
}

// forget drops the deletions at or before rev: every later read is newer.
func (m *memory) forget(rev int64) {
	m.mu.Lock()
	for id, r := range m.tombs {
		if r <= rev {
			delete(m.tombs, id)
		}
	}
	m.mu.Unlock()
}

// replace swaps in a full set of projects read at revision rev and tells
// watchers what differed. fresh says the revisions start over (a new
// data set), so the ones held mean nothing any more.
func (m *memory) replace(all map[string]*Project, rev int64, fresh bool) {
	m.mu.Lock()
	if fresh {
		clear(m.tombs)
		for id := range m.revs {
			m.revs[id] = 0
		}
	}
	ids := make([]string, 0, len(m.projects))
	for id := range m.projects {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		if _, ok := all[id]; !ok {
			m.set(id, nil, rev)
		}
	}
	for id, p := range all {
		m.set(id, p, rev)
	}
	m.forget(rev)
}

func (m *memory) notify(c Change) {
	m.wmu.Lock()
	fns := make([]func(Change), 0, len(m.watchers))
	for _, fn := range m.watchers {
		fns = append(fns, fn)
	}
	m.wmu.Unlock()
	for _, fn := range fns {
		if c.Project != nil {
			p := *c.Project
			fn(Change{ID: c.ID, Project: &p})
		} else {
			fn(c)
		}
	}
}

func (m *memory) watch(fn func(Change)) func() {
	id := m.next.Add(1)
	m.wmu.Lock()
	m.watchers[id] = fn
	m.wmu.Unlock()
	return func() {
		m.wmu.Lock()
		delete(m.watchers, id)
		m.wmu.Unlock()
	}
}

func sameStored(a, b *Project) bool {
	x, _ := marshalProject(a)
	y, _ := marshalProject(b)
	return string(x) == string(y)
}
