package main

import (
	"context"
	"strings"
	"time"
)

// Target is a setup clients send requests to: the node itself, or a Caddy
// process configured in front of it.
type Target interface {
	// Name is the setup column of the table and what -targets selects.
	Name() string
	// Supports reports whether the target can serve a transport.
	Supports(Transport) bool
	// Start brings the target up against env's node and returns once it
	// answers; Stop tears it down. Start is called once per run.
	Start(ctx context.Context, env *Env) error
	Stop() error
	// URL is where clients of a transport connect.
	URL(Transport) string
}

// profiler is a target whose CPU can be profiled while a case runs.
type profiler interface {
	// profileURL is the pprof CPU profile URL, "" when profiling is off.
	profileURL(seconds int) string
}

// adminer is a target with an admin API (with -profile), for pprof.
type adminer interface {
	adminURL() string
}

// pider is a target running as its own process, whose CPU time is
// accounted to it.
type pider interface {
	pid() int
}

// helper is a target with a second process of its own (Redis), whose CPU
// time is accounted separately.
type helper interface {
	helperPID() int
}

// staticTarget answers every request of a workload with the same body,
// written with id 1 (Caddy's respond).
type staticTarget interface {
	static()
}

// workloadRouter is a target with one URL per workload.
type workloadRouter interface {
	workloadURL(t Transport, w Workload) string
}

// deflater is a target whose WebSocket clients offer permessage-deflate.
type deflater interface {
	offersDeflate() bool
}

// clientDeflate reports whether t's WebSocket clients offer
// permessage-deflate (by default they do not).
func clientDeflate(t Target) bool {
	d, ok := t.(deflater)
	return ok && d.offersDeflate()
}

// Env is what targets share.
type Env struct {
	Node *nodeProc
	// Dir is a scratch directory removed at the end of the run.
	Dir string
	// Profile enables the admin API of Caddy targets, for pprof.
	Profile bool
	// caddy resolves (or builds) the Caddy binary on first use, so that a
	// run without Caddy targets needs no binary.
	caddy func(ctx context.Context) (string, error)
	// Workloads are the run's workloads, resolved against Node, for
	// targets that answer them themselves (respond).
	Workloads []Workload
	// pids are the bench's own processes: itself, the node and every
	// started target. CPU time outside them is other work on the machine.
	pids []int
}

// chainName is the chain elara serves; every target is reached on
// /chainName so that all setups see the same request line.
const chainName = "bench"

// nodeAddrToken in a Caddyfile snippet is replaced by the node's
// host:port. Caddy placeholders use braces, so the token does not.
const nodeAddrToken = "NODE_ADDR"

// elaraSite is the handler of the elara setups. All the benchmark's
// clients come from loopback, which the per-IP bounds do not exempt: the
// fan-out's thousands of subscribers need them raised (they are still
// counted, so their cost is measured).
const elaraSite = `elara_rpc {
	max_connections_per_ip 1000000
	max_subscriptions_per_ip 1000000
}`

// allTargets returns new instances of every setup, in report order. A new
// setup (elara with a cache, Caddy's static respond) is one more entry.
func allTargets() []Target {
	return []Target{
		&directTarget{},
		// Without the cache (on by default): every call reaches the node.
		&caddyTarget{
			name: "elara",
			global: `elara {
	chain ` + chainName + ` {
		node ws://` + nodeAddrToken + `
	}
	cache off
}`,
			site: elaraSite,
		},
		// elara as configured above, with WebSocket clients that offer
		// permessage-deflate, as browsers and the `ws` library do: the
		// gateway negotiates it (ws_compression, on by default).
		&caddyTarget{
			name: "elara-deflate",
			global: `elara {
	chain ` + chainName + ` {
		node ws://` + nodeAddrToken + `
	}
}`,
			site:          elaraSite,
			wsOnly:        true,
			clientDeflate: true,
		},
		// The same with the response cache in memory, every default.
		&caddyTarget{
			name: "elara-memory",
			global: `elara {
	chain ` + chainName + ` {
		node ws://` + nodeAddrToken + `
	}
	cache
}`,
			site: elaraSite,
		},
		// The same with the cache in a redis-server of its own.
		&redisTarget{caddyTarget: caddyTarget{
			name: "elara-redis",
			global: `elara {
	chain ` + chainName + ` {
		node ws://` + nodeAddrToken + `
	}
	redis ` + redisAddrToken + `
	cache {
		store redis
	}
}`,
			site: elaraSite,
		}},
		// elara-memory and elara-redis with statistics off (on by default,
		// embedded resp. in that Redis): what recording every call costs.
		&caddyTarget{
			name: "elara-nostats",
			global: `elara {
	chain ` + chainName + ` {
		node ws://` + nodeAddrToken + `
	}
	cache
	stats off
}`,
			site: "elara_rpc",
		},
		&redisTarget{caddyTarget: caddyTarget{
			name: "elara-redis-nostats",
			global: `elara {
	chain ` + chainName + ` {
		node ws://` + nodeAddrToken + `
	}
	redis ` + redisAddrToken + `
	cache {
		store redis
	}
	stats off
}`,
			site: "elara_rpc",
		}},
		// elara-memory and elara-redis with every call through a project on a
		// plan with limits (never reached): the cost of projects and limits.
		&projectTarget{caddyTarget: caddyTarget{name: "elara-project", global: projectGlobal(false), site: elaraSite}},
		&redisProjectTarget{redisTarget: redisTarget{caddyTarget: caddyTarget{name: "elara-project-redis",
			global: projectGlobal(true), site: elaraSite}}},
		// reverse_proxy proxies WebSocket upgrades as well as POSTs.
		&caddyTarget{name: "reverse_proxy", site: "reverse_proxy " + nodeAddrToken},
		// Caddy answering with a fixed body the size of the node's reply:
		// the ceiling for any Caddy handler.
		&respondTarget{caddyTarget: caddyTarget{name: "respond", httpOnly: true}},
		// The same replies from files, which Caddy does not rewrite.
		&fileTarget{caddyTarget: caddyTarget{name: "file_server", httpOnly: true}},
	}
}

// newTarget returns a new instance of the setup named name.
func newTarget(name string) Target {
	for _, t := range allTargets() {
		if t.Name() == name {
			return t
		}
	}
	return nil
}

func targetNames() []string {
	var names []string
	for _, t := range allTargets() {
		names = append(names, t.Name())
	}
	return names
}

// directTarget is the node itself: the floor every other setup adds to.
type directTarget struct{ addr string }

func (*directTarget) Name() string            { return "direct" }
func (*directTarget) Supports(Transport) bool { return true }
func (*directTarget) Stop() error             { return nil }

func (d *directTarget) Start(_ context.Context, env *Env) error {
	d.addr = env.Node.Addr()
	return nil
}

func (d *directTarget) URL(t Transport) string { return endpoint(t, d.addr) }

// endpoint is the URL of the bench chain on a host:port.
func endpoint(t Transport, addr string) string {
	scheme := "http://"
	if t == WS {
		scheme = "ws://"
	}
	return scheme + addr + "/" + chainName
}

func expand(snippet, nodeAddr string) string {
	return strings.ReplaceAll(snippet, nodeAddrToken, nodeAddr)
}

// startupTimeout bounds how long a target may take to answer its first call.
const startupTimeout = 30 * time.Second
