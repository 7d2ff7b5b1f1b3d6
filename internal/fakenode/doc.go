// Package fakenode is an in-process fake Substrate (Polkadot SDK) JSON-RPC
// node for the gateway's tests and benchmarks.
//
// A Node listens on 127.0.0.1 on a free port and, like a real node built on
// jsonrpsee, serves WebSocket (upgrade on any path) and HTTP POST JSON-RPC on
// the same port. It answers the legacy Substrate RPC API (system_*, chain_*,
// state_*, author_*, ... including the "unsafe" methods, so that gateway
// tests can check that they are blocked) using Substrate's wire shapes: hex
// block numbers in headers, 16-character random string subscription ids, the
// {"subscription","result"} notification envelope and jsonrpsee's error codes.
// Of the new JSON-RPC spec it serves chainSpec_v1_*, chainHead_v1_follow,
// unfollow, header, unpin, body, call, storage, continue and stopOperation
// (follow subscriptions are scoped to their connection; see chainhead.go) and transaction_v1_broadcast/stop.
//
// Block state lives in a Chain, which several Nodes may share so that they
// agree on hashes. Tests drive the chain explicitly (NewBlock, Finalize,
// SetStorage, SetRuntimeVersion) instead of a block timer, which keeps them
// deterministic.
//
// On top of that a Node injects, on demand, faults that a real node only
// shows by accident: delayed, dropped or reordered replies (SetDelay,
// SetDrop, SetReorder), notifications sent before the subscribe reply
// (SetEarlyNotifications), abrupt disconnects (DisconnectAll,
// SetDisconnectOn), stop/restart on the same port (Stop, Restart), a node
// lagging behind its chain (SetFollow) and arbitrary frames (SendRaw). Handle
// replaces or adds a method. Counters (Calls, LastRequest,
// ActiveSubscriptions, Connections) show what a gateway actually sent.
//
// Over HTTP, subscribe and unsubscribe methods fail with -32603 "Internal
// error", as they do on a jsonrpsee server; JSON-RPC notifications (requests
// without an id) are neither executed nor answered.
//
// Every method of Chain and Node is safe for concurrent use.
package fakenode
