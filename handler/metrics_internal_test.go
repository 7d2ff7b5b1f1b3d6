package handler

import (
	"context"
	"testing"
	"time"

	"github.com/elara-gateway/elara/jsonrpc"
)

// Counting a call allocates nothing once its label children exist: the
// hot path pays no per-call cost for labels.
func TestRecordingACallDoesNotAllocate(t *testing.T) {
	s := statsFor(defaultClientMetrics(), "allocsdev")
	ctx := context.Background()
	cases := []struct {
		name, method string
		transport    int
		outcome      uint8
	}{
		{"known method over http", "state_getStorage", transportHTTP, outOK},
		{"unknown method over websocket", "no_suchMethod", transportWS, outNotFound},
		{"denied", "author_rotateKeys", transportWS, outDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.record(ctx, tc.transport, tc.method, tc.outcome, time.Millisecond) // resolves the children
			if n := testing.AllocsPerRun(100, func() {
				s.record(ctx, tc.transport, tc.method, tc.outcome, time.Millisecond)
			}); n != 0 {
				t.Fatalf("%v allocations per call", n)
			}
		})
	}
}

// Every table of method names the gateway keeps feeds the one label list,
// and invented names are all "other".
func TestKnownMethodsLabelList(t *testing.T) {
	cases := []struct {
		method string
		known  bool
	}{
		{"state_getMetadata", true},       // the cache's rules
		{"chain_subscribeNewHeads", true}, // the subscription table
		{"chain_unsubscribeNewHeads", true},
		{"author_rotateKeys", true}, // the unsafe list
		{"author_submitExtrinsic", true},
		{"chainHead_v1_header", true},
		{"transaction_v1_broadcast", true},
		{"sudo_anything", false}, // a wildcard entry names no method
		{"no_suchMethod", false},
		{"", false},
	}
	for _, tc := range cases {
		if got := methodSlot(tc.method) != 0; got != tc.known {
			t.Errorf("%q known=%v, want %v", tc.method, got, tc.known)
		}
	}
	if knownMethods[0] != otherMethod {
		t.Fatalf("slot 0 is %q, want %q", knownMethods[0], otherMethod)
	}
}

// Every error a client can get maps to one of the bounded outcomes.
func TestOutcomeLabels(t *testing.T) {
	cases := []struct {
		err  *jsonrpc.Error
		want string
	}{
		{nil, "ok"},
		{jsonrpc.NewError(jsonrpc.CodeUpstreamTimeout, "x"), "timeout"},
		{jsonrpc.NewError(jsonrpc.CodeUpstreamUnavailable, "x"), "no_node"},
		{jsonrpc.NewError(jsonrpc.CodeLimitExceeded, "x"), "limited"},
		{jsonrpc.NewError(jsonrpc.CodeParseError, "x"), "-32700"},
		{jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "x"), "-32600"},
		{jsonrpc.ErrMethodNotFound, "-32601"},
		{jsonrpc.NewError(jsonrpc.CodeInvalidParams, "x"), "-32602"},
		{jsonrpc.NewError(jsonrpc.CodeInternalError, "x"), "-32603"},
		{jsonrpc.ErrSubscriptionsOnHTTP, "-32090"},
		{jsonrpc.NewError(1010, "Invalid Transaction"), "error"},
		{jsonrpc.NewError(-32801, "Invalid block"), "error"},
	}
	for _, tc := range cases {
		if got := outcomeNames[outcomeOf(tc.err)]; got != tc.want {
			t.Errorf("%v: outcome %q, want %q", tc.err, got, tc.want)
		}
	}
}
