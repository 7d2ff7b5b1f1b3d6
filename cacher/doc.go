// Package cacher answers Substrate JSON-RPC calls from a cache and keeps
// that cache right as the chain moves.
//
// A Cache serves one chain. It sorts every call by the rules of its method
// (rules.go):
//
//   - constants of the runtime (metadata, runtime version, node identity)
//     are cached under the runtime's spec version, so a runtime upgrade
//     switches to new keys instead of serving old metadata; the spec
//     version only goes up, and the runtime's metadata and version are
//     fetched at a block known to run it, never from a node still behind
//     the upgrade (runtime.go);
//   - calls about the latest block (chain_getHeader() and friends) are
//     answered from entries the suducer refreshes on every new head;
//   - calls that name a block hash are immutable and cached by hash; calls
//     that omit their optional hash are pinned to the current head hash,
//     both for the key and for the upstream call, so answer and key agree;
//   - everything else (errors, null results, author_*, unfinalized block
//     numbers, methods marked nocache) goes straight to a node.
//
// Entries live in a Store: in process memory (LRU bounded by bytes, with a
// per-method share) or in Redis, which several gateways can share. A Store
// failure is only ever a miss: clients are answered by the nodes. The
// latest-block entries are the exception: each gateway's suducer refreshes
// them on every head anyway, so they stay in its memory, where the
// hottest calls cost no Redis round trip and their age is known exactly.
//
// Keys are "<chain>:<genesis prefix>:<scope>:<method>:<params>", params
// being the compact JSON array with trailing nulls removed (SHA-256 of it
// past 256 bytes); the Redis store puts its prefix in front.
//
// The suducer (suducer.go) follows new heads, finalized heads and runtime
// versions through upstream subscriptions, and polls only what the
// subscriptions leave quiet. Its loops run between Start and Stop.
package cacher
