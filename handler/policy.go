package handler

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/elara-gateway/elara/methods"
)

// UnsafeMethods are denied unless a handler's allow list names them one by
// one: through them anyone could change a validator's session keys, read
// or write the node's local storage, or reconfigure its networking. They
// are the methods Substrate itself marks unsafe, plus the node-identifying
// ones the original Elara denied.
var UnsafeMethods = []string{
	"author_insertKey",
	"author_rotateKeys",
	"author_hasKey",
	"author_hasSessionKeys",
	"author_removeExtrinsic",
	"offchain_localStorageSet",
	"offchain_localStorageGet",
	"offchain_localStorageClear",
	"system_nodeRoles",
	"system_localListenAddresses",
	"system_localPeerId",
	"system_addLogFilter",
	"system_resetLogFilter",
	"system_addReservedPeer",
	"system_removeReservedPeer",
	"system_reservedPeers",
	"system_peers",
	"system_networkState",
	"system_unstable_networkState",
	"system_dryRun",
	"system_dryRunAt",
	"state_getPairs",
	"state_queryStorage",
	"state_traceBlock",
	"state_trieMigrationStatus",
	// Reveals which slots the node's keystore can claim: it identifies a
	// validator (Substrate gates it with check_if_safe).
	"babe_epochAuthorship",
	// The node's local statement store: dump reads all of it, remove
	// deletes from it.
	"statement_dump",
	"statement_remove",
	"sudo_*",
	// Development and test-node control (Chopsticks, instant-seal nodes).
	"dev_*",
	"engine_*",
}

// Policy decides which methods a handler forwards.
type Policy struct {
	allow  []pattern
	deny   []pattern
	unsafe []pattern
	// exact holds allow entries without wildcards: only those may lift the
	// default denial of an unsafe method, so `allow *` never opens one.
	exact map[string]bool
}

type pattern struct {
	prefix, suffix string
	wildcard       bool
}

func compilePattern(p string) (pattern, error) {
	if p == "" {
		return pattern{}, fmt.Errorf("empty method pattern")
	}
	switch strings.Count(p, "*") {
	case 0:
		return pattern{prefix: p}, nil
	case 1:
		pre, suf, _ := strings.Cut(p, "*")
		return pattern{prefix: pre, suffix: suf, wildcard: true}, nil
	default:
		return pattern{}, fmt.Errorf("method pattern %q: at most one '*'", p)
	}
}

func (p pattern) match(m string) bool {
	if !p.wildcard {
		return m == p.prefix
	}
	return len(m) >= len(p.prefix)+len(p.suffix) && strings.HasPrefix(m, p.prefix) && strings.HasSuffix(m, p.suffix)
}

func compileAll(ps []string) ([]pattern, error) {
	out := make([]pattern, 0, len(ps))
	for _, p := range ps {
		c, err := compilePattern(p)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func matchAny(ps []pattern, m string) bool {
	for _, p := range ps {
		if p.match(m) {
			return true
		}
	}
	return false
}

// NewPolicy builds a policy. A non-empty allow list makes it allow-only.
func NewPolicy(allow, deny []string) (*Policy, error) {
	a, err := compileAll(allow)
	if err != nil {
		return nil, fmt.Errorf("allow: %w", err)
	}
	d, err := compileAll(deny)
	if err != nil {
		return nil, fmt.Errorf("deny: %w", err)
	}
	u, err := compileAll(UnsafeMethods)
	if err != nil {
		return nil, err
	}
	exact := make(map[string]bool)
	for _, p := range allow {
		if !strings.Contains(p, "*") {
			exact[p] = true
		}
	}
	return &Policy{allow: a, deny: d, unsafe: u, exact: exact}, nil
}

// Allowed reports whether method may be forwarded. Entries cover every
// alias of a method (package methods): denying chain_subscribeNewHeads
// denies subscribe_newHead too. Explicit denials win; unsafe methods need
// an exact allow entry; an allow list admits only what it matches. A
// method that ends what a client started (an unsubscribe, an unwatch, a
// broadcast's stop) is served whenever what it ends may be started,
// whatever the allow list says, so a client can always end its own
// subscriptions; a deny entry naming it still holds.
func (p *Policy) Allowed(method string) bool {
	starts, ender := methods.Ender(method)
	if !ender {
		return p.allowedNames(methods.Aliases(method))
	}
	if p.deniedNames(methods.Aliases(method)) {
		return false
	}
	for _, s := range starts {
		if p.allowedNames(methods.Aliases(s)) {
			return true
		}
	}
	return false
}

// allowedNames decides for a method known by these names.
func (p *Policy) allowedNames(names []string) bool {
	if p.deniedNames(names) {
		return false
	}
	unsafe, exact := false, false
	for _, n := range names {
		unsafe = unsafe || matchAny(p.unsafe, n)
		exact = exact || p.exact[n]
	}
	if unsafe && !exact {
		return false
	}
	if len(p.allow) == 0 {
		return true
	}
	for _, n := range names {
		if matchAny(p.allow, n) {
			return true
		}
	}
	return false
}

func (p *Policy) deniedNames(names []string) bool {
	for _, n := range names {
		if matchAny(p.deny, n) {
			return true
		}
	}
	return false
}

// FilterMethods removes denied methods from an rpc_methods result, so
// clients are never offered a method they cannot call. Other members of
// the result are kept as the node sent them.
func (p *Policy) FilterMethods(result json.RawMessage) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(result, &obj); err != nil {
		return nil, fmt.Errorf("rpc_methods result: %w", err)
	}
	var methods []string
	if err := json.Unmarshal(obj["methods"], &methods); err != nil {
		return nil, fmt.Errorf("rpc_methods methods: %w", err)
	}
	methods = slices.DeleteFunc(methods, func(m string) bool { return !p.Allowed(m) })
	raw, err := json.Marshal(methods)
	if err != nil {
		return nil, err
	}
	obj["methods"] = raw
	return json.Marshal(obj)
}
