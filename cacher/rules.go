package cacher

import (
	"fmt"
	"time"

	"github.com/elara-gateway/elara/methods"
)

// Class is how a method's answers may be cached.
type Class uint8

const (
	// ClassNone: never cached.
	ClassNone Class = iota
	// ClassConstant: called without params, constant until the runtime (or
	// the node, after a reconnect) changes; keyed by the spec version.
	ClassConstant
	// ClassLatest: called without params, about the latest block; answered
	// from entries the suducer refreshes on every new head.
	ClassLatest
	// ClassAtBlock: takes an optional block hash at HashPos. With a hash the
	// answer is immutable; without one the call is pinned to the current
	// head hash. Bare says what a call with no params at all is instead.
	ClassAtBlock
	// ClassBlockHash: chain_getBlockHash. Without params it is a latest
	// entry; for numbers at or below the finalized head it is immutable.
	ClassBlockHash
	// ClassTTL: not known to be cacheable, but configured with a TTL.
	ClassTTL
)

// Rule is what the cache knows about one method.
type Rule struct {
	Class Class
	// HashPos is the index of the optional block hash (ClassAtBlock).
	HashPos int
	// Bare is the class of a call without params when it differs from
	// pinning: ClassConstant for state_getMetadata(), ClassLatest for
	// chain_getHeader().
	Bare Class
	// Latest is the latest entry that answers the method when called
	// without params; aliases share their canonical method's entry.
	Latest string
}

// builtinRules is the table of the methods Substrate nodes serve whose
// answers are safe to cache. Hash positions follow the polkadot-sdk RPC
// definitions; *At aliases take the same params.
var builtinRules = map[string]Rule{
	// Constants of the runtime and of the node.
	"rpc_methods":       {Class: ClassConstant},
	"system_name":       {Class: ClassConstant},
	"system_version":    {Class: ClassConstant},
	"system_chain":      {Class: ClassConstant},
	"system_chainType":  {Class: ClassConstant},
	"system_properties": {Class: ClassConstant},

	// The latest block, refreshed by the suducer.
	"chain_getFinalizedHead": {Class: ClassLatest, Latest: "chain_getFinalizedHead"},
	"chain_getFinalisedHead": {Class: ClassLatest, Latest: "chain_getFinalizedHead"},
	"system_health":          {Class: ClassLatest, Latest: "system_health"},
	"system_syncState":       {Class: ClassLatest, Latest: "system_syncState"},
	"chain_getBlockHash":     {Class: ClassBlockHash, Latest: "chain_getBlockHash"},
	"chain_getHead":          {Class: ClassBlockHash, Latest: "chain_getBlockHash"},

	// An optional block hash. Without params: latest or constant.
	"chain_getHeader":         {Class: ClassAtBlock, HashPos: 0, Bare: ClassLatest, Latest: "chain_getHeader"},
	"chain_getBlock":          {Class: ClassAtBlock, HashPos: 0, Bare: ClassLatest, Latest: "chain_getBlock"},
	"state_getMetadata":       {Class: ClassAtBlock, HashPos: 0, Bare: ClassConstant},
	"state_getRuntimeVersion": {Class: ClassAtBlock, HashPos: 0, Bare: ClassConstant},
	"chain_getRuntimeVersion": {Class: ClassAtBlock, HashPos: 0, Bare: ClassConstant},

	// An optional block hash after other params: pinned when it is omitted.
	"state_getStorage":             {Class: ClassAtBlock, HashPos: 1},
	"state_getStorageAt":           {Class: ClassAtBlock, HashPos: 1},
	"state_getStorageHash":         {Class: ClassAtBlock, HashPos: 1},
	"state_getStorageHashAt":       {Class: ClassAtBlock, HashPos: 1},
	"state_getStorageSize":         {Class: ClassAtBlock, HashPos: 1},
	"state_getStorageSizeAt":       {Class: ClassAtBlock, HashPos: 1},
	"state_getKeys":                {Class: ClassAtBlock, HashPos: 1},
	"state_getKeysPaged":           {Class: ClassAtBlock, HashPos: 3},
	"state_getKeysPagedAt":         {Class: ClassAtBlock, HashPos: 3},
	"state_queryStorageAt":         {Class: ClassAtBlock, HashPos: 1},
	"state_call":                   {Class: ClassAtBlock, HashPos: 2},
	"state_callAt":                 {Class: ClassAtBlock, HashPos: 2},
	"state_getReadProof":           {Class: ClassAtBlock, HashPos: 1},
	"state_getChildReadProof":      {Class: ClassAtBlock, HashPos: 2},
	"childstate_getStorage":        {Class: ClassAtBlock, HashPos: 2},
	"childstate_getStorageHash":    {Class: ClassAtBlock, HashPos: 2},
	"childstate_getStorageSize":    {Class: ClassAtBlock, HashPos: 2},
	"childstate_getKeys":           {Class: ClassAtBlock, HashPos: 2},
	"childstate_getKeysPaged":      {Class: ClassAtBlock, HashPos: 4},
	"childstate_getStorageEntries": {Class: ClassAtBlock, HashPos: 2},
	"payment_queryInfo":            {Class: ClassAtBlock, HashPos: 1},
	"payment_queryFeeDetails":      {Class: ClassAtBlock, HashPos: 1},
}

// neverCached answers change with every call or have side effects: no
// configuration can make the cache keep them.
func neverCached(method string) bool { return methods.NeverCached(method) }

// Defaults of the cache's tunables.
const (
	DefaultShare        = 0.25
	DefaultImmutableTTL = 24 * time.Hour
	DefaultConstantTTL  = 24 * time.Hour
)

// Override changes the caching of one method.
type Override struct {
	// NoCache sends every call of the method to a node.
	NoCache bool
	// TTL replaces the method's TTL; for a method the table does not know,
	// a TTL makes its answers cacheable for that long.
	TTL time.Duration
	// Share is the fraction (0, 1] of the store one chain's entries of the
	// method may use; 0 means DefaultShare.
	Share float64
}

// Rules is the method table with the configured overrides applied. It is
// read-only once built and shared by every chain of a config.
type Rules struct {
	overrides    map[string]Override
	immutableTTL time.Duration
	constantTTL  time.Duration
}

// NewRules checks and applies overrides. Zero TTLs take the defaults.
func NewRules(overrides map[string]Override, immutableTTL, constantTTL time.Duration) (*Rules, error) {
	if immutableTTL <= 0 {
		immutableTTL = DefaultImmutableTTL
	}
	if constantTTL <= 0 {
		constantTTL = DefaultConstantTTL
	}
	r := &Rules{overrides: make(map[string]Override, len(overrides)), immutableTTL: immutableTTL, constantTTL: constantTTL}
	for m, o := range overrides {
		if err := checkOverride(m, o); err != nil {
			return nil, err
		}
		r.overrides[m] = o
	}
	return r, nil
}

func checkOverride(method string, o Override) error {
	if !validMethodName(method) {
		return fmt.Errorf("method %q: names are letters, digits and '_'", method)
	}
	if o.Share < 0 || o.Share > 1 {
		return fmt.Errorf("method %s: share must be between 0 and 100%%", method)
	}
	if o.TTL < 0 {
		return fmt.Errorf("method %s: negative ttl", method)
	}
	if !o.NoCache && neverCached(method) {
		return fmt.Errorf("method %s can never be cached", method)
	}
	return nil
}

// Rule returns the method's rule after overrides.
func (r *Rules) Rule(method string) Rule {
	if neverCached(method) {
		return Rule{}
	}
	o, hasOverride := r.overrides[method]
	if hasOverride && o.NoCache {
		return Rule{}
	}
	if rule, ok := builtinRules[method]; ok {
		return rule
	}
	if hasOverride && o.TTL > 0 {
		return Rule{Class: ClassTTL}
	}
	return Rule{}
}

// TTL is how long an entry of method of the given class lives in a store.
func (r *Rules) TTL(method string, class Class) time.Duration {
	if o := r.overrides[method]; o.TTL > 0 {
		return o.TTL
	}
	if class == ClassConstant {
		return r.constantTTL
	}
	return r.immutableTTL
}

// Share is the store share of one chain's entries of method.
func (r *Rules) Share(method string) float64 {
	if o := r.overrides[method]; o.Share > 0 {
		return o.Share
	}
	return DefaultShare
}

// Label is the metrics label of method: its name when the rules know it,
// OtherMethod otherwise, so label values stay bounded.
func (r *Rules) Label(method string) string {
	if _, ok := builtinRules[method]; ok {
		return method
	}
	if _, ok := r.overrides[method]; ok {
		return method
	}
	return OtherMethod
}

// OtherMethod labels the metrics of methods the rules do not name.
const OtherMethod = "other"

// KnownMethods lists the methods of the built-in table.
func KnownMethods() []string {
	out := make([]string, 0, len(builtinRules))
	for m := range builtinRules {
		out = append(out, m)
	}
	return out
}

func validMethodName(m string) bool {
	if m == "" || len(m) > 128 {
		return false
	}
	for _, c := range m {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
