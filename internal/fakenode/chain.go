package fakenode

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultSpecVersion is the runtime specVersion of a new Chain.
const DefaultSpecVersion uint32 = 100

const zeroHash = "0x0000000000000000000000000000000000000000000000000000000000000000"

var chainSeeds atomic.Uint64

// Chain is the block state shared by one or more Nodes; nodes of one chain
// agree on every hash. Changes are pushed to every node attached to the chain
// (each node then notifies its own subscribers).
//
// There are no forks: block n+1 always builds on block n. Storage and the
// runtime version are versioned by block number, so queries "at" an older
// hash see the older value.
type Chain struct {
	seed uint64

	// emitMu serialises each change together with its notifications, so every
	// node sees changes in the same order, and subscribing (which also takes
	// it) can never interleave its first notification with a change.
	emitMu sync.Mutex

	mu        sync.RWMutex // guards the fields below; never held while calling into a Node
	blocks    []*block
	byHash    map[string]*block
	finalized uint64
	spec      []versioned[uint32]
	storage   map[string][]versioned[string] // "" = absent
	pool      []string                       // extrinsics waiting for the next block
	nodes     map[*Node]struct{}
}

type block struct {
	header     Header
	json       json.RawMessage // cached: headers are immutable and sent a lot
	extrinsics []string
}

func (b *block) number() uint64 { return b.header.Number }
func (b *block) hash() string   { return b.header.Hash }

// versioned is one value of a history that changes at block num.
type versioned[T any] struct {
	num uint64
	val T
}

func setAt[T any](h []versioned[T], num uint64, v T) []versioned[T] {
	if l := len(h); l > 0 && h[l-1].num == num {
		h[l-1].val = v
		return h
	}
	return append(h, versioned[T]{num, v})
}

func valueAt[T any](h []versioned[T], num uint64) (T, bool) {
	i := sort.Search(len(h), func(i int) bool { return h[i].num > num })
	if i == 0 {
		var zero T
		return zero, false
	}
	return h[i-1].val, true
}

// NewChain returns a chain with genesis block #0 and block #1, both
// finalized. Each call uses a new seed, so two chains never share hashes.
func NewChain() *Chain { return NewChainWithSeed(chainSeeds.Add(1) + 1<<32) }

// NewChainWithSeed is NewChain with an explicit seed: hashes are a pure
// function of (seed, number), so two chains with one seed are identical.
func NewChainWithSeed(seed uint64) *Chain {
	c := &Chain{
		seed:    seed,
		byHash:  map[string]*block{},
		storage: map[string][]versioned[string]{},
		nodes:   map[*Node]struct{}{},
		spec:    []versioned[uint32]{{0, DefaultSpecVersion}},
	}
	c.appendBlockLocked()
	c.appendBlockLocked()
	c.finalized = 1
	return c
}

// Seed returns the seed the chain's hashes derive from.
func (c *Chain) Seed() uint64 { return c.seed }

func (c *Chain) derive(tag string, n uint64) string {
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], c.seed)
	binary.BigEndian.PutUint64(buf[8:], n)
	h := sha256.New()
	h.Write([]byte(tag))
	h.Write(buf[:])
	return "0x" + hex.EncodeToString(h.Sum(nil))
}

func (c *Chain) appendBlockLocked() *block {
	n := uint64(len(c.blocks))
	parent := zeroHash
	if n > 0 {
		parent = c.blocks[n-1].hash()
	}
	h := Header{
		ParentHash:     parent,
		Number:         n,
		StateRoot:      c.derive("state", n),
		ExtrinsicsRoot: c.derive("extrinsics", n),
		Digest:         Digest{Logs: []string{}},
		Hash:           c.derive("block", n),
	}
	js, err := json.Marshal(h)
	if err != nil {
		panic("fakenode: " + err.Error())
	}
	ext := c.pool
	if ext == nil {
		ext = []string{}
	}
	c.pool = nil
	b := &block{header: h, json: js, extrinsics: ext}
	c.blocks = append(c.blocks, b)
	c.byHash[h.Hash] = b
	return b
}

func (c *Chain) nodeListLocked() []*Node {
	out := make([]*Node, 0, len(c.nodes))
	for n := range c.nodes {
		out = append(out, n)
	}
	return out
}

// NewBlock makes block best+1 on top of the current best, without finalizing
// it, and notifies every node following the chain. Extrinsics submitted
// since the previous block are included in it.
func (c *Chain) NewBlock() Header {
	c.emitMu.Lock()
	defer c.emitMu.Unlock()
	return c.newBlockLocked().header.clone()
}

func (c *Chain) newBlockLocked() *block {
	c.mu.Lock()
	b := c.appendBlockLocked()
	nodes := c.nodeListLocked()
	c.mu.Unlock()
	for _, n := range nodes {
		n.onNewBlock(b)
	}
	return b
}

// Finalize marks every block up to number (capped at the best block) as
// finalized. Like Substrate, finalized-head subscribers get only the new
// finalized head, even if several blocks were finalized at once. Finalizing
// an already finalized number does nothing.
func (c *Chain) Finalize(number uint64) {
	c.emitMu.Lock()
	defer c.emitMu.Unlock()
	c.finalizeLocked(number)
}

func (c *Chain) finalizeLocked(number uint64) {
	c.mu.Lock()
	number = min(number, uint64(len(c.blocks)-1))
	if number <= c.finalized {
		c.mu.Unlock()
		return
	}
	c.finalized = number
	b := c.blocks[number]
	nodes := c.nodeListLocked()
	c.mu.Unlock()
	for _, n := range nodes {
		n.onFinalized(b)
	}
}

// NewBlockFinalized makes a new block and finalizes it.
func (c *Chain) NewBlockFinalized() Header {
	c.emitMu.Lock()
	defer c.emitMu.Unlock()
	b := c.newBlockLocked()
	c.finalizeLocked(b.number())
	return b.header.clone()
}

// Best returns the best (latest) block header.
func (c *Chain) Best() Header { return c.bestBlock().header.clone() }

// Finalized returns the latest finalized header.
func (c *Chain) Finalized() Header { return c.finalizedBlock().header.clone() }

// GenesisHash returns the hash of block #0.
func (c *Chain) GenesisHash() string { return c.blockByNumber(0).hash() }

// HeaderByNumber returns the header of block n, if it exists.
func (c *Chain) HeaderByNumber(n uint64) (Header, bool) {
	b := c.blockByNumber(n)
	if b == nil {
		return Header{}, false
	}
	return b.header.clone(), true
}

// HeaderByHash returns the header of the block with hash h (any case).
func (c *Chain) HeaderByHash(h string) (Header, bool) {
	b := c.blockByHash(h)
	if b == nil {
		return Header{}, false
	}
	return b.header.clone(), true
}

// SetRuntimeVersion changes the runtime specVersion from the best block on
// (a runtime upgrade). state_getMetadata changes with it and
// state_subscribeRuntimeVersion subscribers are notified. Setting the
// current version does nothing, as Substrate only notifies real changes.
func (c *Chain) SetRuntimeVersion(specVersion uint32) {
	c.emitMu.Lock()
	defer c.emitMu.Unlock()
	c.mu.Lock()
	if c.spec[len(c.spec)-1].val == specVersion {
		c.mu.Unlock()
		return
	}
	c.spec = setAt(c.spec, uint64(len(c.blocks)-1), specVersion)
	nodes := c.nodeListLocked()
	c.mu.Unlock()
	for _, n := range nodes {
		n.onRuntimeVersion(specVersion)
	}
}

// SpecVersion returns the runtime specVersion at the best block.
func (c *Chain) SpecVersion() uint32 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.spec[len(c.spec)-1].val
}

// SetStorage sets storage key to value (both 0x-prefixed hex) at the best
// block; value "" deletes the key. Subscribers of state_subscribeStorage
// watching that key (or all keys) get one notification
// {"block": best hash, "changes": [[key, value|null]]}. Hex is lower-cased.
// Setting the current value does nothing.
func (c *Chain) SetStorage(key, value string) {
	key, value = strings.ToLower(key), strings.ToLower(value)
	c.emitMu.Lock()
	defer c.emitMu.Unlock()
	c.mu.Lock()
	best := uint64(len(c.blocks) - 1)
	hist := c.storage[key]
	if cur, _ := valueAt(hist, best); cur == value {
		c.mu.Unlock()
		return
	}
	c.storage[key] = setAt(hist, best, value)
	nodes := c.nodeListLocked()
	c.mu.Unlock()
	for _, n := range nodes {
		n.onStorage(key, value)
	}
}

// Storage returns the value of key at the best block.
func (c *Chain) Storage(key string) (string, bool) {
	return c.storageAt(strings.ToLower(key), c.bestBlock().number())
}

// --- internal accessors used by nodes ---

func (c *Chain) bestBlock() *block {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.blocks[len(c.blocks)-1]
}

func (c *Chain) finalizedBlock() *block {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.blocks[c.finalized]
}

func (c *Chain) blockByNumber(n uint64) *block {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if n >= uint64(len(c.blocks)) {
		return nil
	}
	return c.blocks[n]
}

func (c *Chain) blockByHash(h string) *block {
	c.mu.RLock()
	b := c.byHash[h]
	c.mu.RUnlock()
	if b == nil && h != strings.ToLower(h) {
		return c.blockByHash(strings.ToLower(h))
	}
	return b
}

// blockRange returns blocks from..to inclusive (clamped to what exists).
func (c *Chain) blockRange(from, to uint64) []*block {
	c.mu.RLock()
	defer c.mu.RUnlock()
	to = min(to, uint64(len(c.blocks)-1))
	if from > to {
		return nil
	}
	return slices.Clone(c.blocks[from : to+1])
}

func (c *Chain) specAt(n uint64) uint32 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, _ := valueAt(c.spec, n)
	return v
}

func (c *Chain) storageAt(key string, n uint64) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, _ := valueAt(c.storage[key], n)
	return v, v != ""
}

// keysAt returns the sorted keys with prefix that hold a value at block n.
func (c *Chain) keysAt(prefix string, n uint64) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	keys := []string{}
	for k, h := range c.storage {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if v, _ := valueAt(h, n); v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// submit puts an extrinsic into the pool for the next block. ok is false if
// it is already there (Substrate: "Transaction Already Imported").
func (c *Chain) submit(ext string) (hash string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if slices.Contains(c.pool, ext) {
		return hashHex(ext), false
	}
	c.pool = append(c.pool, ext)
	return hashHex(ext), true
}

func (c *Chain) pendingExtrinsics() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]string{}, c.pool...)
}

// attach starts sending changes to n; its view starts at the current state.
func (c *Chain) attach(n *Node) {
	c.emitMu.Lock()
	defer c.emitMu.Unlock()
	c.mu.Lock()
	c.nodes[n] = struct{}{}
	best, fin := c.blocks[len(c.blocks)-1], c.blocks[c.finalized]
	c.mu.Unlock()
	n.viewBest.Store(best)
	n.viewFinalized.Store(fin)
}

func (c *Chain) detach(n *Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.nodes, n)
}

// hashHex hashes hex-encoded bytes; sha256 stands in for Substrate's
// blake2-256 (of an extrinsic, of a storage value).
func hashHex(ext string) string {
	raw, err := hex.DecodeString(strings.TrimPrefix(ext, "0x"))
	if err != nil {
		raw = []byte(ext)
	}
	sum := sha256.Sum256(raw)
	return "0x" + hex.EncodeToString(sum[:])
}
