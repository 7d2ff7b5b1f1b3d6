package main

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// fanoutPollers is how many epoll loops read the fan-out clients. The
// bench shares the machine with the gateway it measures, so its own CPU
// per notification matters: with 10,000 clients a goroutine per socket
// (a wake-up, a read, and a read that finds nothing) took 110-121 ms of
// CPU per block on 2 CPUs, a loop per CPU about 100 ms (each sleeps and
// is woken many times per block), one loop 57-77 ms: it stays awake
// through the burst of a block.
const fanoutPollers = 1

// epollET is EPOLLET as the event mask's type: syscall declares it
// negative.
const epollET = 1 << 31

// readers reads the fan-out clients' sockets with epoll loops. Where
// epoll is unavailable each subscriber gets a goroutine (readLoop).
type readers struct {
	base  time.Time
	polls []*poller
	next  atomic.Uint32
}

func newReaders(base time.Time) *readers {
	r := &readers{base: base}
	for range fanoutPollers {
		p, err := newPoller(base)
		if err != nil {
			break
		}
		r.polls = append(r.polls, p)
		go p.run()
	}
	return r
}

// newPoller makes a poller; its loop is run.
func newPoller(base time.Time) (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &poller{epfd: fd, base: base, subs: make(map[int32]*subscriber),
		ready: make([]*subscriber, pollEvents), oob: make([]byte, syscall.CmsgSpace(timespecSize))}, nil
}

// add hands s's socket to a poller.
func (r *readers) add(s *subscriber) {
	if len(r.polls) == 0 {
		go s.readLoop(r.base)
		return
	}
	p := r.polls[int(r.next.Add(1))%len(r.polls)]
	if err := p.add(s); err != nil {
		go s.readLoop(r.base)
	}
}

// seal says no subscriber comes any more: each poller ends once its
// subscribers have.
func (r *readers) seal() {
	for _, p := range r.polls {
		p.mu.Lock()
		p.sealed = true
		p.mu.Unlock()
	}
}

type poller struct {
	epfd   int
	base   time.Time
	mu     sync.Mutex
	subs   map[int32]*subscriber
	sealed bool
	// The subscriber of each event of one wait, and room for a read's
	// control message.
	ready []*subscriber
	oob   []byte
}

// timespecSize is the size of the SCM_TIMESTAMPNS control message's data.
const timespecSize = int(unsafe.Sizeof(syscall.Timespec{}))

// pollEvents is how many sockets one wait reports at most.
const pollEvents = 256

// add moves s from its net.Conn to a duplicate of its socket that the
// Go runtime does not poll. On an error before the move s keeps its
// net.Conn; after it, s is done and counts a bad message.
func (p *poller) add(s *subscriber) error {
	tcp, ok := s.conn.(*net.TCPConn)
	if !ok {
		return errors.New("not a TCP connection")
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(orig uintptr) {
		// The kernel stamps each segment as it arrives; reads return the
		// stamp of the last bytes they take.
		if err := syscall.SetsockoptInt(int(orig), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1); err != nil {
			dupErr = err
			return
		}
		// A frame larger than a segment may come in pieces (frameAt).
		if mss, err := syscall.GetsockoptInt(int(orig), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG); err == nil && mss > 0 {
			s.frames.segment = min(mss, oneSegment)
		}
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, orig, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			dupErr = errno
			return
		}
		fd = int(r) // non-blocking like orig: the flag is the socket's
	}); err != nil {
		return err
	}
	if dupErr != nil {
		return dupErr
	}
	s.wmu.Lock()
	_ = s.conn.Close() // the duplicate keeps the socket open
	s.conn, s.fd = nil, fd
	s.wmu.Unlock()
	p.mu.Lock()
	p.subs[int32(fd)] = s
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(fd)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		s.bad, s.badMsg = s.bad+1, "epoll: "+err.Error()
		p.finish(s, fd)
	}
	return nil
}

// A poller reads the sockets once arrivals pause, and stamps each frame
// with the time it was in the client's socket. The clients share the
// machine's two cores with the gateway they measure; reading 10,000
// sockets as the frames come (57-91 ms of CPU per block), being woken for
// each socket, or asking each reported socket how many bytes it holds
// (a system call per socket, about 44 ms of CPU per block) takes that
// CPU from the gateway while it is still writing to the last clients: a
// cost clients on their own machines do not impose. During a burst the
// poller looks at epoll every stampEvery, taking all that arrived
// meanwhile with one wake-up, and notes when each socket was reported.
// The time of a read's last frame is the kernel's receive stamp of its
// bytes (SO_TIMESTAMPNS), exact; frames before it in the same read are
// stamped by the reports (frameAt), at most stampEvery late, never
// early. The sockets are edge-triggered, so one left unread is reported
// again only when more bytes come.
const (
	// stampEvery is the poller's sleep between two looks at epoll while
	// frames arrive.
	stampEvery = 250 * time.Microsecond
	// readQuiet is the pause in arrivals after which waiting sockets
	// are read.
	readQuiet = time.Millisecond
	// readAfter bounds how long a socket waits for a pause: a burst
	// that does not end is read as it comes.
	readAfter = 200 * time.Millisecond
	// readChunk is how many sockets are read between two looks at
	// epoll, so that arrivals during reading are stamped at most a few
	// hundred microseconds late.
	readChunk = 64
)

func (p *poller) run() {
	defer syscall.Close(p.epfd)
	events := make([]syscall.EpollEvent, pollEvents)
	buf := make([]byte, 64<<10)
	var (
		waiting     []*subscriber // stamped, not yet read, oldest first
		lastArrival time.Duration
	)
	for {
		p.mu.Lock()
		over := p.sealed && len(p.subs) == 0
		p.mu.Unlock()
		if over {
			return
		}
		timeout := 50 // ms, while nothing waits
		if len(waiting) > 0 {
			time.Sleep(stampEvery)
			timeout = 0
		}
		n, err := p.stamp(events, timeout, &waiting)
		if err != nil {
			p.finishAll()
			return
		}
		now := time.Since(p.base)
		if n > 0 {
			lastArrival = now
		}
		if len(waiting) == 0 || (now-lastArrival < readQuiet && now-waiting[0].since < readAfter) {
			continue
		}
		// Arrivals paused (or the oldest waited too long): read them all,
		// a chunk at a time, stamping what arrives meanwhile.
		for len(waiting) > 0 {
			chunk := waiting[:min(readChunk, len(waiting))]
			for _, s := range chunk {
				s.waiting = false
				if !p.read(s, buf) {
					p.finish(s, s.fd)
				}
			}
			waiting = waiting[len(chunk):]
			if _, err := p.stamp(events, 0, &waiting); err != nil {
				p.finishAll()
				return
			}
		}
		waiting = nil // let the backing array go
	}
}

// stamp waits up to timeout ms for sockets with new bytes and notes when
// each was reported, adding those not yet waiting to waiting.
func (p *poller) stamp(events []syscall.EpollEvent, timeout int, waiting *[]*subscriber) (int, error) {
	n, err := syscall.EpollWait(p.epfd, events, timeout)
	if err != nil {
		if errors.Is(err, syscall.EINTR) {
			return 0, nil
		}
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	// Taken after the wait: a report is never earlier than the bytes it
	// is about. A socket is reported only if it holds unread bytes when
	// the wait looks (epoll asks it again), so bytes that came during a
	// read and that the read took leave no report for the next frame.
	at := time.Since(p.base)
	p.mu.Lock()
	for i, ev := range events[:n] {
		p.ready[i] = p.subs[ev.Fd]
	}
	p.mu.Unlock()
	for i, s := range p.ready[:n] {
		if s == nil {
			continue
		}
		p.ready[i] = nil
		s.reports = append(s.reports, at)
		if !s.waiting {
			s.waiting, s.since = true, at
			*waiting = append(*waiting, s)
		}
	}
	return n, nil
}

// read takes what the socket holds; false once the connection is over.
// s.at is the kernel's stamp of each system call's last bytes: the time
// they were there, not when this loop got round to them.
func (p *poller) read(s *subscriber, buf []byte) bool {
	s.readFrom = s.frames.parsed
	// A frame begun before this read came in pieces: no report says
	// when its rest came.
	s.frames.pieces = len(s.frames.pending) > 0
	defer func() { s.reports = s.reports[:0] }()
	for {
		n, oobn, _, _, err := syscall.Recvmsg(s.fd, buf, p.oob, 0)
		if n > 0 {
			s.at = p.arrival(p.oob[:oobn])
			if s.frames.feed(buf[:n], s) != nil {
				return false
			}
			// Edge-triggered: read until the socket says it is empty. A
			// short read is not enough: the end of the stream may have come
			// with the same report, and none follows it.
			continue
		}
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return true
		}
		return false // end of stream or an error
	}
}

// arrival is the receive stamp in a read's control message, on the
// bench's clock; without one, now: late, never early. The stamp is wall
// time, the bench's clock monotonic: they differ only if the wall clock
// is stepped during the run, and a stamp after now or before the bench
// began is not taken.
func (p *poller) arrival(oob []byte) time.Duration {
	now := time.Since(p.base)
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= timespecSize {
				ts := (*syscall.Timespec)(unsafe.Pointer(&m.Data[0]))
				if at := time.Unix(ts.Unix()).Sub(p.base); at >= 0 && at <= now {
					return at
				}
			}
		}
	}
	return now
}

// finish closes s's socket and says s is done.
func (p *poller) finish(s *subscriber, fd int) {
	// Forget fd before closing it: once closed, its number may come back
	// for a client being added.
	p.mu.Lock()
	if p.subs[int32(fd)] == s {
		delete(p.subs, int32(fd))
	}
	p.mu.Unlock()
	_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	s.wmu.Lock()
	_ = syscall.Close(fd)
	s.fd = -1
	s.wmu.Unlock()
	close(s.done)
}

func (p *poller) finishAll() {
	p.mu.Lock()
	subs := make(map[int32]*subscriber, len(p.subs))
	for fd, s := range p.subs {
		subs[fd] = s
	}
	p.mu.Unlock()
	for fd, s := range subs {
		p.finish(s, int(fd))
	}
}

// writeFD writes a small frame to a non-blocking socket. A frame the
// socket has no room for is dropped (a pong: the gateway pings again);
// one it takes only part of ends the connection, as half a frame would
// corrupt the stream.
func writeFD(fd int, frame []byte) {
	for {
		n, err := syscall.Write(fd, frame)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if n > 0 && n < len(frame) {
			shutdownFD(fd)
		}
		return
	}
}

func shutdownFD(fd int) { _ = syscall.Shutdown(fd, syscall.SHUT_RDWR) }
