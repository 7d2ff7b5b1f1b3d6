package projects

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltFile is the name of the bbolt file under the directory given to
// OpenBolt.
const BoltFile = "elara.db"

var projectsBucket = []byte("projects")

// BoltOptions tune a BoltStore.
type BoltOptions struct {
	// KnownPlan says whether a plan exists; nil accepts any name.
	KnownPlan func(string) bool
	// Now is the clock for created/updated; nil is time.Now.
	Now func() time.Time
	// Timeout bounds the wait for the file lock held by another process.
	// Default 5s.
	Timeout time.Duration
}

// BoltStore is a Store in a bbolt file: one process, no server, survives
// restarts. Its memory is the truth between writes, since no one else
// may write the file.
type BoltStore struct {
	db   *bolt.DB
	opts BoltOptions
	mem  *memory
	// wmu orders writes and their notifications.
	wmu sync.Mutex
	// rev numbers the writes (under wmu) to order them in memory: the
	// clock may step back between two writes.
	rev int64
}

var _ Store = (*BoltStore)(nil)

// OpenBolt opens (or creates) dir/elara.db and loads every project into
// memory. Another process holding the file makes it fail after
// opts.Timeout.
func OpenBolt(dir string, opts BoltOptions) (*BoltStore, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("projects: creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, BoltFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout})
	if err != nil {
		return nil, fmt.Errorf("projects: opening %s (is another Caddy using this data directory? several gateways need Redis): %w", path, err)
	}
	s := &BoltStore{db: db, opts: opts, mem: newMemory()}
	all := make(map[string]*Project)
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(projectsBucket)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			p, err := unmarshalProject(v)
			if err != nil {
				return fmt.Errorf("project %s: %w", k, err)
			}
			all[string(k)] = p
			return nil
		})
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("projects: loading %s: %w", path, err)
	}
	s.mem.replace(all, 0, true)
	return s, nil
}

// DB is the open bbolt file, for other parts (daily counters) to keep
// their buckets in the same file: a process can open it only once.
func (s *BoltStore) DB() *bolt.DB { return s.db }

// Create implements Store.
func (s *BoltStore) Create(_ context.Context, req CreateRequest) (Project, error) {
	p := req.project(s.opts.Now().UTC())
	if err := p.Validate(s.opts.KnownPlan); err != nil {
		return Project{}, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.put(&p, true); err != nil {
		return Project{}, err
	}
	return p.clone(), nil
}

func (s *BoltStore) put(p *Project, create bool) error {
	data, err := marshalProject(p)
	if err != nil {
		return err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(projectsBucket)
		if create && b.Get([]byte(p.ID)) != nil {
			return fmt.Errorf("projects: id %s already taken", p.ID)
		}
		return b.Put([]byte(p.ID), data)
	})
	if err != nil {
		return fmt.Errorf("projects: writing %s: %w", p.ID, err)
	}
	c := p.clone()
	s.rev++
	s.mem.set(p.ID, &c, s.rev)
	return nil
}

// Get implements Store; memory is the truth for a single process.
func (s *BoltStore) Get(_ context.Context, id string) (Project, error) {
	p, ok := s.mem.lookup(id)
	if !ok {
		return Project{}, ErrNotFound
	}
	return p.clone(), nil
}

// Lookup implements Store.
func (s *BoltStore) Lookup(id string) (Project, bool) { return s.mem.lookup(id) }

// List implements Store.
func (s *BoltStore) List(_ context.Context, f Filter) ([]Project, error) {
	s.mem.mu.RLock()
	all := make([]Project, 0, len(s.mem.projects))
	for _, p := range s.mem.projects {
		all = append(all, p.clone())
	}
	s.mem.mu.RUnlock()
	return filterSorted(all, f), nil
}

// Update implements Store.
func (s *BoltStore) Update(_ context.Context, id string, patch Patch) (Project, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	old, ok := s.mem.lookup(id)
	if !ok {
		return Project{}, ErrNotFound
	}
	p, err := patch.apply(old)
	if err != nil {
		return Project{}, err
	}
	p.Updated = s.opts.Now().UTC()
	if err := p.Validate(s.opts.KnownPlan); err != nil {
		return Project{}, err
	}
	if err := s.put(&p, false); err != nil {
		return Project{}, err
	}
	return p.clone(), nil
}

// Delete implements Store.
func (s *BoltStore) Delete(_ context.Context, id string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, ok := s.mem.lookup(id); !ok {
		return ErrNotFound
	}
	err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(projectsBucket).Delete([]byte(id)) })
	if err != nil {
		return fmt.Errorf("projects: deleting %s: %w", id, err)
	}
	s.rev++
	s.mem.set(id, nil, s.rev)
	return nil
}

// Watch implements Store.
func (s *BoltStore) Watch(fn func(Change)) func() { return s.mem.watch(fn) }

// Close closes the file.
func (s *BoltStore) Close() error { return s.db.Close() }
