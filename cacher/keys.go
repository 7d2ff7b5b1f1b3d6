package cacher

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
)

// maxKeyParams is the longest params text kept verbatim in a key; longer
// params (state_call data, long key lists) are replaced by their SHA-256.
const maxKeyParams = 256

var nullJSON = []byte("null")

// splitParams returns the elements of array params with trailing nulls
// removed, so `[]`, absent params and `["0x..", null]` vs `["0x.."]` read
// alike. ok is false for params that are not an array (named params are
// passed through uncached).
func splitParams(p json.RawMessage) (elems []json.RawMessage, ok bool) {
	p = bytes.TrimSpace(p)
	if len(p) == 0 || bytes.Equal(p, nullJSON) {
		return nil, true
	}
	if p[0] != '[' {
		return nil, false
	}
	if err := json.Unmarshal(p, &elems); err != nil {
		return nil, false
	}
	for len(elems) > 0 && bytes.Equal(bytes.TrimSpace(elems[len(elems)-1]), nullJSON) {
		elems = elems[:len(elems)-1]
	}
	return elems, true
}

// joinParams encodes elements as a compact JSON array. Elements come from
// compact params, so the result is canonical for them.
func joinParams(elems []json.RawMessage) json.RawMessage {
	n := 2
	for _, e := range elems {
		n += len(e) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, e := range elems {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, e...)
	}
	return append(out, ']')
}

// withHash returns elems with the block hash at pos, padding the optional
// params before it with null.
func withHash(elems []json.RawMessage, pos int, hash string) []json.RawMessage {
	out := make([]json.RawMessage, max(len(elems), pos+1))
	copy(out, elems)
	for i := len(elems); i < pos; i++ {
		out[i] = nullJSON
	}
	out[pos] = json.RawMessage(strconv.Quote(hash))
	return out
}

// isBlockHash reports whether raw is a JSON string holding a 32-byte hex
// hash, the only form a node accepts for a block hash.
func isBlockHash(raw json.RawMessage) bool {
	if len(raw) != 68 || raw[0] != '"' || raw[67] != '"' || raw[1] != '0' || (raw[2] != 'x' && raw[2] != 'X') {
		return false
	}
	for _, c := range raw[3:67] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Key scopes: what makes an entry right.
const (
	scopeBlock    = "h"  // immutable: the params name a block hash or a finalized number
	scopeRuntime  = "rt" // + spec version: constants of one runtime
	scopeTTL      = "t"  // configured TTL only
	keySeparator  = ":"
	hashedPrefix  = "#"
	genesisTagLen = 16
)

// buildKey makes a store key. Chain names and method names contain no ':'
// and params (JSON arrays) never start with '#', so keys of different
// calls never coincide: `[12]` and `[1,2]` are different params texts.
// chainID is the chain's name and genesis tag.
func buildKey(chainID, scope, method string, params json.RawMessage) string {
	var b strings.Builder
	b.Grow(len(chainID) + len(scope) + len(method) + min(len(params), maxKeyParams) + 8)
	b.WriteString(chainID)
	b.WriteString(keySeparator)
	b.WriteString(scope)
	b.WriteString(keySeparator)
	b.WriteString(method)
	b.WriteString(keySeparator)
	if len(params) > maxKeyParams {
		sum := sha256.Sum256(params)
		b.WriteString(hashedPrefix)
		b.WriteString(hex.EncodeToString(sum[:]))
	} else {
		b.Write(params)
	}
	return b.String()
}

// chainID names a chain in keys: its configured name and the start of its
// genesis hash, so two deployments sharing a Redis with the same chain
// name for different networks cannot read each other's entries.
func chainID(name, genesis string) string {
	g := strings.TrimPrefix(strings.ToLower(genesis), "0x")
	if len(g) > genesisTagLen {
		g = g[:genesisTagLen]
	}
	return name + keySeparator + g
}
