package main

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// fanoutPollers is how many epoll loops read the fan-out clients. The
// bench shares the machine with the gateway it measures, so its own CPU
// per notification matters: with 10,000 clients a goroutine per socket
// (a wake-up, a read, and a read that finds nothing) took 110-121 ms of
// CPU per block on 2 CPUs, a loop per CPU about 100 ms (each sleeps and
// is woken many times per block), one loop 57-77 ms: it stays awake
// through the burst of a block.
const fanoutPollers = 1

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
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			break
		}
		p := &poller{epfd: fd, base: base, subs: make(map[int32]*subscriber)}
		r.polls = append(r.polls, p)
		go p.run()
	}
	return r
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
}

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
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		s.bad, s.badMsg = s.bad+1, "epoll: "+err.Error()
		p.finish(s, fd)
	}
	return nil
}

func (p *poller) run() {
	defer syscall.Close(p.epfd)
	events := make([]syscall.EpollEvent, 256)
	ready := make([]*subscriber, len(events))
	buf := make([]byte, 64<<10)
	for {
		p.mu.Lock()
		over := p.sealed && len(p.subs) == 0
		p.mu.Unlock()
		if over {
			return
		}
		n, err := syscall.EpollWait(p.epfd, events, 50)
		at := time.Since(p.base)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			p.finishAll()
			return
		}
		p.mu.Lock()
		for i, ev := range events[:n] {
			ready[i] = p.subs[ev.Fd]
		}
		p.mu.Unlock()
		for i, ev := range events[:n] {
			if s := ready[i]; s != nil && !p.read(s, int(ev.Fd), buf, at) {
				p.finish(s, int(ev.Fd))
			}
		}
	}
}

// read takes what the socket holds; false once the connection is over.
// at is when epoll reported the socket readable: the time the data was
// there, not when this loop got round to it.
func (p *poller) read(s *subscriber, fd int, buf []byte, at time.Duration) bool {
	for {
		n, err := syscall.Read(fd, buf)
		if n > 0 {
			s.at = at
			if s.frames.feed(buf[:n], s) != nil {
				return false
			}
			if n == len(buf) {
				continue
			}
			return true
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
