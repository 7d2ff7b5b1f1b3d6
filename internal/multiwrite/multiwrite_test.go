package multiwrite

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// pair is a connected TCP pair: the batch writes to server, the test
// reads client.
type pair struct {
	server *net.TCPConn
	client net.Conn
	raw    syscall.RawConn
}

func pairs(t *testing.T, n int) []pair {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out := make([]pair, n)
	for i := range out {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := s.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = pair{server: s.(*net.TCPConn), client: c, raw: raw}
		t.Cleanup(func() { s.Close(); c.Close() })
	}
	return out
}

// written records each Written call.
type written struct {
	order *[]int
	i     int
	buf   []byte
	n     int
	err   error
	calls int
}

func (w *written) Written(buf []byte, n int, err error) {
	w.buf, w.n, w.err = buf, n, err
	w.calls++
	*w.order = append(*w.order, w.i)
}

// withPath runs f once with io_uring (skipped where the kernel refuses
// it) and once with one write(2) per buffer.
func withPath(t *testing.T, f func(t *testing.T)) {
	t.Run("io_uring", func(t *testing.T) {
		if !Batched() {
			t.Skip("io_uring unavailable here")
		}
		before := ringSends.Load()
		f(t)
		if ringSends.Load() == before {
			t.Error("no write went through the ring")
		}
	})
	t.Run("write", func(t *testing.T) {
		was := refused.Load()
		refused.Store(true)
		defer refused.Store(was)
		f(t)
	})
}

func TestBatchWritesEveryBufferToItsSocket(t *testing.T) {
	cases := []struct {
		name    string
		sockets int
	}{
		{"one", 1},
		{"a ring's worth", ringEntries},
		{"more than a ring holds", 2*ringEntries + 17},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			withPath(t, func(t *testing.T) {
				ps := pairs(t, tc.sockets)
				b := Get()
				defer b.Put()
				var order []int
				ws := make([]*written, len(ps))
				for i, p := range ps {
					ws[i] = &written{order: &order, i: i}
					b.Add(p.raw, fmt.Appendf(nil, "frame for socket %d;", i), ws[i])
				}
				if b.Len() != len(ps) {
					t.Fatalf("Len %d, want %d", b.Len(), len(ps))
				}
				b.Flush()
				if b.Len() != 0 {
					t.Errorf("Len %d after Flush, want 0", b.Len())
				}
				for i, w := range ws {
					want := fmt.Sprintf("frame for socket %d;", i)
					if w.calls != 1 || w.err != nil || w.n != len(want) || string(w.buf) != want {
						t.Fatalf("socket %d: %d calls, n %d, err %v, buf %q", i, w.calls, w.n, w.err, w.buf)
					}
					got := make([]byte, len(want))
					_ = ps[i].client.SetReadDeadline(time.Now().Add(5 * time.Second))
					if _, err := io.ReadFull(ps[i].client, got); err != nil || string(got) != want {
						t.Fatalf("socket %d read %q (%v), want %q", i, got, err, want)
					}
				}
				for i, j := range order {
					if i != j {
						t.Fatalf("results told in order %v, want the order added", order)
					}
				}
			})
		})
	}
}

func TestBatchClosedSocketFailsAloneAndFullSocketNeverBlocks(t *testing.T) {
	withPath(t, func(t *testing.T) {
		ps := pairs(t, 3)
		// Socket 1 closed before the flush; socket 2 already full.
		ps[1].server.Close()
		if err := ps[2].server.SetWriteBuffer(4096); err != nil {
			t.Fatal(err)
		}
		fill := bytes.Repeat([]byte("x"), 1<<20)
		for {
			_ = ps[2].server.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := ps[2].server.Write(fill); err != nil {
				break
			}
		}
		var order []int
		ws := []*written{{order: &order, i: 0}, {order: &order, i: 1}, {order: &order, i: 2}}
		b := Get()
		defer b.Put()
		big := bytes.Repeat([]byte("y"), 256<<10)
		b.Add(ps[0].raw, []byte("fine"), ws[0])
		b.Add(ps[1].raw, []byte("closed"), ws[1])
		b.Add(ps[2].raw, big, ws[2])
		flushed := make(chan struct{})
		go func() { b.Flush(); close(flushed) }()
		select {
		case <-flushed:
		case <-time.After(5 * time.Second):
			t.Fatal("Flush blocked on a full socket")
		}
		if ws[0].err != nil || ws[0].n != 4 {
			t.Errorf("open socket: n %d, err %v; want all 4 bytes", ws[0].n, ws[0].err)
		}
		if ws[1].err == nil || ws[1].n != 0 {
			t.Errorf("closed socket: n %d, err %v; want an error", ws[1].n, ws[1].err)
		}
		if ws[2].err != nil || ws[2].n >= len(big) {
			t.Errorf("full socket: n %d of %d, err %v; want part of it and no error", ws[2].n, len(big), ws[2].err)
		}
		got := make([]byte, 4)
		_ = ps[0].client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(ps[0].client, got); err != nil || string(got) != "fine" {
			t.Errorf("open socket read %q (%v)", got, err)
		}
	})
}
