package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/wsraw"
	"github.com/gorilla/websocket"
)

// headsServer is a node as the fan-out clients meet it: before and right
// after the subscription's reply it sends new heads, then pings, sends a
// head in fragments and one more, and waits for the client's goodbye.
// Each connection reports what it saw on results.
func headsServer(t *testing.T, compress bool, results chan<- string) *httptest.Server {
	up := websocket.Upgrader{EnableCompression: compress, WriteBufferSize: 64}
	head := func(n int) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","method":"chain_newHead","params":{"subscription":"s1","result":{"parentHash":"0x%064x","number":"0x%x"}}}`, n, n)
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		conn.EnableWriteCompression(compress)
		report := func(format string, args ...any) { results <- fmt.Sprintf(format, args...) }
		if _, msg, err := conn.ReadMessage(); err != nil || string(msg) != subscribeHeads {
			report("subscribe request %q, %v", msg, err)
			return
		}
		pong := make(chan struct{}, 1)
		conn.SetPongHandler(func(data string) error {
			if data == "are you there" {
				pong <- struct{}{}
			}
			return nil
		})
		closed := make(chan error, 1)
		go func() {
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					closed <- err
					return
				}
			}
		}()
		for _, m := range []string{head(1), `{"jsonrpc":"2.0","id":1,"result":"s1"}`, head(2), head(3)} {
			if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				report("write: %v", err)
				return
			}
		}
		if err := conn.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
			report("ping: %v", err)
			return
		}
		select {
		case <-pong:
		case <-time.After(10 * time.Second):
			report("no pong")
			return
		}
		// Longer than the write buffer: gorilla sends it in fragments.
		big := head(4)
		big = big[:len(big)-2] + `,"extrinsicsRoot":"0x` + strings.Repeat("ab", 200) + `"}}}`
		for _, m := range []string{big, head(5)} {
			if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				report("write: %v", err)
				return
			}
		}
		select {
		case err := <-closed:
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				report("ended with %v, not a close frame with 1000", err)
				return
			}
			report("ok")
		case <-time.After(10 * time.Second):
			report("no goodbye")
		}
	}))
}

func TestFanoutClientSpeaksWebSocket(t *testing.T) {
	for _, tc := range []struct {
		name              string
		compress, deflate bool // the server may compress; the client offers to
	}{
		{name: "plain"},
		{name: "deflate offered, not agreed", deflate: true},
		{name: "deflate", compress: true, deflate: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const clients = 5
			results := make(chan string, clients)
			srv := headsServer(t, tc.compress, results)
			defer srv.Close()
			url := "ws" + strings.TrimPrefix(srv.URL, "http")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			subs, failed, err := connectSubscribers(ctx, url, tc.deflate, false, clients, time.Now(), 10*time.Second, 8)
			if err != nil || failed != 0 || len(subs) != clients {
				t.Fatalf("%d subscribed, %d failed: %v", len(subs), failed, err)
			}
			for _, s := range subs {
				s.wmu.Lock()
				polled := s.fd >= 0
				s.wmu.Unlock()
				if runtime.GOOS == "linux" && !polled {
					t.Error("a subscriber is read by its own goroutine, not by a poller")
				}
				for s.newest.Load() < 5 && ctx.Err() == nil {
					time.Sleep(5 * time.Millisecond)
				}
				s.close()
				<-s.done
				var got []uint64
				for _, r := range s.recs {
					got = append(got, r.num)
				}
				if fmt.Sprint(got) != "[1 2 3 4 5]" || s.bad != 0 {
					t.Errorf("received blocks %v, %d bad messages (%s)", got, s.bad, s.badMsg)
				}
			}
			for range clients {
				if r := <-results; r != "ok" {
					t.Errorf("server: %s", r)
				}
			}
		})
	}
}

func TestFanoutClientRefusals(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such chain", http.StatusNotFound)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	var refused *wsraw.HandshakeError
	if _, err := subscribeClient(ctx, url, false, false, time.Now(), 5*time.Second, 1); !errors.As(err, &refused) || refused.Status != http.StatusNotFound {
		t.Errorf("a 404 handshake: %v", err)
	}
	if _, err := subscribeClient(ctx, "wss://127.0.0.1:1/", false, false, time.Now(), 5*time.Second, 1); err == nil {
		t.Error("wss:// accepted")
	}
}

func TestFrameReaderSplitsAnywhere(t *testing.T) {
	var stream []byte
	for _, m := range []string{"one", strings.Repeat("x", 300), strings.Repeat("y", 70000)} {
		stream = append(stream, serverFrame(wsraw.OpText, true, []byte(m))...)
	}
	stream = append(stream, serverFrame(wsraw.OpText, false, []byte("frag"))...)
	stream = append(stream, serverFrame(wsraw.OpPing, true, []byte("p"))...)
	stream = append(stream, serverFrame(wsraw.OpContinuation, true, []byte("mented"))...)
	for _, step := range []int{1, 2, 7, 100, len(stream)} {
		var r frameReader
		var sink recordingSink
		for i := 0; i < len(stream); i += step {
			if err := r.feed(stream[i:min(i+step, len(stream))], &sink); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		}
		if len(sink.msgs) != 4 || sink.msgs[0] != "one" || len(sink.msgs[2]) != 70000 || sink.msgs[3] != "fragmented" || fmt.Sprint(sink.pings) != "[p]" {
			t.Errorf("step %d: %d messages, last %.20q, pings %v", step, len(sink.msgs), sink.msgs[len(sink.msgs)-1], sink.pings)
		}
	}
	var r frameReader
	if err := r.feed(serverFrame(wsraw.OpClose, true, []byte{3, 0xe8}), &recordingSink{}); !errors.Is(err, errServerClosed) {
		t.Errorf("close frame: %v", err)
	}
	masked := wsraw.Frame(wsraw.OpText, []byte("hi"))
	if err := new(frameReader).feed(masked, &recordingSink{}); err == nil {
		t.Error("a masked frame from the server accepted")
	}
}

type recordingSink struct{ msgs, pings []string }

func (s *recordingSink) message(m []byte) { s.msgs = append(s.msgs, string(m)) }
func (s *recordingSink) ping(p []byte)    { s.pings = append(s.pings, string(p)) }

// serverFrame is an unmasked frame.
func serverFrame(op byte, fin bool, payload []byte) []byte {
	f := wsraw.Frame(op, payload)
	if !fin {
		f[0] &^= 0x80
	}
	// Drop the mask: unmask the payload and clear the bit.
	h := 2
	switch f[1] & 0x7f {
	case 126:
		h = 4
	case 127:
		h = 10
	}
	mask := f[h : h+4]
	out := append([]byte{f[0], f[1] &^ 0x80}, f[2:h]...)
	for i, c := range f[h+4:] {
		out = append(out, c^mask[i&3])
	}
	return out
}
