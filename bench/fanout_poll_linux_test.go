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
	// The kernel starts stamping a moment after the first socket asks
	// (it switches stamping on from a work queue); before, reads have no
	// stamp and frames get the time of their read.
	time.Sleep(20 * time.Millisecond)
	return p, s, server
}

func headFrame(num int) []byte {
	return serverFrame(wsraw.OpText, true, fmt.Appendf(nil,
		`{"jsonrpc":"2.0","method":"chain_newHead","params":{"subscription":"s1","result":{"number":"0x%x"}}}`, num))
}

// stampUntil stamps until s has want reports.
func stampUntil(t *testing.T, p *poller, s *subscriber, waiting *[]*subscriber, want int) {
	t.Helper()
	events := make([]syscall.EpollEvent, pollEvents)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if _, err := p.stamp(events, 10, waiting); err != nil {
			t.Fatal(err)
		}
		if len(s.reports) >= want {
			return
		}
	}
	t.Fatalf("%d reports, want %d", len(s.reports), want)
}

// A frame left unread while a later one arrives keeps the time it came:
// the socket's first report, not the kernel's stamp of the later bytes
// read with it.
func TestPollerStampsEachFrameWhenItCame(t *testing.T) {
	p, s, server := pollerPair(t)
	var waiting []*subscriber
	first, second := headFrame(1), headFrame(2)
	if _, err := server.Write(first); err != nil {
		t.Fatal(err)
	}
	stampUntil(t, p, s, &waiting, 1)
	time.Sleep(20 * time.Millisecond)
	secondSent := time.Since(p.base)
	if _, err := server.Write(second); err != nil {
		t.Fatal(err)
	}
	stampUntil(t, p, s, &waiting, 2)
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
	if len(s.reports) != 0 {
		t.Errorf("reports kept after the read: %v", s.reports)
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
	stampUntil(t, p, s, &waiting, 1)
	if p.read(s, make([]byte, 64<<10)) {
		t.Fatal("the read took the frame but not the end of the stream: the subscriber would wait forever")
	}
	if len(s.recs) != 1 || s.recs[0].num != 7 {
		t.Errorf("receptions %+v, want block 7", s.recs)
	}
}

// A frame is stamped with the time it was in the socket, however late
// the poller looks and reads: the kernel's receive stamp.
func TestPollerStampsAFrameWithItsArrivalNotItsRead(t *testing.T) {
	p, s, server := pollerPair(t)
	var waiting []*subscriber
	sent := time.Since(p.base)
	if _, err := server.Write(headFrame(3)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	stampUntil(t, p, s, &waiting, 1)
	if !p.read(s, make([]byte, 64<<10)) {
		t.Fatalf("read ended the connection: %s", s.badMsg)
	}
	if len(s.recs) != 1 || s.recs[0].num != 3 {
		t.Fatalf("receptions %+v, want block 3", s.recs)
	}
	if at := s.recs[0].at; at < sent || at > sent+25*time.Millisecond {
		t.Errorf("block 3 stamped %v after it was sent, reported %v after: want its arrival", at-sent, s.since-sent)
	}
}

// Bytes that come while a socket is read are taken by that read; a
// report of them at the next wait would stamp the next frame, which
// comes later, early. (epoll reports only sockets that hold unread bytes
// when it looks.)
func TestPollerIgnoresAReportForBytesAlreadyRead(t *testing.T) {
	p, s, server := pollerPair(t)
	var waiting []*subscriber
	if _, err := server.Write(headFrame(1)); err != nil {
		t.Fatal(err)
	}
	stampUntil(t, p, s, &waiting, 1)
	if _, err := server.Write(headFrame(2)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // block 2 is in the socket: the read takes it
	buf := make([]byte, 64<<10)
	if !p.read(s, buf) {
		t.Fatalf("read ended the connection: %s", s.badMsg)
	}
	if len(s.recs) != 2 {
		t.Fatalf("receptions %+v, want blocks 1 and 2", s.recs)
	}
	events := make([]syscall.EpollEvent, pollEvents)
	if _, err := p.stamp(events, 10, &waiting); err != nil { // the report of block 2
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	thirdSent := time.Since(p.base)
	if _, err := server.Write(headFrame(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Write(headFrame(4)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if _, err := p.stamp(events, 10, &waiting); err != nil {
		t.Fatal(err)
	}
	if !p.read(s, buf) {
		t.Fatalf("read ended the connection: %s", s.badMsg)
	}
	if len(s.recs) != 4 || s.recs[2].num != 3 {
		t.Fatalf("receptions %+v, want blocks 1 to 4", s.recs)
	}
	if at := s.recs[2].at; at < thirdSent {
		t.Errorf("block 3 stamped %v before it was sent: by the report of bytes already read", thirdSent-at)
	}
}
