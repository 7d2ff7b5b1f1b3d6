package suber_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/suber"
)

// The node's health monitor holds its own chain_subscribeNewHeads and
// chain_subscribeFinalizedHeads subscriptions; tests use all-heads
// subscriptions so the node's counters show only their own.
const (
	newHeads   = "chain_subscribeAllHeads"
	unNewHeads = "chain_unsubscribeAllHeads"
	headNote   = "chain_allHead"
)

func subscribe(t *testing.T, n interface {
	Subscribe(context.Context, string, json.RawMessage, string, suber.Sink) (*suber.Subscription, error)
}, sink suber.Sink) *suber.Subscription {
	t.Helper()
	sub, err := n.Subscribe(ctxTimeout(t, 5*time.Second), newHeads, nil, unNewHeads, sink)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return sub
}

// waitNotes waits until sink holds at least count notifications.
func waitNotes(t *testing.T, sink *recSink, count int) []noteRec {
	t.Helper()
	waitFor(t, 3*time.Second, fmt.Sprintf("%d notifications", count), func() bool { return len(sink.Notes()) >= count })
	return sink.Notes()
}

func TestSubscribeNotificationsInOrder(t *testing.T) {
	for _, early := range []bool{false, true} {
		t.Run(fmt.Sprintf("early=%v", early), func(t *testing.T) {
			fake := fakenode.Start(t)
			fake.SetEarlyNotifications(early)
			chain := fake.Chain()
			chain.NewBlock()
			chain.NewBlock()
			best := chain.Best().Number
			n := startNode(t, fake.URL(), fastOptions(2))
			sink := newSink(t)
			sub := subscribe(t, n, sink)
			if id := sub.ID(); len(id) < 2 || id[0] != '"' {
				t.Errorf("ID() = %s, want the node's string id", id)
			}
			if sub.Node() != n {
				t.Error("Node() is not the node that made the subscription")
			}
			if early {
				// The first notification came before the reply: it must
				// already be in the sink when Subscribe returns.
				if got := sink.Notes(); len(got) == 0 {
					t.Fatal("the early notification was not delivered by the time Subscribe returned")
				}
			}
			const more = 20
			for range more {
				chain.NewBlock()
			}
			notes := waitNotes(t, sink, more+1)
			if len(notes) != more+1 {
				t.Fatalf("%d notifications, want %d", len(notes), more+1)
			}
			for i, nr := range notes {
				if nr.method != headNote {
					t.Errorf("notification %d method %q", i, nr.method)
				}
				if got := headNumber(t, nr.result); got != best+uint64(i) {
					t.Errorf("notification %d is block %d, want %d (lost or out of order)", i, got, best+uint64(i))
				}
			}
			if res, err := sub.Unsubscribe(ctxTimeout(t, 5*time.Second)); err != nil || string(res) != "true" {
				t.Errorf("Unsubscribe = %s, %v", res, err)
			}
			sink.check()
		})
	}
}

func TestSubscribeManyEarlyNoCrossTalk(t *testing.T) {
	fake := fakenode.Start(t)
	fake.SetEarlyNotifications(true)
	chain := fake.Chain()
	chain.SetStorage("0x01", "0xaa")
	chain.SetStorage("0x02", "0xbb")
	n := startNode(t, fake.URL(), fastOptions(2))
	const subs = 40
	var wg sync.WaitGroup
	errs := make(chan error, subs)
	sinks := make([]*recSink, subs)
	for i := range subs {
		sinks[i] = newSink(t)
		wg.Go(func() {
			key := []string{"0x01", "0x02"}[i%2]
			want := []string{"0xaa", "0xbb"}[i%2]
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			sub, err := n.Subscribe(ctx, "state_subscribeStorage", json.RawMessage(`[["`+key+`"]]`), "state_unsubscribeStorage", sinks[i])
			if err != nil {
				errs <- fmt.Errorf("sub %d: %w", i, err)
				return
			}
			notes := sinks[i].Notes()
			if len(notes) != 1 {
				errs <- fmt.Errorf("sub %d: %d notifications when Subscribe returned, want the 1 early one", i, len(notes))
				return
			}
			if !strings.Contains(string(notes[0].result), `["`+key+`","`+want+`"]`) {
				errs <- fmt.Errorf("sub %d (key %s) got another subscription's notification: %s", i, key, notes[0].result)
			}
			if res, err := sub.Unsubscribe(ctx); err != nil || string(res) != "true" {
				errs <- fmt.Errorf("sub %d: Unsubscribe = %s, %v", i, res, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitFor(t, 3*time.Second, "no subscriptions left on the node", func() bool { return fake.ActiveSubscriptions("state_subscribeStorage") == 0 })
	for _, s := range sinks {
		s.check()
	}
}

func TestUnsubscribeTrueThenFalse(t *testing.T) {
	fake := fakenode.Start(t)
	n := startNode(t, fake.URL(), fastOptions(1))
	sink := newSink(t)
	sub := subscribe(t, n, sink)
	waitNotes(t, sink, 1)
	if got := fake.ActiveSubscriptions(newHeads); got != 1 {
		t.Fatalf("node has %d subscriptions", got)
	}
	for i, want := range []string{"true", "false", "false"} {
		res, err := sub.Unsubscribe(ctxTimeout(t, 5*time.Second))
		if err != nil || string(res) != want {
			t.Errorf("Unsubscribe #%d = %s, %v; want %s", i+1, res, err, want)
		}
	}
	if got := fake.ActiveSubscriptions(newHeads); got != 0 {
		t.Errorf("node still has %d subscriptions", got)
	}
	if got := fake.Calls(unNewHeads); got != 1 {
		t.Errorf("node saw %d unsubscribe calls, want exactly 1", got)
	}
	// Nothing more reaches the sink, and it is not told it was lost.
	before := len(sink.Notes())
	fake.Chain().NewBlock()
	fake.DisconnectAll()
	time.Sleep(50 * time.Millisecond)
	if got := len(sink.Notes()); got != before {
		t.Errorf("%d notifications after Unsubscribe", got-before)
	}
	if lost := sink.LostErrs(); len(lost) != 0 {
		t.Errorf("Lost(%v) after Unsubscribe", lost[0])
	}
	sink.check()
}

func TestUnsubscribeConcurrent(t *testing.T) {
	fake := fakenode.Start(t)
	n := startNode(t, fake.URL(), fastOptions(1))
	sub := subscribe(t, n, newSink(t))
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := map[string]int{}
	for range 10 {
		wg.Go(func() {
			res, err := sub.Unsubscribe(ctxTimeout(t, 5*time.Second))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				results["error"]++
				return
			}
			results[string(res)]++
		})
	}
	wg.Wait()
	if results["true"] != 1 || results["false"] != 9 {
		t.Errorf("results %v, want exactly one true", results)
	}
}

func TestSubscriptionLostOnDisconnect(t *testing.T) {
	fake := fakenode.Start(t)
	n := startNode(t, fake.URL(), fastOptions(2))
	const count = 6
	sinks := make([]*recSink, count)
	subs := make([]*suber.Subscription, count)
	for i := range sinks {
		sinks[i] = newSink(t)
		subs[i] = subscribe(t, n, sinks[i])
		waitNotes(t, sinks[i], 1)
	}
	fake.DisconnectAll()
	for i, s := range sinks {
		waitFor(t, 3*time.Second, fmt.Sprintf("sub %d to be lost", i), func() bool { return len(s.LostErrs()) > 0 })
	}
	// Lost subscriptions stay quiet, and unsubscribing one is a no-op.
	waitFor(t, 3*time.Second, "reconnection", func() bool { return fake.Connections() == 2 })
	fake.Chain().NewBlock()
	for i, sub := range subs {
		if res, err := sub.Unsubscribe(ctxTimeout(t, time.Second)); err != nil || string(res) != "false" {
			t.Errorf("Unsubscribe of lost sub %d = %s, %v; want false", i, res, err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	for i, s := range sinks {
		if got := len(s.Notes()); got != 1 {
			t.Errorf("sub %d: %d notifications, want only the one before the loss", i, got)
		}
		s.check()
	}
	// A new subscription works on the new connections.
	sink := newSink(t)
	subscribe(t, n, sink)
	waitNotes(t, sink, 1)
}

func TestSubscriptionLostOnClose(t *testing.T) {
	fake := fakenode.Start(t)
	n, err := suber.NewNode(fake.URL(), fastOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	waitFor(t, 3*time.Second, "a connection", n.Connected)
	sink := newSink(t)
	subscribe(t, n, sink)
	_ = n.Close()
	lost := sink.LostErrs()
	if len(lost) != 1 {
		t.Fatalf("Lost called %d times by Close, want 1", len(lost))
	}
	if !errors.Is(lost[0], suber.ErrClosed) {
		t.Errorf("Lost(%v), want ErrClosed", lost[0])
	}
	sink.check()
	waitFor(t, 3*time.Second, "the node to drop the subscriptions", func() bool { return fake.TotalActiveSubscriptions() == 0 })
}

func TestSubscribeErrors(t *testing.T) {
	fake := fakenode.Start(t)
	fake.Handle("test_subscribeBool", func(json.RawMessage) (any, *fakenode.Error) { return true, nil })
	fake.Handle("test_subscribeObject", func(json.RawMessage) (any, *fakenode.Error) { return map[string]int{"a": 1}, nil })
	n := startNode(t, fake.URL(), fastOptions(1))
	cases := []struct {
		name     string
		method   string
		params   string
		nodeCode int // 0: any non-node error
	}{
		{"node error", "author_submitAndWatchExtrinsic", `["not hex"]`, -32602},
		{"unknown method", "test_subscribeNothing", "", -32601},
		{"result is not an id", "test_subscribeBool", "", 0},
		{"result is an object", "test_subscribeObject", "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p json.RawMessage
			if tc.params != "" {
				p = json.RawMessage(tc.params)
			}
			sink := newSink(t)
			sub, err := n.Subscribe(ctxTimeout(t, 5*time.Second), tc.method, p, "test_unsubscribe", sink)
			if err == nil {
				t.Fatalf("got subscription %s", sub.ID())
			}
			e, isNode := suber.IsUpstreamError(err)
			if tc.nodeCode != 0 && (!isNode || e.Code != tc.nodeCode) {
				t.Errorf("error %v, want node error %d", err, tc.nodeCode)
			}
			if tc.nodeCode == 0 && isNode {
				t.Errorf("error %v should not be a node error", err)
			}
		})
	}
	if got := call(t, n, "system_chain", ""); string(got) != `"Fake Dev"` {
		t.Errorf("after failed subscribes: %s", got)
	}
}

func TestAbandonedSubscribeIsUnsubscribed(t *testing.T) {
	fake := fakenode.Start(t)
	n := startNode(t, fake.URL(), fastOptions(1))
	call(t, n, "system_chain", "")
	fake.SetDelay(newHeads, 300*time.Millisecond)
	sink := newSink(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	sub, err := n.Subscribe(ctx, newHeads, nil, unNewHeads, sink)
	if err == nil {
		t.Fatalf("Subscribe succeeded (%s) despite its deadline", sub.ID())
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 250*time.Millisecond {
		t.Errorf("Subscribe took %v: it waited for the delayed reply", el)
	}
	// The node made the subscription at once; once its reply arrives the
	// gateway must unsubscribe it.
	if got := fake.ActiveSubscriptions(newHeads); got != 1 {
		t.Logf("node has %d subscriptions before the delayed reply", got)
	}
	waitFor(t, 3*time.Second, "the abandoned subscription to be unsubscribed on the node", func() bool {
		return fake.ActiveSubscriptions(newHeads) == 0
	})
	if fake.Calls(unNewHeads) != 1 {
		t.Errorf("node saw %d unsubscribe calls, want 1", fake.Calls(unNewHeads))
	}
	fake.Chain().NewBlock()
	time.Sleep(50 * time.Millisecond)
	if got := sink.Notes(); len(got) != 0 {
		t.Errorf("the sink of an abandoned subscribe got %d notifications", len(got))
	}
	if lost := sink.LostErrs(); len(lost) != 0 {
		t.Errorf("the sink of an abandoned subscribe got Lost(%v)", lost[0])
	}
	// The connection still works, and so do new subscriptions.
	fake.SetDelay(newHeads, 0)
	s2 := newSink(t)
	subscribe(t, n, s2)
	waitNotes(t, s2, 1)
}

// cancelSink cancels the subscribe call's context from inside the first
// notification, as a client hanging up at that moment would. The early
// notification is delivered after the reply was matched but before it is
// handed to the waiting Subscribe.
type cancelSink struct {
	*recSink
	cancel context.CancelFunc
	once   sync.Once
}

func (s *cancelSink) Notify(method string, result json.RawMessage) {
	s.once.Do(s.cancel)
	s.recSink.Notify(method, result)
}

func TestSubscribeCanceledAsReplyArrives(t *testing.T) {
	fake := fakenode.Start(t)
	fake.SetEarlyNotifications(true)
	n := startNode(t, fake.URL(), fastOptions(1))
	call(t, n, "system_chain", "")
	const attempts = 10
	var failed, succeeded int
	for range attempts {
		ctx, cancel := context.WithCancel(context.Background())
		sink := &cancelSink{recSink: newSink(t), cancel: cancel}
		sub, err := n.Subscribe(ctx, newHeads, nil, unNewHeads, sink)
		cancel()
		if err != nil {
			failed++
			continue
		}
		succeeded++
		if res, err := sub.Unsubscribe(ctxTimeout(t, 5*time.Second)); err != nil || string(res) != "true" {
			t.Errorf("Unsubscribe = %s, %v", res, err)
		}
	}
	// Every subscription the caller was told failed must not live on.
	if !eventually(time.Second, func() bool { return fake.ActiveSubscriptions(newHeads) == 0 }) {
		t.Fatalf("regression: suber/session.go session.call: %d of %d subscribes returned ctx.Err() after dispatch had already "+
			"matched the reply, bound the Subscription and put it in s.subs (pending entry deleted); forget() then finds "+
			"no pending call, so nothing unsubscribes it: %d subscriptions leak on the node and keep feeding a sink whose "+
			"Subscribe failed. Fix: in call(), on ctx.Done for a subscribe, if forget finds the pending entry gone, "+
			"wait for <-p.reply and unsubscribe the bound id (or return the reply instead of ctx.Err()).",
			failed, attempts, fake.ActiveSubscriptions(newHeads))
	}
	t.Logf("%d failed, %d succeeded", failed, succeeded)
}

func TestEarlyNotificationsSurviveUnknownIDs(t *testing.T) {
	// Notifications for subscription ids the gateway does not know (left
	// over after unsubscribes, abandoned subscribes, or sent by a confused
	// node) must not crowd out the early notification of a real new
	// subscription.
	fake := fakenode.Start(t)
	n := startNode(t, fake.URL(), fastOptions(1))
	call(t, n, "system_chain", "")
	for i := range 1100 {
		fake.SendRaw(fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"chain_newHead","params":{"subscription":"stale%d","result":{}}}`, i))
	}
	call(t, n, "system_chain", "") // the stale notifications have been read
	fake.SetEarlyNotifications(true)
	sink := newSink(t)
	sub := subscribe(t, n, sink)
	defer sub.Unsubscribe(context.Background())
	if len(sink.Notes()) == 0 {
		t.Fatal("regression: suber/session.go keepEarly: the early-notification table keeps entries for ids that will never " +
			"be claimed until it holds earlySubscriptions (1024) ids, and pruneEarly only evicts entries older than " +
			"earlyMaxAge (30s); once full, the early notification of every new subscription is silently dropped for " +
			"up to 30s. Evict the oldest entry instead (and drop entries for ids the session itself unsubscribed).")
	}
}

// A node may end a subscription with an error notification (params.error
// instead of params.result): the sink is told it was lost, with the node's
// error, and never gets the error object as a notification.
func TestSubscriptionEndedByErrorNotification(t *testing.T) {
	fake := fakenode.Start(t)
	chain := fake.Chain()
	n := startNode(t, fake.URL(), fastOptions(1))
	sink := newSink(t)
	sub := subscribe(t, n, sink)
	waitNotes(t, sink, 1)
	fake.SendRaw(fmt.Appendf(nil, `{"jsonrpc":"2.0","method":%q,"params":{"subscription":%s,"error":{"code":-32000,"message":"pruned away"}}}`, headNote, sub.ID()))
	waitFor(t, 3*time.Second, "the subscription to be lost", func() bool { return len(sink.LostErrs()) > 0 })
	if err := sink.LostErrs()[0]; err == nil || !strings.Contains(err.Error(), "pruned away") {
		t.Errorf("Lost(%v), want the node's error", err)
	}
	if !errors.Is(sink.LostErrs()[0], suber.ErrSubscriptionFailed) {
		t.Errorf("Lost(%v) is not ErrSubscriptionFailed", sink.LostErrs()[0])
	}
	chain.NewBlock()
	call(t, n, "system_chain", "") // anything the node sent is read by now
	for _, nr := range sink.Notes() {
		if strings.Contains(string(nr.result), "pruned away") {
			t.Errorf("the error was delivered as a notification: %s", nr.result)
		}
	}
	if got := len(sink.Notes()); got != 1 {
		t.Errorf("%d notifications, want only the one before the error", got)
	}
	if !sub.Done() {
		t.Error("Done() = false for a subscription the node ended")
	}
	if res, err := sub.Unsubscribe(ctxTimeout(t, 5*time.Second)); err != nil || string(res) != "false" {
		t.Errorf("Unsubscribe after the error = %s, %v; want false", res, err)
	}
	sink.check()
}

// An error notification that arrives before the subscribe reply ends the
// subscription as soon as its id is known.
func TestSubscriptionEarlyErrorNotification(t *testing.T) {
	fake := fakenode.Start(t)
	fake.Handle("test_subscribe", func(json.RawMessage) (any, *fakenode.Error) { return "earlyErr01234567", nil })
	n := startNode(t, fake.URL(), fastOptions(1))
	call(t, n, "system_chain", "")
	fake.SendRaw([]byte(`{"jsonrpc":"2.0","method":"test_note","params":{"subscription":"earlyErr01234567","result":1}}`))
	fake.SendRaw([]byte(`{"jsonrpc":"2.0","method":"test_note","params":{"subscription":"earlyErr01234567","error":"no such block"}}`))
	fake.SendRaw([]byte(`{"jsonrpc":"2.0","method":"test_note","params":{"subscription":"earlyErr01234567","result":2}}`))
	call(t, n, "system_chain", "") // the notifications have been read
	sink := newSink(t)
	sub, err := n.Subscribe(ctxTimeout(t, 5*time.Second), "test_subscribe", nil, "test_unsubscribe", sink)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the subscription to be lost", func() bool { return len(sink.LostErrs()) > 0 })
	if err := sink.LostErrs()[0]; !strings.Contains(err.Error(), "no such block") {
		t.Errorf("Lost(%v), want the node's error", err)
	}
	if notes := sink.Notes(); len(notes) != 1 || string(notes[0].result) != "1" {
		t.Errorf("notifications %v, want only the one before the error", notes)
	}
	if !sub.Done() {
		t.Error("Done() = false")
	}
	sink.check()
}

// Done reports a subscription that can deliver nothing more.
func TestSubscriptionDone(t *testing.T) {
	fake := fakenode.Start(t)
	n := startNode(t, fake.URL(), fastOptions(1))
	a, b := subscribe(t, n, newSink(t)), subscribe(t, n, newSink(t))
	if a.Done() || b.Done() {
		t.Fatal("a live subscription is done")
	}
	if _, err := a.Unsubscribe(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !a.Done() {
		t.Error("not done after Unsubscribe")
	}
	fake.DisconnectAll()
	waitFor(t, 3*time.Second, "the subscription to be done with its connection", b.Done)
}
