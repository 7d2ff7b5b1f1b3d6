package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Transport is how a client talks to a target.
type Transport string

const (
	// HTTP is one JSON-RPC call per POST on a keep-alive connection.
	HTTP Transport = "http"
	// WS is a WebSocket connection carrying one call at a time.
	WS Transport = "ws"
)

// Case is one row of the results: a workload sent over a transport to a
// target by closed-loop clients.
type Case struct {
	// Group is the name -cases selects the case by.
	Group string
	// Section is the table of the report the case is a row of.
	Section   string
	Transport Transport
	Target    Target
	Workload  Workload
}

// Name identifies the case in progress output and profile file names.
func (c Case) Name() string {
	return string(c.Transport) + "-" + c.Target.Name() + "-" + c.Workload.Name()
}

// URL is where the case's clients send requests.
func (c Case) URL() string {
	if r, ok := c.Target.(workloadRouter); ok {
		return r.workloadURL(c.Transport, unwrap(c.Workload))
	}
	return c.Target.URL(c.Transport)
}

// Report sections.
const (
	sectionPassThrough = "pass-through"
	sectionCached      = "cached"
)

// passThrough is answered by the node every time: no cache may answer it,
// since the next index of an account changes with every extrinsic.
var passThrough = &rpcCall{
	name:   "accountNextIndex",
	method: "system_accountNextIndex",
	params: `["5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"]`,
	want:   `0`,
}

// Alice's System.Account entry and an AccountInfo of the right size
// (nonce, consumers, providers, sufficients, free, reserved, frozen, flags).
const (
	storageKey   = "0x26aa394eea5630e07c48ae0c9558cef7b99d880ec681799c0cf30e8886371da9de1e86a9a8c739864cf3cc5ec2bea59fd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
	storageValue = "0x0000000000000000010000000000000000a0dec5adc935360000000000000000" +
		"0000000000000000000000000000000000000000000000000000000000000000" +
		"00000000000000000000000000000080"
)

// cachedCalls are calls a gateway cache may answer, each checked against
// the node's own answer byte for byte. They are new values on every call
// because resolving them (the block hash, the expected result) needs the
// node of the run.
func cachedCalls() []Workload {
	return []Workload{
		// A runtime constant, ~300 kB like a relay chain's.
		&rpcCall{name: "metadata", method: "state_getMetadata", params: `[]`, fetchWant: true},
		// The latest header: a cache must follow new heads to keep it.
		&rpcCall{name: "header", method: "chain_getHeader", params: `[]`, fetchWant: true},
		// Storage at a block hash: immutable, cacheable forever.
		&rpcCall{name: "storageAtHash", method: "state_getStorage", fetchWant: true,
			setup: func(_ context.Context, env *Env) (string, error) {
				if err := env.Node.SetStorage(storageKey, storageValue); err != nil {
					return "", err
				}
				hash, err := env.Node.BestHash()
				if err != nil {
					return "", err
				}
				return `["` + storageKey + `","` + hash + `"]`, nil
			}},
	}
}

// allCases lists every request/response case, in the order they run and
// are reported: the pass-through call on every setup, then each cacheable
// call on every setup but reverse_proxy (which forwards it like elara
// without a cache). New setups go to allTargets.
func allCases(targets []Target) []Case {
	var out []Case
	for _, tr := range []Transport{HTTP, WS} {
		for _, t := range targets {
			out = append(out, newCase(string(tr), sectionPassThrough, tr, t, passThrough))
		}
	}
	cached := cachedCalls()
	for _, tr := range []Transport{HTTP, WS} {
		for _, w := range cached {
			for _, t := range targets {
				if t.Name() != "reverse_proxy" {
					out = append(out, newCase("cache-"+string(tr), sectionCached, tr, t, w))
				}
			}
		}
	}
	return out
}

func newCase(group, section string, tr Transport, t Target, w Workload) Case {
	if _, ok := t.(staticTarget); ok {
		w = staticReply{w}
	}
	return Case{Group: group, Section: section, Transport: tr, Target: t, Workload: w}
}

// caseGroups lists the group names, in order.
func caseGroups() []string {
	var groups []string
	for _, c := range allCases(allTargets()) {
		if !slices.Contains(groups, c.Group) {
			groups = append(groups, c.Group)
		}
	}
	return append(groups, fanoutGroup)
}

// fanoutGroup is the -cases name of the subscription fan-out cases.
const fanoutGroup = "fanout"

// fanoutTargets are the setups fan-out cases run on. Elara with a cache
// shares subscriptions exactly as elara does, and respond cannot stream.
var fanoutTargets = []string{"direct", "elara", "elara-deflate", "reverse_proxy"}

// selectCases keeps the cases of the named groups and targets, dropping
// those a target cannot serve (Caddy's respond cannot speak WebSocket),
// and the fan-out cases of each size in sizes.
func selectCases(groups, names []string, sizes []int) ([]Case, []FanoutCase, error) {
	if err := checkNames("case group", groups, caseGroups()); err != nil {
		return nil, nil, err
	}
	if err := checkNames("target", names, targetNames()); err != nil {
		return nil, nil, err
	}
	var targets []Target
	for _, t := range allTargets() {
		if slices.Contains(names, t.Name()) {
			targets = append(targets, t)
		}
	}
	var out []Case
	for _, c := range allCases(targets) {
		if slices.Contains(groups, c.Group) && c.Target.Supports(c.Transport) {
			out = append(out, c)
		}
	}
	var fan []FanoutCase
	if slices.Contains(groups, fanoutGroup) {
		for _, n := range sizes {
			for _, name := range fanoutTargets {
				if slices.Contains(names, name) {
					fan = append(fan, FanoutCase{Clients: n, Target: name})
				}
			}
			// chainHead followers beside the new-heads subscribers: a
			// node takes 4 per connection, so only through the gateway.
			if slices.Contains(names, "elara") {
				fan = append(fan, FanoutCase{Clients: n, Target: "elara", Follow: true})
			}
		}
	}
	if len(out) == 0 && len(fan) == 0 {
		return nil, nil, fmt.Errorf("no case selected")
	}
	return out, fan, nil
}

func checkNames(kind string, got, known []string) error {
	for _, g := range got {
		if !slices.Contains(known, g) {
			return fmt.Errorf("unknown %s %q (known: %s)", kind, g, strings.Join(known, ", "))
		}
	}
	return nil
}
