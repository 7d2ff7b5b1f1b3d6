// Package multiwrite writes small buffers to many sockets with few system
// calls: a fan-out of one notification to thousands of WebSocket clients
// is one write per client, and on a virtual machine the system call
// around each write costs as much as a third of it. On Linux a batch goes
// to the kernel through io_uring, one io_uring_enter for up to 64
// sockets; elsewhere, or where io_uring is unavailable or refused (a
// seccomp profile, kernel.io_uring_disabled), each buffer is written with
// its own write(2). Every write is non-blocking either way: a socket that
// cannot take all of a buffer takes what it can, and the caller queues
// the rest.
package multiwrite

import (
	"errors"
	"sync"
	"syscall"
)

// ringEntries is how many writes go to the kernel in one call: a
// fan-out chunk.
const ringEntries = 64

// Done is told how a buffer's write went: n bytes taken (the rest did
// not fit), or the socket is broken. buf is nil when the buffer must not
// be reused (the kernel may still read it).
type Done interface {
	Written(buf []byte, n int, err error)
}

// Batch collects writes and makes them with Flush. A batch is used by one
// goroutine at a time; each socket appears in it at most once.
type Batch struct {
	items []item
	ring  *ring // nil: a write(2) each
}

type item struct {
	raw  syscall.RawConn
	buf  []byte
	done Done
	// During Flush: the descriptor, held open by Control, and the result.
	fd       uintptr
	pinned   bool
	complete bool // written (io_uring: its completion came)
	n        int
	err      error
	// pin is this slot's Control callback, made once per slot.
	pin func(fd uintptr)
}

var batches = sync.Pool{New: func() any { return new(Batch) }}

// Get returns an empty batch; Put it back when done.
func Get() *Batch {
	b := batches.Get().(*Batch)
	if b.ring == nil {
		b.ring = getRing()
	}
	return b
}

// Put returns b for reuse, first making any write still in it.
func (b *Batch) Put() {
	b.Flush()
	putRing(b.ring)
	b.ring = nil
	batches.Put(b)
}

// Add queues a write of buf to the socket raw; done hears how it went
// once Flush has made it.
func (b *Batch) Add(raw syscall.RawConn, buf []byte, done Done) {
	if len(b.items) < cap(b.items) {
		b.items = b.items[:len(b.items)+1]
	} else {
		b.items = append(b.items, item{})
	}
	i := len(b.items) - 1
	it := &b.items[i]
	it.raw, it.buf, it.done = raw, buf, done
	if it.pin == nil {
		it.pin = func(fd uintptr) {
			it := &b.items[i]
			it.fd, it.pinned = fd, true
			b.pinFrom(i + 1)
		}
	}
}

// Len is how many writes wait for Flush.
func (b *Batch) Len() int { return len(b.items) }

// Flush makes the queued writes, then tells each its result in the order
// they were added.
func (b *Batch) Flush() {
	if len(b.items) == 0 {
		return
	}
	b.pinFrom(0)
	for i := range b.items {
		it := &b.items[i]
		it.done.Written(it.buf, it.n, it.err)
		// Keep the slot and its callback; let go of what it pointed to.
		*it = item{pin: it.pin}
	}
	b.items = b.items[:0]
}

// pinFrom holds the descriptors of items[i:] open, each inside the
// previous one's Control (a descriptor closed meanwhile cannot be reused
// for another socket while its number is in the batch), then writes.
func (b *Batch) pinFrom(i int) {
	for ; i < len(b.items); i++ {
		it := &b.items[i]
		if err := it.raw.Control(it.pin); err != nil {
			it.err = err // closed: Control did not call pin, so go on here
			continue
		}
		return // pin went on with the rest, and wrote
	}
	b.writeAll()
}

// writeAll writes every pinned item: through the ring, then one at a
// time whatever the ring left.
func (b *Batch) writeAll() {
	if b.ring != nil && !b.ring.broken {
		b.ring.send(b.items)
	}
	for i := range b.items {
		it := &b.items[i]
		if !it.pinned || it.complete || it.err != nil {
			continue
		}
		it.n, it.err = writeFD(it.fd, it.buf)
		it.complete = true
	}
}

// Write writes buf to the socket raw at once with one non-blocking
// write(2), never waiting for room: it returns how many bytes the socket
// took, and an error only when the socket is broken. Control, not
// RawConn.Write: the caller orders its writes to the socket, and a write
// that never waits needs neither the descriptor's write lock nor its
// poller state, nor a deadline.
func Write(raw syscall.RawConn, buf []byte) (int, error) {
	var (
		n   int
		err error
	)
	if cerr := raw.Control(func(fd uintptr) { n, err = writeFD(fd, buf) }); cerr != nil {
		return 0, cerr
	}
	return n, err
}

// writeFD is one non-blocking write(2), retried if a signal interrupts it.
func writeFD(fd uintptr, buf []byte) (int, error) {
	for {
		n, err := syscall.Write(int(fd), buf)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		return result(n, err)
	}
}

// result turns a non-blocking write's outcome into bytes taken and an
// error only for a broken socket.
func result(n int, err error) (int, error) {
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
			return 0, nil
		}
		return 0, err
	}
	return max(n, 0), nil
}
