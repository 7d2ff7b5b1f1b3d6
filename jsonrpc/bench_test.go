package jsonrpc_test

import (
	"testing"

	"github.com/elara-gateway/elara/jsonrpc"
)

// A typical polkadot.js call, as one WebSocket frame.
var typicalCall = []byte(`{"id":42,"jsonrpc":"2.0","method":"state_getStorage","params":["0x26aa394eea5630e07c48ae0c9558cef7b99d880ec681799c0cf30e8886371da9de1e86a9a8c739864cf3cc5ec2bea59fd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"]}`)

func BenchmarkParseRequest(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c := jsonrpc.ParseRequest(typicalCall, 64)
		if c.Request == nil {
			b.Fatal(c.Err)
		}
	}
}

func BenchmarkAppendResult(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 512)
	id, result := []byte(`42`), []byte(`"0x0000000000000000000000000000000000000000000000000000000000000000"`)
	for b.Loop() {
		buf = jsonrpc.AppendResult(buf[:0], id, result)
	}
}
