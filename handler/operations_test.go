package handler_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// orderedFrame is one frame a client read, with what the order check needs.
type orderedFrame struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code int `json:"code"`
	} `json:"error"`
	Params struct {
		Result struct {
			Event       string `json:"event"`
			OperationID string `json:"operationId"`
			Value       []string
			Output      string
			Items       []struct{ Key, Value string }
		} `json:"result"`
	} `json:"params"`
	raw []byte
}

// The spec puts an operation's reply ({"result":"started"}) before any of
// its events. The fake node sends the events right behind the reply, and
// hundreds of operations run at once on one follow subscription, alone and
// in batches, mixed with answers that start nothing (limitReached, errors):
// the client must see every started operation's reply first, then all its
// events, and no event of an operation it was never told of.
func TestChainHeadOperationEventsFollowTheirReply(t *testing.T) {
	node := fakenode.Start(t)
	const key, value = "0x0a0b", "0xc0ffee"
	node.Chain().SetStorage(key, value)
	gw := testgw.Start(t, chainBlock("dev", failoverOpts, node.URL()), "\telara_rpc")
	waitReady(t, gw, 1)
	if r := testgw.PostCall(t, gw.HTTP("/dev"), "author_submitExtrinsic", []string{"0x0102"}); r.Error != nil {
		t.Fatalf("submit: %s", r.Raw)
	}
	block := node.Chain().NewBlockFinalized()
	// Every 7th operation answers limitReached.
	node.LimitOperations(7)

	conn, _, err := websocket.DefaultDialer.Dial(gw.WS("/dev"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	frames := make(chan orderedFrame, 4096)
	go func() {
		defer close(frames)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var batch []json.RawMessage
			if json.Unmarshal(data, &batch) != nil {
				batch = []json.RawMessage{data}
			}
			for _, one := range batch {
				f := orderedFrame{raw: one}
				if err := json.Unmarshal(one, &f); err != nil {
					t.Errorf("undecodable frame %s: %v", one, err)
				}
				frames <- f
			}
		}
	}()
	var wmu sync.Mutex
	write := func(s string) {
		wmu.Lock()
		defer wmu.Unlock()
		if err := conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Error(err)
		}
	}
	next := func() orderedFrame {
		t.Helper()
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatal("connection closed")
			}
			return f
		case <-time.After(10 * time.Second):
			t.Fatal("nothing received within 10s")
		}
		return orderedFrame{}
	}
	write(`{"jsonrpc":"2.0","id":"follow","method":"chainHead_v1_follow","params":[false]}`)
	var sub string
	for sub == "" {
		if f := next(); string(f.ID) == `"follow"` {
			if json.Unmarshal(f.Result, &sub) != nil {
				t.Fatalf("follow: %s", f.raw)
			}
		}
	}

	// Each kind of operation, and the event that ends it with what it
	// must carry.
	kinds := []struct {
		name   string
		method string
		params string
		check  func(f orderedFrame) string // "" when the final event is right
	}{
		{"body", "chainHead_v1_body", `[%q,%q]`, func(f orderedFrame) string {
			if f.Params.Result.Event != "operationBodyDone" || strings.Join(f.Params.Result.Value, ",") != "0x0102" {
				return "want operationBodyDone with [0x0102]"
			}
			return ""
		}},
		{"call", "chainHead_v1_call", `[%q,%q,"Core_version","0x"]`, func(f orderedFrame) string {
			if f.Params.Result.Event != "operationCallDone" || f.Params.Result.Output != "0x" {
				return "want operationCallDone with output 0x"
			}
			return ""
		}},
		{"storage", "chainHead_v1_storage", `[%q,%q,[{"key":"` + key + `","type":"value"}],null]`, nil},
	}
	const rounds = 100 // 300 operations, a third of them in batches
	type op struct {
		kind    int
		badHash bool
	}
	ops := map[string]op{}
	var requests []string
	for i := range rounds * len(kinds) {
		k := i % len(kinds)
		hash := block.Hash
		bad := i%11 == 5
		if bad {
			hash = "0x" + strings.Repeat("ee", 32)
		}
		id := fmt.Sprint(i + 1)
		ops[id] = op{kind: k, badHash: bad}
		requests = append(requests, fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":%q,"params":%s}`,
			id, kinds[k].method, fmt.Sprintf(kinds[k].params, sub, hash)))
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(requests); i += 4 {
				if w == 3 && i+4 < len(requests) {
					write("[" + requests[i] + "," + requests[i+4] + "]")
					i += 4
					continue
				}
				write(requests[i])
			}
		}()
	}
	wg.Wait()

	started := map[string]int{}   // operation id -> kind
	finished := map[string]bool{} // operation ids whose last event came
	items := map[string]string{}  // storage operation id -> value seen
	var replies, limited, failed int
	for replies < len(ops) || len(finished) < len(started) {
		f := next()
		if f.Method == "" {
			o, ok := ops[string(f.ID)]
			if !ok {
				t.Fatalf("reply to an unknown id: %s", f.raw)
			}
			replies++
			var r struct{ Result, OperationID string }
			switch {
			case o.badHash:
				if f.Error == nil {
					t.Fatalf("unknown block: want an error, got %s", f.raw)
				}
				failed++
			case f.Error != nil || json.Unmarshal(f.Result, &r) != nil:
				t.Fatalf("operation failed: %s", f.raw)
			case r.Result == "limitReached":
				limited++
			case r.Result == "started" && r.OperationID != "":
				started[r.OperationID] = o.kind
			default:
				t.Fatalf("unexpected reply %s", f.raw)
			}
			continue
		}
		ev := f.Params.Result
		if ev.OperationID == "" {
			continue // a follow event
		}
		k, ok := started[ev.OperationID]
		switch {
		case !ok:
			t.Fatalf("event before its operation's reply: %s", f.raw)
		case finished[ev.OperationID]:
			t.Fatalf("event after the operation's last one: %s", f.raw)
		case kinds[k].name == "storage" && ev.Event == "operationStorageItems":
			if len(ev.Items) != 1 || ev.Items[0].Key != key || ev.Items[0].Value != value {
				t.Fatalf("storage items %s", f.raw)
			}
			items[ev.OperationID] = ev.Items[0].Value
		case kinds[k].name == "storage":
			if ev.Event != "operationStorageDone" || items[ev.OperationID] != value {
				t.Fatalf("want operationStorageDone after the item, got %s", f.raw)
			}
			finished[ev.OperationID] = true
		default:
			if msg := kinds[k].check(f); msg != "" {
				t.Fatalf("%s: %s", msg, f.raw)
			}
			finished[ev.OperationID] = true
		}
	}
	if limited == 0 || failed == 0 || len(started) < len(ops)/2 {
		t.Fatalf("mix not exercised: %d started, %d limitReached, %d errors", len(started), limited, failed)
	}
	// Nothing more comes: limitReached and failed calls started nothing.
	select {
	case f, ok := <-frames:
		if ok && f.Params.Result.OperationID != "" {
			t.Fatalf("event of no operation: %s", f.raw)
		}
	case <-time.After(200 * time.Millisecond):
	}
}

// A node that answers after the gateway gave up (request_timeout 2s) starts
// an operation the client was told failed: the client hears nothing of it,
// and the gateway stops it so it holds no place on the node.
func TestChainHeadOperationStartedTooLateIsStopped(t *testing.T) {
	node := fakenode.Start(t)
	gw := testgw.Start(t, chainBlock("dev", failoverOpts, node.URL()), "\telara_rpc")
	waitReady(t, gw, 1)
	c := testgw.Dial(t, gw.WS("/dev"))
	follow := c.Subscribe("chainHead_v1_follow", []bool{false})
	c.Next(5 * time.Second) // initialized
	node.SetDelay("chainHead_v1_storage", 3*time.Second)
	r := c.Call("chainHead_v1_storage", []any{json.RawMessage(follow), node.Chain().Best().Hash, []map[string]string{{"key": "0x00", "type": "value"}}, nil})
	if r.ErrCode() != -32001 {
		t.Fatalf("want the gateway's timeout, got %s", r.Raw)
	}
	waitFor(t, "chainHead_v1_stopOperation on the node", func() bool { return node.Calls("chainHead_v1_stopOperation") == 1 })
	c.NoNotification(200 * time.Millisecond)
	// The subscription still works.
	node.SetDelay("chainHead_v1_storage", 0)
	r = c.Call("chainHead_v1_storage", []any{json.RawMessage(follow), node.Chain().Best().Hash, []map[string]string{{"key": "0x00", "type": "value"}}, nil})
	if r.Error != nil || !strings.Contains(string(r.Result), `"started"`) {
		t.Fatalf("storage: %s", r.Raw)
	}
	if ev := c.Next(5 * time.Second); !strings.Contains(string(ev.Params.Result), `"operationStorageDone"`) {
		t.Fatalf("want operationStorageDone, got %s", ev.Raw)
	}
}
