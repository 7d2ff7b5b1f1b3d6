package suber_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
)

// CallThen's onReply runs before the reader delivers anything the node sent
// after the reply: the fake node sends a chainHead operation's event right
// behind its "started" reply, and onReply must always see it still to come.
func TestCallThenRunsBeforeLaterNotifications(t *testing.T) {
	fake := fakenode.Start(t)
	hash := fake.Chain().Best().Hash
	n := startNode(t, fake.URL(), fastOptions(1))
	sink := newSink(t)
	sub, err := n.Subscribe(ctxTimeout(t, 5*time.Second), "chainHead_v1_follow", json.RawMessage(`[false]`), "chainHead_v1_unfollow", sink)
	if err != nil {
		t.Fatal(err)
	}
	waitNotes(t, sink, 1) // initialized
	params := json.RawMessage(`[` + string(sub.ID()) + `,"` + hash + `"]`)

	const ops = 50
	var mu sync.Mutex
	seenAtReply := map[string]int{} // operation id -> notifications delivered when onReply ran
	var wg sync.WaitGroup
	for range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var id string
			result, err := sub.CallThen(ctxTimeout(t, 5*time.Second), "chainHead_v1_body", params, func(result json.RawMessage) {
				var r struct{ OperationID string }
				_ = json.Unmarshal(result, &r)
				id = r.OperationID
				mu.Lock()
				seenAtReply[id] = len(sink.Notes())
				mu.Unlock()
			})
			if err != nil || id == "" || !strings.Contains(string(result), `"operationId":"`+id+`"`) {
				t.Errorf("CallThen: %s, %v (onReply saw %q)", result, err, id)
			}
		}()
	}
	wg.Wait()
	notes := waitNotes(t, sink, 1+ops)
	for i, note := range notes[1:] {
		var ev struct{ Event, OperationID string }
		_ = json.Unmarshal(note.result, &ev)
		at, ok := seenAtReply[ev.OperationID]
		if ev.Event != "operationBodyDone" || !ok {
			t.Fatalf("unexpected notification %s", note.result)
		}
		if at > i+1 {
			t.Fatalf("operation %s: its event was delivered before onReply ran", ev.OperationID)
		}
	}

	// A reply that is an error reaches no onReply.
	called := false
	bad := json.RawMessage(`[` + string(sub.ID()) + `,"0x` + strings.Repeat("ee", 32) + `"]`)
	if _, err := sub.CallThen(ctxTimeout(t, 5*time.Second), "chainHead_v1_body", bad, func(json.RawMessage) { called = true }); err == nil || called {
		t.Fatalf("unknown block: err %v, onReply called %v", err, called)
	}
	sink.check()
}
