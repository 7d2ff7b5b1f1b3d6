package matcher

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// followSub is a chainHead follow subscription whose reply the client has.
func followSub(t *testing.T, rec *recorder) *ClientSub {
	fam, _ := LookupSubscribe("chainHead_v1_follow")
	m := &Matcher{log: zap.NewNop()}
	t.Cleanup(m.wg.Wait)
	return &ClientSub{m: m, id: json.RawMessage(`"client"`), client: rec, family: fam, method: "chainHead_v1_follow", active: true}
}

// stopper records the operations stopped on the node.
type stopper chan string

func (st stopper) stop(id json.RawMessage) { st <- string(id) }

func (st stopper) want(t *testing.T, id string) {
	t.Helper()
	select {
	case got := <-st:
		if got != id {
			t.Fatalf("stopped %s, want %s", got, id)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("operation %s not stopped", id)
	}
}

func tracked(s *ClientSub) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ops)
}

func opEvent(event, id string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"event":%q,"operationId":%q}`, event, id))
}

// events lists the client's frames as "event/operationId".
func (r *recorder) events(t *testing.T) []string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, f := range r.frames {
		var n struct {
			Params struct {
				Result struct{ Event, OperationID, Error string }
			}
		}
		if err := json.Unmarshal(f, &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSuffix(n.Params.Result.Event+"/"+n.Params.Result.OperationID, "/"))
	}
	return out
}

func wantEvents(t *testing.T, rec *recorder, want ...string) {
	t.Helper()
	if got := rec.events(t); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("client got  %v\nwant %v", got, want)
	}
}

const started = `{"result":"started","operationId":"op1"}`

func TestOperationEventsWaitForTheReply(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, s *ClientSub, rec *recorder, st stopper)
	}{
		{"held until the reply is out, then in order, later ones at once", func(t *testing.T, s *ClientSub, rec *recorder, st stopper) {
			op := s.NewOperation(st.stop)
			op.Replied(json.RawMessage(started))
			s.Notify("chainHead_v1_followEvent", opEvent("operationStorageItems", "op1"))
			s.Notify("chainHead_v1_followEvent", json.RawMessage(`{"event":"bestBlockChanged","bestBlockHash":"0x01"}`))
			s.Notify("chainHead_v1_followEvent", opEvent("operationWaitingForContinue", "op1"))
			wantEvents(t, rec, "bestBlockChanged")
			op.Release()
			wantEvents(t, rec, "bestBlockChanged", "operationStorageItems/op1", "operationWaitingForContinue/op1")
			s.Notify("chainHead_v1_followEvent", opEvent("operationStorageDone", "op1"))
			wantEvents(t, rec, "bestBlockChanged", "operationStorageItems/op1", "operationWaitingForContinue/op1", "operationStorageDone/op1")
		}},
		{"limitReached and errors hold nothing", func(t *testing.T, s *ClientSub, rec *recorder, st stopper) {
			for _, reply := range []string{`{"result":"limitReached"}`, `null`, `"junk"`} {
				op := s.NewOperation(st.stop)
				op.Replied(json.RawMessage(reply))
				s.Notify("chainHead_v1_followEvent", opEvent("operationCallDone", "other"))
				op.Release()
			}
			wantEvents(t, rec, "operationCallDone/other", "operationCallDone/other", "operationCallDone/other")
		}},
		{"other operations are not held", func(t *testing.T, s *ClientSub, rec *recorder, st stopper) {
			op := s.NewOperation(st.stop)
			op.Replied(json.RawMessage(started))
			s.Notify("chainHead_v1_followEvent", opEvent("operationBodyDone", "op0"))
			wantEvents(t, rec, "operationBodyDone/op0")
			op.Release()
		}},
		{"over the bound: held ones, operationError, then nothing; stopped", func(t *testing.T, s *ClientSub, rec *recorder, st stopper) {
			op := s.NewOperation(st.stop)
			op.Replied(json.RawMessage(started))
			for range maxHeldPerOperation + 10 {
				s.Notify("chainHead_v1_followEvent", opEvent("operationStorageItems", "op1"))
			}
			op.Release()
			s.Notify("chainHead_v1_followEvent", opEvent("operationStorageItems", "op1"))
			st.want(t, `"op1"`)
			want := make([]string, maxHeldPerOperation, maxHeldPerOperation+1)
			for i := range want {
				want[i] = "operationStorageItems/op1"
			}
			wantEvents(t, rec, append(want, "operationError/op1")...)
			s.m.wg.Wait()
			if tracked(s) != 0 || s.opsHeld.Load() != 0 {
				t.Fatalf("%d operations still tracked", tracked(s))
			}
		}},
		{"a reply after the caller gave up: nothing reaches the client, the operation is stopped", func(t *testing.T, s *ClientSub, rec *recorder, st stopper) {
			op := s.NewOperation(st.stop)
			op.Release() // the client was told the call failed
			op.Replied(json.RawMessage(started))
			s.Notify("chainHead_v1_followEvent", opEvent("operationWaitingForContinue", "op1"))
			st.want(t, `"op1"`)
			s.m.wg.Wait()
			wantEvents(t, rec)
			if tracked(s) != 0 {
				t.Fatalf("%d operations still tracked", tracked(s))
			}
		}},
		{"a subscription that ended sends nothing", func(t *testing.T, s *ClientSub, rec *recorder, st stopper) {
			op := s.NewOperation(st.stop)
			op.Replied(json.RawMessage(started))
			s.Notify("chainHead_v1_followEvent", opEvent("operationBodyDone", "op1"))
			s.mu.Lock()
			s.ended = true
			s.mu.Unlock()
			op.Release()
			wantEvents(t, rec)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			tc.run(t, followSub(t, rec), rec, make(stopper)) // a stop lasts until the test takes it
		})
	}
}
