package main

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/wsraw"
)

// pollerPair is a poller (its loop not running: the test drives it) and
// a subscriber on it whose server side the test writes.
func pollerPair(t *testing.T) (*poller, *subscriber, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	p, err := newPoller(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(p.epfd) })
	s := &subscriber{conn: client, fd: -1, done: make(chan struct{}), pattern: []byte(`"subscription":"s1"`)}
	if err := p.add(s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.fd >= 0 {
			syscall.Close(s.fd)
		}
	})
	return p, s, server
}

func headFrame(num int) []byte {
	return serverFrame(wsraw.OpText, true, fmt.Appendf(nil,
		`{"jsonrpc":"2.0","method":"chain_newHead","params":{"subscription":"s1","result":{"number":"0x%x"}}}`, num))
}

// stampUntil stamps until s waits with reports of want unread bytes.
func stampUntil(t *testing.T, p *poller, s *subscriber, waiting *[]*subscriber, want int) {
	t.Helper()
	events := make([]syscall.EpollEvent, pollEvents)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if _, err := p.stamp(events, 10, waiting); err != nil {
			t.Fatal(err)
		}
		if n := len(s.edges); n > 0 && s.edges[n-1].unread >= want {
			return
		}
	}
	t.Fatalf("no report of %d unread bytes; reports %+v", want, s.edges)
}

// A frame left unread while a later one arrives keeps the time it came:
// the stamp of the socket's first report, not of its last.
func TestPollerStampsEachFrameWhenItCame(t *testing.T) {
	p, s, server := pollerPair(t)
	var waiting []*subscriber
	first, second := headFrame(1), headFrame(2)
	if _, err := server.Write(first); err != nil {
		t.Fatal(err)
	}
	stampUntil(t, p, s, &waiting, len(first))
	time.Sleep(20 * time.Millisecond)
	secondSent := time.Since(p.base)
	if _, err := server.Write(second); err != nil {
		t.Fatal(err)
	}
	stampUntil(t, p, s, &waiting, len(first)+len(second))
	if len(waiting) != 1 {
		t.Fatalf("%d subscribers waiting, want 1 (one entry however often it is reported)", len(waiting))
	}
	if !p.read(s, make([]byte, 64<<10)) {
		t.Fatalf("read ended the connection: %s", s.badMsg)
	}
	if len(s.recs) != 2 || s.recs[0].num != 1 || s.recs[1].num != 2 {
		t.Fatalf("receptions %+v, want blocks 1 and 2", s.recs)
	}
	if s.recs[0].at >= secondSent {
		t.Errorf("block 1 stamped %v, after block 2 was sent (%v): it was there before", s.recs[0].at, secondSent)
	}
	if s.recs[1].at < secondSent {
		t.Errorf("block 2 stamped %v, before it was sent (%v)", s.recs[1].at, secondSent)
	}
	if len(s.edges) != 0 {
		t.Errorf("reports kept after the read: %+v", s.edges)
	}
}

// Bytes and the end of the stream in one report: the read that takes
// the bytes must also see the end, as no later report comes.
func TestPollerSeesTheEndThatCameWithTheLastBytes(t *testing.T) {
	p, s, server := pollerPair(t)
	var waiting []*subscriber
	frame := headFrame(7)
	if _, err := server.Write(frame); err != nil {
		t.Fatal(err)
	}
	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // the end is in the socket too
	stampUntil(t, p, s, &waiting, len(frame))
	if p.read(s, make([]byte, 64<<10)) {
		t.Fatal("the read took the frame but not the end of the stream: the subscriber would wait forever")
	}
	if len(s.recs) != 1 || s.recs[0].num != 7 {
		t.Errorf("receptions %+v, want block 7", s.recs)
	}
}
