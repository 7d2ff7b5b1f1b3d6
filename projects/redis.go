package projects

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Defaults of a RedisStore.
const (
	DefaultRedisPrefix  = "elara:"
	DefaultPollInterval = 250 * time.Millisecond
	DefaultRedisTimeout = 2 * time.Second
	// changeLogLength is how many changes the log keeps; an instance
	// further behind reloads everything.
	changeLogLength = 1000
)

// RedisOptions tune a RedisStore.
type RedisOptions struct {
	// Prefix starts every key; the keys add the hash tag {projects} so
	// they share one Cluster slot. Default "elara:".
	Prefix string
	// PollInterval is how often the version is read to see other
	// instances' changes; at most 1s. Default 250ms.
	PollInterval time.Duration
	// Timeout bounds each Redis call. Default 2s.
	Timeout time.Duration
	// KnownPlan says whether a plan exists; nil accepts any name.
	KnownPlan func(string) bool
	// Now is the clock for created/updated; nil is time.Now.
	Now func() time.Time
	// Logger reports outages, once each.
	Logger *zap.Logger
}

// RedisStore is a Store in Redis shared by every gateway using the same
// Redis and prefix. It does not close the client: the caller owns it.
type RedisStore struct {
	client                               redis.UniversalClient
	opts                                 RedisOptions
	mem                                  *memory
	keyAll, keyVersion, keyLog, keyEpoch string

	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex // guards the sync state below
	seen int64      // the last version applied
	// epoch names the data set: a Redis emptied and written again starts
	// versions from 1 under a new epoch, which forces a reload.
	epoch string
	down  bool // in an outage (logged once)
}

var _ Store = (*RedisStore)(nil)

// writeScript checks and writes one project, bumps the version and logs
// the change, atomically. KEYS: all, version, log. ARGV: mode (create,
// update, delete), id, new JSON, expected current JSON (update), log
// length, a new epoch should the data set be new. KEYS[4] is the epoch. Returns the new version, or -1 exists, -2 missing, -3 changed
// meanwhile.
var writeScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[2])
local mode = ARGV[1]
if mode == 'create' then
  if cur then return -1 end
else
  if not cur then return -2 end
  if mode == 'update' and cur ~= ARGV[4] then return -3 end
end
if mode == 'delete' then
  redis.call('HDEL', KEYS[1], ARGV[2])
else
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
end
redis.call('SETNX', KEYS[4], ARGV[6])
local v = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[3], v, v .. ':' .. ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[5]) - 1)
return v
`)

// NewRedisStore loads every project from Redis into memory and starts
// following changes. It fails if Redis cannot be read now: starting
// with no projects would refuse every client.
func NewRedisStore(ctx context.Context, client redis.UniversalClient, opts RedisOptions) (*RedisStore, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultRedisPrefix
	}
	if opts.PollInterval <= 0 || opts.PollInterval > time.Second {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultRedisTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	base := opts.Prefix + "{projects}:"
	s := &RedisStore{client: client, opts: opts, mem: newMemory(),
		keyAll: base + "all", keyVersion: base + "version", keyLog: base + "log", keyEpoch: base + "epoch",
		done: make(chan struct{})}
	if err := s.reload(ctx); err != nil {
		return nil, fmt.Errorf("projects: loading from Redis: %w", err)
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.follow(loopCtx)
	return s, nil
}

func (s *RedisStore) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, s.opts.Timeout)
}

// version reads the version and the epoch at once (one slot).
func (s *RedisStore) version(ctx context.Context) (int64, string, error) {
	vals, err := s.client.MGet(ctx, s.keyVersion, s.keyEpoch).Result()
	if err != nil {
		return 0, "", err
	}
	var v int64
	if str, ok := vals[0].(string); ok {
		if v, err = strconv.ParseInt(str, 10, 64); err != nil {
			return 0, "", fmt.Errorf("version %q: %w", str, err)
		}
	}
	epoch, _ := vals[1].(string)
	return v, epoch, nil
}

// reload reads the version, then every project.
func (s *RedisStore) reload(parent context.Context) error {
	ctx, cancel := s.ctx(parent)
	defer cancel()
	v, epoch, err := s.version(ctx)
	if err != nil {
		return err
	}
	raw, err := s.client.HGetAll(ctx, s.keyAll).Result()
	if err != nil {
		return err
	}
	all := make(map[string]*Project, len(raw))
	for id, data := range raw {
		p, err := unmarshalProject([]byte(data))
		if err != nil {
			s.opts.Logger.Error("skipping a stored project", zap.String("id", id), zap.Error(err))
			continue
		}
		all[id] = p
	}
	s.mu.Lock()
	// Versions start over in a new data set: the revisions held are moot.
	fresh := epoch != s.epoch || v < s.seen
	s.mu.Unlock()
	s.mem.replace(all, v, fresh)
	s.mu.Lock()
	s.seen, s.epoch = v, epoch
	s.mu.Unlock()
	return nil
}

// follow polls the version until ctx ends.
func (s *RedisStore) follow(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.poll(ctx)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		wasDown := s.down
		s.down = err != nil
		s.mu.Unlock()
		switch {
		case err != nil && !wasDown:
			s.opts.Logger.Warn("projects: Redis unavailable; serving the projects in memory until it is back", zap.Error(err))
		case err == nil && wasDown:
			s.opts.Logger.Info("projects: Redis available again")
		}
	}
}

// poll applies the changes logged since the last version seen, or
// reloads everything when the log cannot tell (too far behind, Redis
// emptied).
func (s *RedisStore) poll(parent context.Context) error {
	ctx, cancel := s.ctx(parent)
	defer cancel()
	v, epoch, err := s.version(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	seen, sameEpoch := s.seen, s.epoch == epoch
	s.mu.Unlock()
	if !sameEpoch || v < seen {
		return s.reload(parent)
	}
	if v == seen {
		return nil
	}
	entries, err := s.client.ZRangeByScoreWithScores(ctx, s.keyLog, &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(seen, 10), Max: "+inf"}).Result()
	if err != nil {
		return err
	}
	if len(entries) == 0 || int64(entries[0].Score) != seen+1 {
		return s.reload(parent) // the log was trimmed past what we saw
	}
	// Each project's state is read after the log, so it is at least as
	// new as its last logged version: that version orders it.
	ids := make([]string, 0, len(entries))
	revs := make(map[string]int64, len(entries))
	top := seen
	for _, e := range entries {
		m, _ := e.Member.(string)
		_, id, _ := strings.Cut(m, ":")
		v := int64(e.Score)
		if _, ok := revs[id]; !ok {
			ids = append(ids, id)
		}
		revs[id] = max(revs[id], v)
		top = max(top, v)
	}
	vals, err := s.client.HMGet(ctx, s.keyAll, ids...).Result()
	if err != nil {
		return err
	}
	for i, id := range ids {
		str, ok := vals[i].(string)
		if !ok {
			s.mem.set(id, nil, revs[id])
			continue
		}
		p, err := unmarshalProject([]byte(str))
		if err != nil {
			s.opts.Logger.Error("skipping a stored project", zap.String("id", id), zap.Error(err))
			continue
		}
		s.mem.set(id, p, revs[id])
	}
	s.mu.Lock()
	s.seen = max(s.seen, top)
	seen = s.seen
	s.mu.Unlock()
	s.mem.forget(seen)
	return nil
}

func (s *RedisStore) write(parent context.Context, mode, id, data, expect string) (int64, error) {
	ctx, cancel := s.ctx(parent)
	defer cancel()
	return writeScript.Run(ctx, s.client, []string{s.keyAll, s.keyVersion, s.keyLog, s.keyEpoch},
		mode, id, data, expect, changeLogLength, NewID()).Int64()
}

// Create implements Store.
func (s *RedisStore) Create(ctx context.Context, req CreateRequest) (Project, error) {
	p := req.project(s.opts.Now().UTC())
	if err := p.Validate(s.opts.KnownPlan); err != nil {
		return Project{}, err
	}
	data, err := marshalProject(&p)
	if err != nil {
		return Project{}, err
	}
	r, err := s.write(ctx, "create", p.ID, string(data), "")
	if err != nil {
		return Project{}, fmt.Errorf("projects: creating in Redis: %w", err)
	}
	if r < 0 {
		return Project{}, fmt.Errorf("projects: id %s already taken", p.ID)
	}
	c := p.clone()
	s.mem.set(p.ID, &c, r)
	return p.clone(), nil
}

// Get implements Store, reading Redis.
func (s *RedisStore) Get(parent context.Context, id string) (Project, error) {
	p, _, err := s.get(parent, id)
	return p, err
}

func (s *RedisStore) get(parent context.Context, id string) (Project, string, error) {
	ctx, cancel := s.ctx(parent)
	defer cancel()
	data, err := s.client.HGet(ctx, s.keyAll, id).Result()
	if errors.Is(err, redis.Nil) {
		return Project{}, "", ErrNotFound
	}
	if err != nil {
		return Project{}, "", fmt.Errorf("projects: reading from Redis: %w", err)
	}
	p, err := unmarshalProject([]byte(data))
	if err != nil {
		return Project{}, "", err
	}
	return *p, data, nil
}

// Lookup implements Store.
func (s *RedisStore) Lookup(id string) (Project, bool) { return s.mem.lookup(id) }

// List implements Store, reading Redis.
func (s *RedisStore) List(parent context.Context, f Filter) ([]Project, error) {
	ctx, cancel := s.ctx(parent)
	defer cancel()
	raw, err := s.client.HGetAll(ctx, s.keyAll).Result()
	if err != nil {
		return nil, fmt.Errorf("projects: listing from Redis: %w", err)
	}
	all := make([]Project, 0, len(raw))
	for _, data := range raw {
		if p, err := unmarshalProject([]byte(data)); err == nil {
			all = append(all, *p)
		}
	}
	return filterSorted(all, f), nil
}

// Update implements Store: read, patch, validate, and write only if no
// one changed the project meanwhile (else try again).
func (s *RedisStore) Update(ctx context.Context, id string, patch Patch) (Project, error) {
	for range 10 {
		old, oldData, err := s.get(ctx, id)
		if err != nil {
			return Project{}, err
		}
		p, err := patch.apply(old)
		if err != nil {
			return Project{}, err
		}
		p.Updated = s.opts.Now().UTC()
		if err := p.Validate(s.opts.KnownPlan); err != nil {
			return Project{}, err
		}
		data, err := marshalProject(&p)
		if err != nil {
			return Project{}, err
		}
		r, err := s.write(ctx, "update", id, string(data), oldData)
		if err != nil {
			return Project{}, fmt.Errorf("projects: updating in Redis: %w", err)
		}
		switch r {
		case -2:
			return Project{}, ErrNotFound
		case -3:
			continue
		}
		c := p.clone()
		s.mem.set(id, &c, r)
		return p.clone(), nil
	}
	return Project{}, fmt.Errorf("projects: %s changed too often to update", id)
}

// Delete implements Store.
func (s *RedisStore) Delete(ctx context.Context, id string) error {
	r, err := s.write(ctx, "delete", id, "", "")
	if err != nil {
		return fmt.Errorf("projects: deleting in Redis: %w", err)
	}
	if r == -2 {
		return ErrNotFound
	}
	s.mem.set(id, nil, r)
	return nil
}

// Watch implements Store.
func (s *RedisStore) Watch(fn func(Change)) func() { return s.mem.watch(fn) }

// Close stops following changes; the client stays open.
func (s *RedisStore) Close() error {
	s.cancel()
	<-s.done
	return nil
}
