package suber_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/suber"
)

// Close racing subscribes that each need an extra connection: Close
// returns with no goroutine of the node left and none starts after it
// (under -race, an Add racing Close's Wait is reported), every subscribe
// ends, a later one fails with ErrClosed, and the node's connections all
// close.
func TestCloseRacingSubscribesOpensNoExtraConnection(t *testing.T) {
	fake := fakenode.Start(t)
	for round := range 20 {
		opts := fastOptions(1)
		opts.MaxSubscriptionsPerConnection = 1 // every subscribe past the first dials
		opts.MaxExtraConnections = 64
		n, err := suber.NewNode(fake.URL(), opts)
		if err != nil {
			t.Fatal(err)
		}
		n.Start()
		waitFor(t, 3*time.Second, "connected", n.Connected)

		const subscribers = 32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range subscribers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				params := json.RawMessage(fmt.Sprintf(`["0x%02x%04x"]`, round, i))
				_, _ = n.Subscribe(ctxTimeout(t, 5*time.Second), "author_submitAndWatchExtrinsic", params, "", newSink(t))
			}()
		}
		close(start)
		// Let some dials start, with round-dependent timing.
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		_ = n.Close()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: subscribes still running 10s after Close", round)
		}
		if n.ExtraConnections() != 0 {
			t.Fatalf("round %d: %d extra connections after Close", round, n.ExtraConnections())
		}
		// Close waited for the node's goroutines, and none started since
		// (one that has called Done may still be returning: a moment).
		g := nodeGoroutines()
		for deadline := time.Now().Add(time.Second); g != "" && time.Now().Before(deadline); g = nodeGoroutines() {
			time.Sleep(5 * time.Millisecond)
		}
		if g != "" {
			t.Fatalf("round %d: goroutines of the node left after Close:\n%s", round, g)
		}
		if _, err := n.Subscribe(ctxTimeout(t, time.Second), "author_submitAndWatchExtrinsic", json.RawMessage(`["0xff"]`), "", newSink(t)); !errors.Is(err, suber.ErrClosed) {
			t.Fatalf("round %d: subscribe after Close: %v, want ErrClosed", round, err)
		}
		waitFor(t, 5*time.Second, "the node's connections closed", func() bool { return fake.Connections() == 0 })
	}
}

// nodeGoroutines returns the stacks of goroutines running suber code
// other than this test's.
func nodeGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "elara/suber.") && !strings.Contains(g, "suber_test.") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
