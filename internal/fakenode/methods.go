package fakenode

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

type methodKind uint8

const (
	kindCall     methodKind = iota
	kindConnCall            // a plain method that needs the caller's connection (nil over HTTP)
	kindSubscribe
	kindUnsubscribe
	kindOperation // a chainHead operation: its events follow the reply
)

type builtin struct {
	kind methodKind
	fn   func(n *Node, p params) (any, *Error)                    // kindCall
	cfn  func(n *Node, c *wsConn, p params) (any, *Error)         // kindConnCall
	sub  *subSpec                                                 // kindSubscribe, kindUnsubscribe
	ofn  func(n *Node, c *wsConn, p params) (any, func(), *Error) // kindOperation
}

// builtins is the node's method table; builtinNames is its sorted key list.
var (
	builtins     = map[string]builtin{}
	builtinNames []string
)

const (
	chainName       = "Fake Dev"
	propertiesJSON  = `{"ss58Format":42,"tokenDecimals":12,"tokenSymbol":"UNIT"}`
	maxKeysPageSize = 1000 // Substrate's STORAGE_KEYS_PAGED_MAX_COUNT
)

func init() {
	calls := map[string]func(*Node, params) (any, *Error){
		// system
		"system_name":                  func(n *Node, _ params) (any, *Error) { return n.name, nil },
		"system_version":               constant(`"1.0.0"`),
		"system_chain":                 constant(`"` + chainName + `"`),
		"system_chainType":             constant(`"Development"`),
		"system_properties":            constant(propertiesJSON),
		"system_health":                func(n *Node, _ params) (any, *Error) { return json.RawMessage(n.healthJSON()), nil },
		"system_syncState":             (*Node).rpcSyncState,
		"system_accountNextIndex":      needParams(1, constant(`0`)),
		"system_peers":                 constant(`[]`),
		"system_localPeerId":           (*Node).rpcLocalPeerID,
		"system_localListenAddresses":  (*Node).rpcListenAddresses,
		"system_nodeRoles":             constant(`["Full"]`),
		"system_addReservedPeer":       needParams(1, constant(`null`)),
		"system_removeReservedPeer":    needParams(1, constant(`null`)),
		"system_reservedPeers":         constant(`[]`),
		"system_addLogFilter":          needParams(1, constant(`null`)),
		"system_resetLogFilter":        constant(`null`),
		"system_unstable_networkState": constant(`{"peerId":"` + fakePeerID + `","listenedAddresses":[],"externalAddresses":[],"connectedPeers":{},"notConnectedPeers":{},"peerset":{}}`),
		"system_dryRun":                needParams(1, constant(`"0x0000"`)), // Ok(Ok(())) SCALE-encoded
		"rpc_methods":                  (*Node).rpcMethods,

		// chain
		"chain_getHeader":        (*Node).rpcGetHeader,
		"chain_getBlock":         (*Node).rpcGetBlock,
		"chain_getBlockHash":     (*Node).rpcGetBlockHash,
		"chain_getHead":          (*Node).rpcGetBlockHash,
		"chain_getFinalizedHead": (*Node).rpcGetFinalizedHead,
		"chain_getFinalisedHead": (*Node).rpcGetFinalizedHead,

		// state
		"state_getMetadata":            (*Node).rpcGetMetadata,
		"state_getRuntimeVersion":      (*Node).rpcGetRuntimeVersion,
		"chain_getRuntimeVersion":      (*Node).rpcGetRuntimeVersion,
		"state_getStorage":             (*Node).rpcGetStorage,
		"state_getStorageAt":           (*Node).rpcGetStorage,
		"state_getStorageHash":         (*Node).rpcGetStorageHash,
		"state_getStorageHashAt":       (*Node).rpcGetStorageHash,
		"state_getStorageSize":         (*Node).rpcGetStorageSize,
		"state_getStorageSizeAt":       (*Node).rpcGetStorageSize,
		"state_queryStorageAt":         (*Node).rpcQueryStorageAt,
		"state_queryStorage":           (*Node).rpcQueryStorage,
		"state_getKeysPaged":           (*Node).rpcGetKeysPaged,
		"state_getKeysPagedAt":         (*Node).rpcGetKeysPaged,
		"state_getKeys":                (*Node).rpcGetKeys,
		"state_getPairs":               (*Node).rpcGetPairs,
		"state_call":                   (*Node).rpcStateCall,
		"state_callAt":                 (*Node).rpcStateCall,
		"state_getReadProof":           (*Node).rpcGetReadProof,
		"state_traceBlock":             needParams(1, constant(`{"traceError":{"error":"tracing is not supported by fakenode"}}`)),
		"childstate_getStorage":        needParams(2, constant(`null`)),
		"childstate_getStorageHash":    needParams(2, constant(`null`)),
		"childstate_getStorageSize":    needParams(2, constant(`null`)),
		"childstate_getKeys":           needParams(2, constant(`[]`)),
		"childstate_getKeysPaged":      needParams(3, constant(`[]`)),
		"childstate_getStorageEntries": needParams(2, constant(`[]`)),

		// author
		"author_submitExtrinsic":   (*Node).rpcSubmitExtrinsic,
		"author_pendingExtrinsics": func(n *Node, _ params) (any, *Error) { return n.chain.pendingExtrinsics(), nil },
		"author_removeExtrinsic":   needParams(1, constant(`[]`)),
		"author_insertKey":         needParams(3, constant(`null`)),
		"author_rotateKeys":        func(*Node, params) (any, *Error) { return randomHex(32), nil },
		"author_hasSessionKeys":    needParams(1, constant(`false`)),
		"author_hasKey":            needParams(2, constant(`false`)),

		// payment
		"payment_queryInfo":       needParams(1, constant(`{"weight":{"ref_time":125000000,"proof_size":1500},"class":"normal","partialFee":"1000000000"}`)),
		"payment_queryFeeDetails": needParams(1, constant(`{"inclusionFee":{"baseFee":"0x3b9aca00","lenFee":"0x5f5e100","adjustedWeightFee":"0x1dcd6500"},"tip":"0x0"}`)),

		// offchain (unsafe)
		"offchain_localStorageSet": (*Node).rpcOffchainSet,
		"offchain_localStorageGet": (*Node).rpcOffchainGet,

		// consensus
		"grandpa_roundState":    constant(`{"setId":0,"best":{"round":1,"totalWeight":1,"thresholdWeight":1,"prevotes":{"currentWeight":0,"missing":[]},"precommits":{"currentWeight":0,"missing":[]}},"background":[]}`),
		"grandpa_proveFinality": needParams(1, constant(`null`)),
		"babe_epochAuthorship":  constant(`{}`),

		// new JSON-RPC spec, the cheap parts
		"chainSpec_v1_chainName":   constant(`"` + chainName + `"`),
		"chainSpec_v1_genesisHash": func(n *Node, _ params) (any, *Error) { return n.chain.GenesisHash(), nil },
		"chainSpec_v1_properties":  constant(propertiesJSON),
		"transaction_v1_broadcast": (*Node).rpcTransactionBroadcast,
		"transaction_v1_stop":      (*Node).rpcTransactionStop,
		// The unstable names older polkadot-sdk nodes serve.
		"transaction_unstable_broadcast": (*Node).rpcTransactionBroadcast,
		"transaction_unstable_stop":      (*Node).rpcTransactionStop,

		// dev
		"dev_newBlock":      func(n *Node, _ params) (any, *Error) { return n.chain.NewBlockFinalized().Hash, nil },
		"dev_getBlockStats": (*Node).rpcBlockStats,
	}
	for name, fn := range calls {
		builtins[name] = builtin{kind: kindCall, fn: fn}
	}
	for name, fn := range connCalls {
		builtins[name] = builtin{kind: kindConnCall, cfn: fn}
	}
	for name, fn := range operationCalls {
		builtins[name] = builtin{kind: kindOperation, ofn: fn}
	}
	for i := range subSpecs {
		s := &subSpecs[i]
		for _, m := range s.subscribe {
			builtins[m] = builtin{kind: kindSubscribe, sub: s}
		}
		for _, m := range s.unsubscribe {
			builtins[m] = builtin{kind: kindUnsubscribe, sub: s}
		}
	}
	for name := range builtins {
		builtinNames = append(builtinNames, name)
	}
	sort.Strings(builtinNames)
}

// Methods returns the sorted names of every method the node serves.
func (n *Node) Methods() []string {
	names := slices.Clone(builtinNames)
	for name := range *n.handlers.Load() {
		if _, ok := builtins[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func constant(js string) func(*Node, params) (any, *Error) {
	if !json.Valid([]byte(js)) {
		panic("fakenode: invalid constant " + js)
	}
	raw := json.RawMessage(js)
	return func(*Node, params) (any, *Error) { return raw, nil }
}

// needParams rejects calls missing required parameters, as Substrate does.
func needParams(count int, fn func(*Node, params) (any, *Error)) func(*Node, params) (any, *Error) {
	return func(n *Node, p params) (any, *Error) {
		if len(p) < count {
			return nil, errInvalidParams(fmt.Sprintf("expected %d parameters, got %d", count, len(p)))
		}
		return fn(n, p)
	}
}

const fakePeerID = "12D3KooWFakeSubstrateNodeXXXXXXXXXXXXXXXXXXXXXXXXXXX"

func randomHex(size int) string {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(rand.UintN(256))
	}
	return "0x" + hex.EncodeToString(b)
}

var hashRE = regexp.MustCompile(`^0x[0-9a-fA-F]{64}$`)

// blockParam resolves optional block-hash parameter i: absent or null is
// the node's best block; a hash the node does not know (or not yet, when
// lagging) gives nil and the hash.
func (n *Node) blockParam(p params, i int) (*block, string, *Error) {
	best := n.viewBest.Load()
	if !p.has(i) {
		return best, best.hash(), nil
	}
	h, err := p.str(i)
	if err != nil {
		return nil, "", err
	}
	if !hashRE.MatchString(h) {
		return nil, h, errInvalidParams(fmt.Sprintf("invalid block hash %q", h))
	}
	b := n.chain.blockByHash(h)
	if b == nil || b.number() > best.number() {
		return nil, h, nil
	}
	return b, h, nil
}

// stateBlock is blockParam for state queries, which fail on unknown blocks
// with Substrate's client error (4003) instead of returning null.
func (n *Node) stateBlock(p params, i int) (*block, *Error) {
	b, h, err := n.blockParam(p, i)
	if err == nil && b == nil {
		err = &Error{Code: 4003, Message: "Client error: UnknownBlock: Header was not found in the database: " + strings.ToLower(h)}
	}
	return b, err
}

func (n *Node) rpcSyncState(params) (any, *Error) {
	cur := n.viewBest.Load().number()
	return json.RawMessage(fmt.Sprintf(`{"startingBlock":0,"currentBlock":%d,"highestBlock":%d}`,
		cur, max(cur, n.chain.bestBlock().number()))), nil
}

func (n *Node) rpcLocalPeerID(params) (any, *Error) { return fakePeerID, nil }

func (n *Node) rpcListenAddresses(params) (any, *Error) {
	return []string{"/ip4/127.0.0.1/tcp/30333/p2p/" + fakePeerID}, nil
}

func (n *Node) rpcMethods(params) (any, *Error) {
	return map[string][]string{"methods": n.Methods()}, nil
}

func (n *Node) rpcGetHeader(p params) (any, *Error) {
	b, _, err := n.blockParam(p, 0)
	if err != nil || b == nil {
		return nil, err
	}
	return b.json, nil
}

func (n *Node) rpcGetBlock(p params) (any, *Error) {
	b, _, err := n.blockParam(p, 0)
	if err != nil || b == nil {
		return nil, err
	}
	ext, _ := json.Marshal(b.extrinsics)
	return json.RawMessage(`{"block":{"header":` + string(b.json) + `,"extrinsics":` + string(ext) + `},"justifications":null}`), nil
}

// rpcGetBlockHash takes nothing/null (best), a number, a hex number string,
// or a list of those (then it returns a list); unknown numbers give null.
func (n *Node) rpcGetBlockHash(p params) (any, *Error) {
	if !p.has(0) {
		return n.viewBest.Load().hash(), nil
	}
	if p[0][0] != '[' {
		return n.hashOfNumber(p[0])
	}
	var list []json.RawMessage
	if err := json.Unmarshal(p[0], &list); err != nil {
		return nil, errInvalidParams(err.Error())
	}
	out := make([]any, len(list))
	for i, raw := range list {
		h, err := n.hashOfNumber(raw)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

func (n *Node) hashOfNumber(raw json.RawMessage) (any, *Error) {
	best := n.viewBest.Load()
	var num uint64
	switch {
	case string(raw) == "null":
		return best.hash(), nil
	case raw[0] == '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
		if err != nil || !strings.HasPrefix(s, "0x") {
			return nil, errInvalidParams(fmt.Sprintf("invalid block number %s", raw))
		}
		num = v
	default:
		if err := json.Unmarshal(raw, &num); err != nil {
			return nil, errInvalidParams(err.Error())
		}
	}
	if num > best.number() {
		return nil, nil
	}
	return n.chain.blockByNumber(num).hash(), nil
}

func (n *Node) rpcGetFinalizedHead(params) (any, *Error) {
	return n.viewFinalized.Load().hash(), nil
}

func (n *Node) rpcGetMetadata(p params) (any, *Error) {
	b, err := n.stateBlock(p, 0)
	if err != nil {
		return nil, err
	}
	return metadataJSON(n.chain.specAt(b.number())), nil
}

func (n *Node) rpcGetRuntimeVersion(p params) (any, *Error) {
	b, err := n.stateBlock(p, 0)
	if err != nil {
		return nil, err
	}
	return runtimeVersionJSON(n.chain.specAt(b.number())), nil
}

// storageQuery reads (key, hash?) and returns the value, if any.
func (n *Node) storageQuery(p params) (string, bool, *Error) {
	key, err := hexParam(p, 0)
	if err != nil {
		return "", false, err
	}
	b, err := n.stateBlock(p, 1)
	if err != nil {
		return "", false, err
	}
	v, ok := n.chain.storageAt(key, b.number())
	return v, ok, nil
}

func (n *Node) rpcGetStorage(p params) (any, *Error) {
	v, ok, err := n.storageQuery(p)
	if err != nil || !ok {
		return nil, err
	}
	return v, nil
}

func (n *Node) rpcGetStorageHash(p params) (any, *Error) {
	v, ok, err := n.storageQuery(p)
	if err != nil || !ok {
		return nil, err
	}
	return hashHex(v), nil
}

func (n *Node) rpcGetStorageSize(p params) (any, *Error) {
	v, ok, err := n.storageQuery(p)
	if err != nil || !ok {
		return nil, err
	}
	return (len(v) - 2) / 2, nil
}

func (n *Node) keysParam(p params, i int) ([]string, *Error) {
	var keys []string
	if err := p.decode(i, &keys); err != nil {
		return nil, err
	}
	for j, k := range keys {
		keys[j] = strings.ToLower(k)
	}
	return keys, nil
}

func (n *Node) changesAt(keys []string, b *block) [][2]any {
	changes := make([][2]any, len(keys))
	for i, k := range keys {
		changes[i] = [2]any{k, n.storageValue(k, b)}
	}
	return changes
}

func (n *Node) rpcQueryStorageAt(p params) (any, *Error) {
	keys, err := n.keysParam(p, 0)
	if err != nil {
		return nil, err
	}
	b, err := n.stateBlock(p, 1)
	if err != nil {
		return nil, err
	}
	return json.RawMessage("[" + string(storageChangeSet(b.hash(), n.changesAt(keys, b))) + "]"), nil
}

// rpcQueryStorage lists, for blocks from..to, the keys whose value changed
// (all keys for the first block).
func (n *Node) rpcQueryStorage(p params) (any, *Error) {
	keys, err := n.keysParam(p, 0)
	if err != nil {
		return nil, err
	}
	if !p.has(1) {
		return nil, errInvalidParams("missing parameter 1")
	}
	from, err := n.stateBlock(p, 1)
	if err != nil {
		return nil, err
	}
	to, err := n.stateBlock(p, 2)
	if err != nil {
		return nil, err
	}
	if to.number() < from.number() {
		return nil, &Error{Code: 4001, Message: fmt.Sprintf("Cannot resolve a block range ['%s' ... '%s]. from number > to number", from.hash(), to.hash())}
	}
	var sets []json.RawMessage
	prev := map[string]any{}
	for i, b := range n.chain.blockRange(from.number(), to.number()) {
		var changes [][2]any
		for _, k := range keys {
			v := n.storageValue(k, b)
			if old, seen := prev[k]; i == 0 || !seen || old != v {
				changes = append(changes, [2]any{k, v})
			}
			prev[k] = v
		}
		if i == 0 || len(changes) > 0 {
			if changes == nil {
				changes = [][2]any{}
			}
			sets = append(sets, storageChangeSet(b.hash(), changes))
		}
	}
	return sets, nil
}

func (n *Node) prefixParam(p params, i int) (string, *Error) {
	if !p.has(i) {
		return "", nil
	}
	s, err := p.str(i)
	return strings.ToLower(s), err
}

func (n *Node) rpcGetKeysPaged(p params) (any, *Error) {
	prefix, err := n.prefixParam(p, 0)
	if err != nil {
		return nil, err
	}
	var count uint32
	if err := p.decode(1, &count); err != nil {
		return nil, err
	}
	if count > maxKeysPageSize {
		return nil, &Error{Code: 4002, Message: fmt.Sprintf("count exceeds maximum value. value: %d, max: %d", count, maxKeysPageSize)}
	}
	start, err := n.prefixParam(p, 2)
	if err != nil {
		return nil, err
	}
	b, err := n.stateBlock(p, 3)
	if err != nil {
		return nil, err
	}
	keys := n.chain.keysAt(prefix, b.number())
	i := sort.Search(len(keys), func(i int) bool { return keys[i] > start })
	if start == "" {
		i = 0
	}
	keys = keys[i:]
	return keys[:min(len(keys), int(count))], nil
}

func (n *Node) rpcGetKeys(p params) (any, *Error) {
	prefix, err := n.prefixParam(p, 0)
	if err != nil {
		return nil, err
	}
	b, err := n.stateBlock(p, 1)
	if err != nil {
		return nil, err
	}
	return n.chain.keysAt(prefix, b.number()), nil
}

func (n *Node) rpcGetPairs(p params) (any, *Error) {
	prefix, err := n.prefixParam(p, 0)
	if err != nil {
		return nil, err
	}
	b, err := n.stateBlock(p, 1)
	if err != nil {
		return nil, err
	}
	keys := n.chain.keysAt(prefix, b.number())
	pairs := make([][2]any, len(keys))
	for i, k := range keys {
		pairs[i] = [2]any{k, n.storageValue(k, b)}
	}
	return pairs, nil
}

func (n *Node) rpcStateCall(p params) (any, *Error) {
	if _, err := p.str(0); err != nil {
		return nil, err
	}
	if _, err := hexParam(p, 1); err != nil {
		return nil, err
	}
	if _, err := n.stateBlock(p, 2); err != nil {
		return nil, err
	}
	return "0x", nil
}

func (n *Node) rpcGetReadProof(p params) (any, *Error) {
	if _, err := n.keysParam(p, 0); err != nil {
		return nil, err
	}
	b, err := n.stateBlock(p, 1)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(`{"at":"` + b.hash() + `","proof":[]}`), nil
}

func (n *Node) rpcSubmitExtrinsic(p params) (any, *Error) {
	ext, err := hexParam(p, 0)
	if err != nil {
		return nil, err
	}
	h, ok := n.chain.submit(ext)
	if !ok {
		return nil, errAlreadyImported()
	}
	return h, nil
}

func (n *Node) rpcOffchainSet(p params) (any, *Error) {
	var kind, key, value string
	for i, dst := range []*string{&kind, &key, &value} {
		if err := p.decode(i, dst); err != nil {
			return nil, err
		}
	}
	n.offchain.Store(kind+"/"+strings.ToLower(key), value)
	return nil, nil
}

func (n *Node) rpcOffchainGet(p params) (any, *Error) {
	var kind, key string
	for i, dst := range []*string{&kind, &key} {
		if err := p.decode(i, dst); err != nil {
			return nil, err
		}
	}
	if v, ok := n.offchain.Load(kind + "/" + strings.ToLower(key)); ok {
		return v, nil
	}
	return nil, nil
}

func (n *Node) rpcBlockStats(p params) (any, *Error) {
	b, _, err := n.blockParam(p, 0)
	if err != nil || b == nil {
		return nil, err
	}
	size := len(b.json)
	for _, e := range b.extrinsics {
		size += len(e) / 2
	}
	return map[string]int{"witnessLen": 0, "witnessCompactLen": 0, "blockLen": size, "numExtrinsics": len(b.extrinsics)}, nil
}
