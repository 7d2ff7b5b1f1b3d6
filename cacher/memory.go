package cacher

import (
	"context"
	"sync"
	"time"
)

// DefaultMemorySize bounds the memory store when no size is configured.
const DefaultMemorySize = 64 << 20

// entryOverhead approximates what an entry costs beyond its key and value
// (map slot, list links, header), so many tiny entries cannot overrun the
// bound.
const entryOverhead = 128

// MemoryStore is a Store in process memory: least recently used entries
// are evicted once the bytes exceed the bound, and the entries of one chain
// and method never use more than their share, so a run of 1 MB metadata
// blobs cannot push everything else out.
type MemoryStore struct {
	max     int64
	clock   Clock
	metrics *Metrics

	mu     sync.Mutex
	used   int64
	items  map[string]*memEntry
	lru    memList // every entry, most recently used first
	groups map[string]*memGroup
}

type memEntry struct {
	key     string
	value   []byte
	expires time.Time // zero: never
	size    int64
	group   *memGroup
	all     memLink // in MemoryStore.lru
	inGroup memLink // in memGroup.lru
}

type memGroup struct {
	chain, method string
	bytes         int64
	lru           memList
}

// NewMemoryStore returns a store bounded by maxBytes (default 64 MiB).
// metrics may be nil.
func NewMemoryStore(maxBytes int64, clock Clock, metrics *Metrics) *MemoryStore {
	if maxBytes <= 0 {
		maxBytes = DefaultMemorySize
	}
	if clock == nil {
		clock = SystemClock
	}
	s := &MemoryStore{max: maxBytes, clock: clock, metrics: metrics, items: make(map[string]*memEntry), groups: make(map[string]*memGroup)}
	s.lru.init(func(e *memEntry) *memLink { return &e.all })
	return s
}

// Get returns the value under key, or ErrMiss.
func (s *MemoryStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.items[key]
	if e == nil {
		return nil, ErrMiss
	}
	if !e.expires.IsZero() && !s.clock.Now().Before(e.expires) {
		s.removeLocked(e)
		return nil, ErrMiss
	}
	s.lru.moveToFront(e)
	e.group.lru.moveToFront(e)
	return e.value, nil
}

// Set stores value unless it is larger than its share of the store. The
// store keeps value as it is: callers must not modify it afterwards.
func (s *MemoryStore) Set(_ context.Context, key string, value []byte, opts SetOptions) error {
	size := int64(len(key)+len(value)) + entryOverhead
	limit := s.shareLimit(opts.Share)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.items[key]; old != nil {
		s.removeLocked(old)
	}
	if size > limit {
		return nil
	}
	g := s.group(opts.Chain, opts.Method)
	e := &memEntry{key: key, value: value, size: size, group: g}
	if opts.TTL > 0 {
		e.expires = s.clock.Now().Add(opts.TTL)
	}
	s.items[key] = e
	s.lru.pushFront(e)
	g.lru.pushFront(e)
	s.used += size
	g.bytes += size
	s.metrics.stored(g.chain, g.method, 1, size)
	for g.bytes > limit {
		s.removeLocked(g.lru.back())
	}
	for s.used > s.max {
		s.removeLocked(s.lru.back())
	}
	return nil
}

func (s *MemoryStore) shareLimit(share float64) int64 {
	if share <= 0 || share >= 1 {
		return s.max
	}
	return int64(float64(s.max) * share)
}

func (s *MemoryStore) group(chain, method string) *memGroup {
	k := chain + "\x00" + method
	g := s.groups[k]
	if g == nil {
		g = &memGroup{chain: chain, method: method}
		g.lru.init(func(e *memEntry) *memLink { return &e.inGroup })
		s.groups[k] = g
	}
	return g
}

func (s *MemoryStore) removeLocked(e *memEntry) {
	delete(s.items, e.key)
	s.lru.remove(e)
	e.group.lru.remove(e)
	s.used -= e.size
	e.group.bytes -= e.size
	s.metrics.stored(e.group.chain, e.group.method, -1, -e.size)
}

// Len returns the number of entries and the bytes they are counted for.
func (s *MemoryStore) Len() (entries int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items), s.used
}

// Close drops every entry, so the metrics stop counting them.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := s.lru.back(); e != nil; e = s.lru.back() {
		s.removeLocked(e)
	}
	return nil
}

// memLink and memList make an intrusive doubly linked list, so an entry can
// sit in the store's list and its group's list without extra allocations.
type memLink struct{ prev, next *memEntry }

type memList struct {
	head, tail *memEntry
	link       func(*memEntry) *memLink
}

func (l *memList) init(link func(*memEntry) *memLink) { l.link = link }

func (l *memList) pushFront(e *memEntry) {
	lk := l.link(e)
	lk.prev, lk.next = nil, l.head
	if l.head != nil {
		l.link(l.head).prev = e
	}
	l.head = e
	if l.tail == nil {
		l.tail = e
	}
}

func (l *memList) remove(e *memEntry) {
	lk := l.link(e)
	if lk.prev != nil {
		l.link(lk.prev).next = lk.next
	} else {
		l.head = lk.next
	}
	if lk.next != nil {
		l.link(lk.next).prev = lk.prev
	} else {
		l.tail = lk.prev
	}
	lk.prev, lk.next = nil, nil
}

func (l *memList) moveToFront(e *memEntry) {
	if l.head == e {
		return
	}
	l.remove(e)
	l.pushFront(e)
}

func (l *memList) back() *memEntry { return l.tail }
