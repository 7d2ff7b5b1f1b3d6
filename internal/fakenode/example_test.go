package fakenode_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
)

func Example() {
	// In a test: n := fakenode.Start(t) closes the node in t.Cleanup.
	n, err := fakenode.New(fakenode.WithName("alice"))
	if err != nil {
		panic(err)
	}
	defer n.Close()

	// Point the gateway at n.URL() (WebSocket) or n.HTTPURL(), then drive
	// the chain and inject faults as the test needs.
	n.SetDelay("state_getMetadata", 200*time.Millisecond)
	n.Chain().NewBlockFinalized()

	resp, err := http.Post(n.HTTPURL(), "application/json",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"system_name","params":[]}`))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	fmt.Println(n.Calls("system_name"), n.Chain().Best().Number)
	// Output:
	// {"jsonrpc":"2.0","id":1,"result":"alice"}
	// 1 2
}
