package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/elara-gateway/elara/limits"
	"github.com/elara-gateway/elara/projects"
)

// ProjectsConfig turns on projects, plans and limits: who may call
// (`/{chain}/{project}`) and how much. Without it every path is served
// with no limits and the project segment only labels logs. See
// UnmarshalCaddyfile for the Caddyfile form.
type ProjectsConfig struct {
	// Store is where projects and daily counts live: "bolt", a file in
	// Caddy's data directory for a single gateway, or "redis", shared by
	// every gateway on the app's Redis (changes seen within a second).
	// Default: redis when the app has a redis option, otherwise bolt.
	Store string `json:"store,omitempty"`
	// Dir is the directory of the bolt file. Default: Caddy's data
	// directory + "/elara".
	Dir string `json:"dir,omitempty"`
	// Prefix starts every Redis key. Default: "elara:".
	Prefix string `json:"prefix,omitempty"`
	// TimeZone sets when a day starts for daily limits: an IANA name
	// (Asia/Shanghai), UTC, or an offset such as UTC+8. Default: UTC.
	TimeZone string `json:"time_zone,omitempty"`
	// Public is what a path without a project gets: the name of a plan
	// whose limits then apply per client IP, or "off" to refuse it (403).
	// Default: served without limits.
	Public string `json:"public,omitempty"`
	// RedisDown is what limits do while Redis is down: "open" (default)
	// keeps limiting from each gateway's memory, "closed" refuses calls.
	RedisDown string `json:"redis_down,omitempty"`
}

// Store kinds and access settings.
const (
	ProjectsStoreBolt  = "bolt"
	ProjectsStoreRedis = "redis"
	PublicOff          = "off"
	RedisDownOpen      = "open"
	RedisDownClosed    = "closed"
)

// accessPool keeps the project store and counters across config reloads
// that keep their settings: bbolt allows one opener per process, and the
// counts of the day must not start over.
var accessPool = caddy.NewUsagePool()

// projectStorePool keeps project stores by what they open.
var projectStorePool = caddy.NewUsagePool()

// projectStore is a store shared by the configs that open the same bolt
// file or Redis keys.
type projectStore struct {
	projects.Store
	bolt *projects.BoltStore // nil for Redis
	// plans are the plans of the config loaded last, for validating
	// projects written through the store.
	plans atomic.Pointer[limits.Plans]
}

func (s *projectStore) Destruct() error { return s.Close() }

// accessShared is what outlives a config with the same settings: the
// counters, the rate limiters and the connection counts.
type accessShared struct {
	store    projects.Store
	counters *limits.Counters
	rate     limits.Rater
	conns    *limits.Conns
}

// Destruct flushes the counters; the store is released on its own,
// after them (Cleanup order).
func (s *accessShared) Destruct() error { return s.counters.Close() }

// Access is the running projects and limits of a config, as the handler
// and the admin API use them.
type Access struct {
	// Plans are the configured plans by name.
	Plans limits.Plans
	// Public is the plan of calls without a project (limits per client
	// IP); nil means unlimited. PublicOff refuses them.
	Public    *limits.Plan
	PublicOff bool
	// Enforcer checks and counts calls.
	Enforcer *limits.Enforcer

	shared *accessShared
	ctx    caddy.Context
	events *caddyevents.App
	// eventRate keeps limit_exceeded events to one per second per
	// subject and limit: a client hammering a limit would flood handlers.
	eventRate *limits.RateLimiter
	log       *zap.Logger

	suspending sync.Map // project ids being suspended
	handles    projectHandles

	// statuses are the last statuses seen, to tell a resumed project.
	smu      sync.Mutex
	statuses map[string]projects.Status
	lapses   map[string]*time.Timer
	unwatch  func()
}

func (x *Access) now() time.Time { return time.Now() }

// Store is the project store.
func (x *Access) Store() projects.Store { return x.shared.store }

// Conns counts open WebSocket connections.
func (x *Access) Conns() *limits.Conns { return x.shared.conns }

// Subject is who a call of project p (nil: public, from ip) is counted
// against, with the limits that apply.
func (x *Access) Subject(p *projects.Project, ip string) limits.Subject {
	if p == nil {
		s := limits.Subject{IP: ip}
		if x.Public != nil {
			s.Limits = x.Public.Limits
		}
		return s
	}
	plan := x.Plans[p.Plan]
	return limits.Subject{Project: p.ID, Owner: p.Owner, IP: ip, Limits: p.EffectiveLimits(plan),
		OwnerRequestsPerDay: plan.OwnerRequestsPerDay, OwnerBytesPerDay: plan.OwnerBytesPerDay}
}

// Counted reports whether calls of s go through the enforcer: every
// project's are (its usage is metered even on a plan without limits);
// public calls only under a plan with limits.
func Counted(s limits.Subject) bool {
	return s.Project != "" || s.Limits != (limits.Limits{}) || s.OwnerRequestsPerDay > 0 || s.OwnerBytesPerDay > 0
}

// Refused counts a refused call by reason (a fixed set: see
// RefusalReasons) and emits elara.limit_exceeded for limits, at most once
// a second per subject and limit.
func (x *Access) Refused(reason string, s limits.Subject, ex *limits.Exceeded) {
	refusedCalls.WithLabelValues(reason).Inc()
	if ex == nil || x.events == nil {
		return
	}
	key := ex.Scope + ":" + s.Project + s.IP + ":" + ex.Limit
	if !x.eventRate.Allow(key, limits.Limits{RequestsPerSecond: 1}).Allowed {
		return
	}
	data := map[string]any{"limit": ex.Limit, "scope": ex.Scope, "value": ex.Value, "used": ex.Used}
	if s.Project != "" {
		data["project"] = s.Project
	} else {
		data["client_ip"] = s.IP
	}
	x.events.Emit(x.ctx, "elara.limit_exceeded", data)
}

// Suspend suspends project p until the reset of the daily limit it
// reached, off the caller's goroutine, and emits elara.project_suspended
// if this call did it.
func (x *Access) Suspend(p projects.Project, ex *limits.Exceeded) {
	// One write per project at a time: every refused call until the
	// suspension shows would otherwise start one.
	if _, busy := x.suspending.LoadOrStore(p.ID, true); busy {
		return
	}
	go func() {
		defer x.suspending.Delete(p.ID)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done, err := projects.Suspend(ctx, x.shared.store, p.ID, ex.ResetAt)
		if err != nil {
			x.log.Warn("suspending a project failed", zap.String("project", p.ID), zap.Error(err))
			return
		}
		if done {
			x.log.Info("project suspended until its daily limit resets", zap.String("project", p.ID),
				zap.String("limit", ex.Limit), zap.Time("until", ex.ResetAt))
			if x.events != nil {
				x.events.Emit(x.ctx, "elara.project_suspended", map[string]any{
					"project": p.ID, "owner": p.Owner, "limit": ex.Limit, "until": ex.ResetAt.UTC().Format(time.RFC3339)})
			}
		}
	}()
}

// watch follows the store to emit elara.project_resumed when a
// suspended or disabled project is made active again, or when a
// suspension lapses at its reset (a timer per suspended project).
func (x *Access) watch() {
	x.statuses = make(map[string]projects.Status)
	x.lapses = make(map[string]*time.Timer)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	all, _ := x.shared.store.List(ctx, projects.Filter{})
	cancel()
	x.smu.Lock()
	for i := range all {
		x.statuses[all[i].ID] = all[i].Status
		x.scheduleLapse(&all[i])
	}
	x.smu.Unlock()
	x.unwatch = x.shared.store.Watch(func(c projects.Change) {
		x.forgetHandles(c.ID)
		x.smu.Lock()
		prev, had := x.statuses[c.ID]
		if t := x.lapses[c.ID]; t != nil {
			t.Stop()
			delete(x.lapses, c.ID)
		}
		if c.Project == nil {
			delete(x.statuses, c.ID)
		} else {
			x.statuses[c.ID] = c.Project.Status
			x.scheduleLapse(c.Project)
		}
		x.smu.Unlock()
		if c.Project != nil && had && prev != projects.Active && c.Project.Status == projects.Active {
			go x.resumed(c.ID, c.Project.Owner, prev) // Watch callbacks must not block
		}
	})
}

// scheduleLapse arms the timer of a suspended project's reset; x.smu is
// held.
func (x *Access) scheduleLapse(p *projects.Project) {
	if p.Status != projects.Suspended || p.SuspendedUntil == nil || x.events == nil {
		return
	}
	id, owner, until := p.ID, p.Owner, *p.SuspendedUntil
	x.lapses[id] = time.AfterFunc(time.Until(until), func() {
		x.smu.Lock()
		defer x.smu.Unlock()
		if x.lapses[id] == nil || x.statuses[id] != projects.Suspended {
			return // changed or stopped meanwhile
		}
		delete(x.lapses, id)
		go x.resumed(id, owner, projects.Suspended)
	})
}

func (x *Access) resumed(id, owner string, was projects.Status) {
	if x.events != nil {
		x.events.Emit(x.ctx, "elara.project_resumed", map[string]any{"project": id, "owner": owner, "was": string(was)})
	}
}

// stopWatching ends the watch and its timers.
func (x *Access) stopWatching() {
	if x.unwatch != nil {
		x.unwatch()
	}
	x.smu.Lock()
	for id, t := range x.lapses {
		t.Stop()
		delete(x.lapses, id)
	}
	x.smu.Unlock()
}

// Refusal reasons, the label values of elara_calls_refused_total.
const (
	RefusedUnknownProject = "unknown_project"
	RefusedDisabled       = "disabled"
	RefusedSuspended      = "suspended"
	RefusedChain          = "chain"
	RefusedOrigin         = "origin"
	RefusedNetwork        = "network"
	RefusedPublic         = "public_off"
	RefusedRate           = "rate"
	RefusedDaily          = "daily"
	RefusedConnections    = "connections"
	RefusedSubscriptions  = "subscriptions"
	RefusedUnavailable    = "unavailable"
)

var refusedCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "elara",
	Name:      "calls_refused_total",
	Help:      "Client calls and connections refused by projects and limits, by reason.",
}, []string{"reason"})

// Access is the config's projects and limits; nil when the app has no
// projects option.
func (a *App) Access() *Access { return a.access }

// provisionAccess opens (or reuses) the store and counters and builds
// the enforcer of this config.
func (a *App) provisionAccess(ctx caddy.Context) error {
	pc := a.Projects
	if pc == nil {
		if len(a.Plans) > 0 {
			return fmt.Errorf("plans need the projects option")
		}
		return nil
	}
	if err := ctx.GetMetricsRegistry().Register(refusedCalls); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return fmt.Errorf("projects metrics: %w", err)
		}
	}
	plans, err := limits.NewPlans(a.Plans...)
	if err != nil {
		return fmt.Errorf("plans: %w", err)
	}
	if pc.Store == "" {
		pc.Store = ProjectsStoreBolt
		if a.Redis != nil {
			pc.Store = ProjectsStoreRedis
		}
	}
	if pc.Store == ProjectsStoreBolt && pc.Dir == "" {
		pc.Dir = filepath.Join(caddy.AppDataDir(), "elara")
	}
	if pc.Prefix == "" {
		pc.Prefix = projects.DefaultRedisPrefix
	}
	if pc.RedisDown == "" {
		pc.RedisDown = RedisDownOpen
	}
	loc, err := limits.ParseZone(pc.TimeZone)
	if err != nil {
		return fmt.Errorf("projects: %w", err)
	}
	if pc.Store == ProjectsStoreRedis && a.redis == nil {
		return fmt.Errorf("projects: store redis needs the app's redis option")
	}
	x := &Access{Plans: plans, ctx: ctx, log: a.log.Named("projects"), eventRate: limits.NewRateLimiter(10000, nil)}
	switch pc.Public {
	case "":
	case PublicOff:
		x.PublicOff = true
	default:
		p, ok := plans[pc.Public]
		if !ok {
			return fmt.Errorf("projects: public plan %q is not defined", pc.Public)
		}
		x.Public = &p
	}
	if ev, err := ctx.App("events"); err == nil {
		x.events, _ = ev.(*caddyevents.App)
	}
	// The store is keyed by what it opens (a bolt file can be opened once
	// per process), the counters and rate limiters by every setting.
	sk := projectStoreKey{Store: ProjectsStoreBolt, Dir: pc.Dir}
	if pc.Store == ProjectsStoreRedis {
		sk = projectStoreKey{Store: ProjectsStoreRedis, Redis: a.redisKey, Prefix: pc.Prefix}
	}
	storeKey, err := poolKey(sk)
	if err != nil {
		return fmt.Errorf("projects: %w", err)
	}
	keyJSON, err := json.Marshal(struct {
		P *ProjectsConfig
		R string
	}{pc, a.redisKey})
	if err != nil {
		return fmt.Errorf("projects: %w", err)
	}
	key := string(keyJSON)
	log := x.log
	sval, _, err := projectStorePool.LoadOrNew(storeKey, func() (caddy.Destructor, error) {
		ps := &projectStore{}
		ps.plans.Store(&plans)
		known := func(name string) bool { return (*ps.plans.Load()).Has(name) }
		if pc.Store == ProjectsStoreRedis {
			ictx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := projects.NewRedisStore(ictx, a.redis, projects.RedisOptions{Prefix: pc.Prefix, KnownPlan: known, Logger: log})
			if err != nil {
				return nil, err
			}
			ps.Store = st
			return ps, nil
		}
		st, err := projects.OpenBolt(pc.Dir, projects.BoltOptions{KnownPlan: known})
		if err != nil {
			return nil, err
		}
		ps.Store, ps.bolt = st, st
		return ps, nil
	})
	if err != nil {
		return fmt.Errorf("projects store: %w", err)
	}
	a.projectStoreKey = storeKey
	ps := sval.(*projectStore)
	ps.plans.Store(&plans)
	val, _, err := accessPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		sh := &accessShared{store: ps.Store, conns: limits.NewConns()}
		copts := limits.CountersOptions{Days: limits.NewDays(loc), Logger: log}
		if pc.Store == ProjectsStoreRedis {
			sh.counters = limits.NewCounters(limits.NewRedisCounters(a.redis, pc.Prefix), copts)
			sh.rate = limits.NewSharedRateLimiter(a.redis, limits.SharedRateOptions{
				Prefix: pc.Prefix, FailClosed: pc.RedisDown == RedisDownClosed, Logger: log})
			return sh, nil
		}
		backend, err := limits.NewBoltCounters(ps.bolt.DB()) // same file: opened once
		if err != nil {
			return nil, err
		}
		sh.counters = limits.NewCounters(backend, copts)
		sh.rate = limits.Local(limits.NewRateLimiter(0, nil))
		return sh, nil
	})
	if err != nil {
		return fmt.Errorf("projects limits: %w", err)
	}
	sh := val.(*accessShared)
	x.shared = sh
	x.Enforcer = limits.NewEnforcer(sh.rate, sh.counters)
	x.Enforcer.FailClosed = pc.RedisDown == RedisDownClosed
	x.watch()
	a.access = x
	a.accessKey = key
	return nil
}

// validateAccess checks the projects option.
func (a *App) validateAccess() error {
	pc := a.Projects
	if pc == nil {
		return nil
	}
	switch pc.Store {
	case "", ProjectsStoreBolt, ProjectsStoreRedis:
	default:
		return fmt.Errorf("projects: store must be bolt or redis, not %q", pc.Store)
	}
	switch pc.RedisDown {
	case "", RedisDownOpen, RedisDownClosed:
	default:
		return fmt.Errorf("projects: redis_down must be open or closed, not %q", pc.RedisDown)
	}
	return nil
}

// current is the Access of the config started last, for the admin API,
// which lives outside the config.
var current atomic.Pointer[Access]

func (a *App) startAccess() error {
	if a.access != nil {
		current.Store(a.access)
	}
	return nil
}

func (a *App) stopAccess() {
	if a.access != nil {
		current.CompareAndSwap(a.access, nil)
	}
}

func (a *App) cleanupAccess() {
	if a.access != nil {
		a.access.stopWatching()
	}
	if a.accessKey != "" {
		_, _ = accessPool.Delete(a.accessKey)
		a.accessKey, a.access = "", nil
	}
	if a.projectStoreKey != "" {
		_, _ = projectStorePool.Delete(a.projectStoreKey)
		a.projectStoreKey = ""
	}
}

// CurrentAccess is the projects and limits of the running config, or nil.
func CurrentAccess() *Access { return current.Load() }
