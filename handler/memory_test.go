package handler_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/elara-gateway/elara/suber"
)

// bareWS is a WebSocket client that holds nothing but its socket: no
// goroutine and no buffer, so that the gateway's memory per client can be
// measured in the same process. Frames it has not read wait in the
// kernel's socket buffer.
type bareWS struct {
	conn net.Conn
}

// dialBare opens a WebSocket to url, offering permessage-deflate when
// deflate is set.
func dialBare(t testing.TB, addr, path string, deflate bool) *bareWS {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\n"
	if deflate {
		req += "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	// The server sends nothing after its 101 until the client writes, so
	// a buffered reader cannot take more than the response.
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: status %d", resp.StatusCode)
	}
	return &bareWS{conn: conn}
}

// send writes one masked text frame.
func (c *bareWS) send(t testing.TB, payload []byte) {
	t.Helper()
	hdr := []byte{0x81}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n < 1<<16:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	mask := []byte{1, 2, 3, 4}
	frame := append(append(hdr, mask...), payload...)
	for i := range payload {
		frame[len(hdr)+4+i] ^= mask[i%4]
	}
	if _, err := c.conn.Write(frame); err != nil {
		t.Fatal(err)
	}
}

// next reads one unfragmented text frame (uncompressed: the gateway
// compresses only frames of 1 KiB or more, and these are smaller).
func (c *bareWS) next(t testing.TB) []byte {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(c.conn, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 0x81 {
		t.Fatalf("frame header %#x: want a final, uncompressed text frame", hdr[0])
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.conn, b[:]); err != nil {
			t.Fatal(err)
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.conn, b[:]); err != nil {
			t.Fatal(err)
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.conn, buf); err != nil {
		t.Fatal(err)
	}
	return buf
}

// gatewayMemory is the live heap plus goroutine stacks after a GC.
func gatewayMemory() (heap, stack uint64) {
	var ms runtime.MemStats
	for range 2 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.StackInuse
}

// maxIdleClientBytes bounds the gateway's memory for one idle WebSocket
// client holding one new-heads subscription: the README's 16 KiB. It
// measures about 8 KiB, so the margin absorbs GC and allocator noise and
// a regression to the earlier 56 KiB (a goroutine and buffers per idle
// connection) fails.
const maxIdleClientBytes = 16 << 10

// Capacity: the memory of an idle client with a subscription, after it
// has received blocks, stays small, so one gateway holds many such
// clients. Measured in-process over 1,000 clients as the growth of live
// heap plus goroutine stacks after a GC; the clients themselves hold only
// their sockets, so almost all of it is the gateway's.
func TestMemoryPerIdleSubscribedClient(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,000 connections")
	}
	if raceEnabled {
		t.Skip("the race detector doubles goroutine stacks and adds shadow state: run without -race")
	}
	const clients = 1000
	const blocks = 5
	for _, tc := range []struct {
		name    string
		deflate bool
	}{
		{"plain", false},
		{"permessage-deflate offered", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw, node := start(t, "")
			baseline(t, node, "chain_subscribeNewHeads")
			addr := "127.0.0.1:" + strconv.Itoa(gw.Port)
			// Warm the process (first upgrade, first subscription) so that
			// one-time allocations do not count against the clients.
			warm := dialBare(t, addr, "/dev", tc.deflate)
			warm.send(t, []byte(`{"jsonrpc":"2.0","id":1,"method":"chain_subscribeNewHeads","params":[]}`))
			warm.next(t)
			defer warm.conn.Close()

			heap0, stack0 := gatewayMemory()
			g0 := runtime.NumGoroutine()
			conns := make([]*bareWS, clients)
			subIDs := make([]json.RawMessage, clients)
			for i := range conns {
				c := dialBare(t, addr, "/dev", tc.deflate)
				conns[i] = c
				c.send(t, []byte(`{"jsonrpc":"2.0","id":7,"method":"chain_subscribeNewHeads","params":[]}`))
				var reply struct {
					ID     json.RawMessage `json:"id"`
					Result json.RawMessage `json:"result"`
				}
				// The reply, then the current head as the first notification.
				for reply.Result == nil {
					if err := json.Unmarshal(c.next(t), &reply); err != nil {
						t.Fatal(err)
					}
				}
				subIDs[i] = reply.Result
			}
			defer func() {
				for _, c := range conns {
					c.conn.Close()
				}
			}()
			var last uint64
			for range blocks {
				last = node.Chain().NewBlock().Number
			}
			// Every client gets every block, in order, under its own id.
			for i, c := range conns {
				for {
					var n struct {
						Params struct {
							Subscription json.RawMessage `json:"subscription"`
							Result       json.RawMessage `json:"result"`
						} `json:"params"`
					}
					raw := c.next(t)
					if err := json.Unmarshal(raw, &n); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(n.Params.Subscription, subIDs[i]) {
						t.Fatalf("client %d: notification for %s, its subscription is %s", i, n.Params.Subscription, subIDs[i])
					}
					num, ok := suber.HeaderNumber(n.Params.Result)
					if !ok {
						t.Fatalf("client %d: not a head: %s", i, raw)
					}
					if num == last {
						break
					}
				}
			}
			heap1, stack1 := gatewayMemory()
			g1 := runtime.NumGoroutine()
			per := (int64(heap1+stack1) - int64(heap0+stack0)) / clients
			msg := fmt.Sprintf("per idle subscribed client after %d blocks: %.1f KiB (heap %.1f KiB, stacks %.1f KiB), %.2f goroutines",
				blocks, float64(per)/1024, float64(int64(heap1)-int64(heap0))/clients/1024,
				float64(int64(stack1)-int64(stack0))/clients/1024, float64(g1-g0)/clients)
			t.Log(msg)
			if os.Getenv("ELARA_MEMORY_REPORT") != "" {
				fmt.Println(msg)
			}
			if per > maxIdleClientBytes {
				t.Fatalf("%s: over the bound of %d KiB", msg, maxIdleClientBytes>>10)
			}
			// An idle connection has its reader and nothing else: a writer
			// runs only while frames wait.
			if g1-g0 > clients+clients/20 {
				t.Fatalf("%s: more than one goroutine per idle client", msg)
			}
		})
	}
}
