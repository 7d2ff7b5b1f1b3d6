package handler

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/projects"
)

// Client WebSockets outlive config reloads. Caddy provisions the new
// config, starts it, then cleans up the old one; when an old handler is
// cleaned up, each of its sessions is handed to its successor: the one
// handler of the newest config with the same identity (the chains it
// serves). From then on the session's calls read the successor's config
// (policy, limits, projects) through an atomic pointer, while its
// subscriptions, which live in the chain's matcher, go on untouched: the
// chain is the same object whenever the reload kept its name, the new
// config's nodes, options and cache applied to it (app/chain_apply.go).
//
// A session is closed with 1012 and a reason when there is nothing safe
// to hand it to: its chain was removed, its projects state changed, or
// the old or the new config has no handler,
// or more than one, with its identity. A kept connection is not matched
// or authenticated again: what comes before elara_rpc in the route is
// not re-run for it. Nothing waits for client calls on a reload;
// when the last config is unloaded (caddy stop), the sessions are closed
// and waited for, so nothing runs after it.

// registry holds the live handlers and every session's goroutines.
var registry = struct {
	mu sync.Mutex
	// live are the provisioned, not yet cleaned up handlers by identity,
	// in provision order.
	live  map[string][]*Handler
	nlive int
	// twins counts each config's handlers by identity.
	twins map[twinKey]*twins
	// wg counts the goroutines of every session (its reader and its
	// close handshake).
	wg sync.WaitGroup
}{live: make(map[string][]*Handler), twins: make(map[twinKey]*twins)}

// twinKey names the handlers of one config with one identity.
type twinKey struct {
	app *app.App
	id  string
}

// twins are the handlers of one config with one identity: n provisioned,
// live not yet cleaned up.
type twins struct{ n, live int }

// sessionSet is a handler's open WebSocket sessions; registry.mu guards
// it, as a reload moves sessions from one handler's set to another's.
type sessionSet struct {
	all map[*wsSession]struct{}
	// closing is set once the handler is cleaned up: no session joins.
	closing bool
}

// binding is what a session's calls are served with: the handler and the
// route, as of the config the session is bound to now.
type binding struct {
	h  *Handler
	rt route
}

func (h *Handler) bind(rt route) *binding {
	return &binding{h: h, rt: rt}
}

// handler is the handler the session is bound to now.
func (s *wsSession) handler() *Handler { return s.b.Load().h }

// route is the session's route as of its current handler.
func (s *wsSession) route() route { return s.b.Load().rt }

// logger names the session's chain, project and client on log lines.
// It is built when a line is logged: an idle session keeps no logger.
func (s *wsSession) logger() *zap.Logger {
	b := s.b.Load()
	return b.h.log.With(b.rt.logFields()...)
}

// identity is what a handler is found by across reloads: the chains it
// serves (nil: all).
func (h *Handler) identity() (string, error) {
	chains := slices.Clone(h.Chains)
	slices.Sort(chains)
	b, err := json.Marshal(struct {
		Chains []string `json:"chains"`
	}{slices.Compact(chains)})
	if err != nil {
		return "", fmt.Errorf("handler identity: %w", err)
	}
	return string(b), nil
}

// register makes the handler live: sessions can open on it and be handed
// to it. It runs once nothing else in Provision can fail.
func (h *Handler) register() error {
	id, err := h.identity()
	if err != nil {
		return err
	}
	h.id = id
	h.sessions = &sessionSet{all: make(map[*wsSession]struct{})}
	registry.mu.Lock()
	registry.live[id] = append(registry.live[id], h)
	registry.nlive++
	k := twinKey{h.app, id}
	tw := registry.twins[k]
	if tw == nil {
		tw = new(twins)
		registry.twins[k] = tw
	}
	tw.n++
	tw.live++
	h.twins = tw
	registry.mu.Unlock()
	return nil
}

// addSession records a new session; false when the handler is already
// cleaned up (a request that raced a reload).
func (h *Handler) addSession(s *wsSession) bool {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if h.sessions.closing {
		return false
	}
	h.sessions.all[s] = struct{}{}
	s.statsRelease = h.app.HoldStats()
	registry.wg.Add(1) // the reader; see closeWith for the close handshake
	return true
}

// removeSession forgets an ended session and returns its last route and
// the release of its hold on that config's statistics, to call once the
// session's last records are made.
func (s *wsSession) removeSession() (route, func()) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	b := s.b.Load()
	delete(b.h.sessions.all, s)
	release := s.statsRelease
	s.statsRelease = func() {}
	return b.rt, release
}

// successor is the handler that takes over h's sessions: the only live
// handler of another config with h's identity, when h was the only one of
// its own config too. registry.mu is held.
func (h *Handler) successor() *Handler {
	if h.twins.n > 1 {
		return nil // the old config had several: which one is h's heir?
	}
	var found *Handler
	for _, c := range registry.live[h.id] {
		if c.app == h.app {
			continue // h's own config, being cleaned up too
		}
		if found != nil {
			return nil // ambiguous: which one would serve the client?
		}
		found = c
	}
	return found
}

// rebind is the session's binding under next, or the reason it cannot
// be handed over. registry.mu is held.
func (b *binding) rebind(next *Handler) (*binding, string) {
	name := b.rt.chain.Name
	c := next.app.Chain(name)
	switch {
	case c == nil || next.chains != nil && !next.chains[name]:
		return nil, "chain " + name + " is no longer served"
	case c != b.rt.chain:
		// Only a chain removed and added back between the two configs: the
		// subscriptions live in the old chain, which is closed.
		return nil, "chain " + name + " configuration changed"
	}
	rt := b.rt
	rt.chain, rt.stats = c, next.stats[name]
	x := next.app.Access()
	switch {
	case rt.acc == nil && x == nil:
	case rt.acc == nil || x == nil || !x.SharesState(rt.acc.x):
		// The connection was admitted under other projects settings.
		return nil, "projects configuration changed"
	default:
		g := *rt.acc
		g.x = x
		if g.project != "" {
			// A change made while the two configs overlapped may have
			// reached neither handler's watch for this session: check the
			// project as it is now, as watchProjects would have.
			p, ok := x.Store().Lookup(g.project)
			switch {
			case !ok:
				return nil, "project deleted"
			case p.StatusAt(time.Now()) != projects.Active:
				return nil, "project " + string(p.StatusAt(time.Now()))
			case restrictionsKey(&p) != g.rules:
				return nil, "project restrictions changed"
			}
		}
		if g.project == "" {
			// The public plan as the new config has it; a project's is
			// looked up on every call.
			g.subject = x.Subject(nil, g.subject.IP)
		}
		rt.acc = &g
	}
	return next.bind(rt), ""
}

// releaseSessions runs in Cleanup: it hands every session to the
// successor, or closes it with 1012. It waits for the sessions only when
// this is the last live handler (Caddy stopping), never on a reload.
func (h *Handler) releaseSessions() {
	if h.sessions == nil {
		return // Provision failed before register
	}
	type victim struct {
		s      *wsSession
		reason string
	}
	var victims []victim
	var releases []func() // the moved sessions' holds on this config's statistics
	moved := 0
	registry.mu.Lock()
	h.sessions.closing = true
	live := registry.live[h.id]
	if i := slices.Index(live, h); i >= 0 {
		registry.live[h.id] = slices.Delete(live, i, i+1)
		registry.nlive--
		if h.twins.live--; h.twins.live == 0 {
			delete(registry.twins, twinKey{h.app, h.id})
		}
	}
	if len(registry.live[h.id]) == 0 {
		delete(registry.live, h.id)
	}
	next := h.successor()
	for s := range h.sessions.all {
		reason := "gateway configuration reloaded"
		if next != nil {
			var nb *binding
			if nb, reason = s.b.Load().rebind(next); nb != nil {
				s.b.Store(nb)
				next.sessions.all[s] = struct{}{}
				releases = append(releases, s.statsRelease)
				s.statsRelease = next.app.HoldStats()
				moved++
				continue
			}
		}
		victims = append(victims, victim{s, reason})
	}
	clear(h.sessions.all)
	last := registry.nlive == 0
	registry.mu.Unlock()

	// Not under registry.mu: the last release closes a pipeline.
	for _, release := range releases {
		release()
	}
	for _, v := range victims {
		code := closeServiceRestart
		if strings.HasPrefix(v.reason, "project ") {
			code = closeSlowConsumer // 1008, as watchProjects closes them
		}
		v.s.closeWith(code, v.reason)
	}
	if moved+len(victims) > 0 {
		if ce := h.log.Check(zap.InfoLevel, "websocket clients after reload"); ce != nil {
			ce.Write(zap.Int("kept", moved), zap.Int("closed", len(victims)))
		}
	}
	if last {
		registry.wg.Wait()
	}
}

// giveBack returns the connection slot the grant holds, if any.
func (g *grant) giveBack() {
	if g != nil && g.release != nil {
		g.release()
	}
}
