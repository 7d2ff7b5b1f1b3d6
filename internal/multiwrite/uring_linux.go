package multiwrite

import (
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// The io_uring interface (include/uapi/linux/io_uring.h), as much of it
// as sending needs.
const (
	sysIOURingSetup = 425
	sysIOURingEnter = 426

	offSQRing = 0
	offSQEs   = 0x10000000

	featSingleMmap = 1 << 0
	featExtArg     = 1 << 8

	enterGetEvents = 1 << 0
	enterExtArg    = 1 << 3

	opSend = 26
)

type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

// sqe is a submission queue entry (64 bytes).
type sqe struct {
	opcode, flags         uint8
	ioprio                uint16
	fd                    int32
	off, addr             uint64
	len, msgFlags         uint32
	userData              uint64
	bufIndex, personality uint16
	spliceFdIn            int32
	addr3, pad            uint64
}

// cqe is a completion queue entry (16 bytes).
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// geteventsArg is io_uring_getevents_arg: how long a wait may last.
type geteventsArg struct {
	sigmask   uint64
	sigmaskSz uint32
	pad       uint32
	ts        uint64
}

// kernelTimespec is __kernel_timespec (64-bit fields on every platform).
type kernelTimespec struct{ sec, nsec int64 }

// ring is one io_uring instance, used by one batch at a time.
type ring struct {
	fd             int
	mem, sqeMem    []byte
	sqTail, sqMask *uint32
	sqArray        []uint32
	sqes           []sqe
	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           []cqe
	// seq tells one submission's completions from a late one's.
	seq uint32
	// A wait's limit and argument, on the heap: the kernel reads them
	// through addresses the garbage collector does not know.
	limit kernelTimespec
	arg   geteventsArg
	// broken is set when the kernel did not complete a write at once: the
	// ring and the buffers it may still read are never reused or freed.
	broken bool
	held   [][]byte
}

var (
	ringsMu sync.Mutex
	rings   []*ring // idle
	made    int
	// brokenRings keeps broken rings, and the buffers they hold, alive.
	brokenRings []*ring
	// refused is set once io_uring could not be set up: batches write
	// one buffer at a time from then on.
	refused atomic.Bool
	// ringSends counts writes made through a ring (tests check the path).
	ringSends atomic.Int64
)

// maxRings bounds the rings a process keeps: one per fan-out goroutine.
func maxRings() int { return 2 * runtime.GOMAXPROCS(0) }

// Batched reports whether batches go to the kernel in one call; it sets
// a ring up to find out.
func Batched() bool {
	if r := getRing(); r != nil {
		putRing(r)
		return true
	}
	ringsMu.Lock()
	defer ringsMu.Unlock()
	return made > 0 && !refused.Load() // all rings busy
}

func getRing() *ring {
	if refused.Load() {
		return nil
	}
	ringsMu.Lock()
	if n := len(rings); n > 0 {
		r := rings[n-1]
		rings = rings[:n-1]
		ringsMu.Unlock()
		return r
	}
	if made >= maxRings() {
		ringsMu.Unlock()
		return nil
	}
	made++
	ringsMu.Unlock()
	r, err := newRing()
	if err != nil {
		// A kernel without io_uring, or one that refuses it, refuses it
		// for good; a lack of descriptors or memory may pass.
		switch err {
		case syscall.ENOSYS, syscall.EPERM, syscall.EACCES, syscall.EINVAL, syscall.ENOTSUP:
			refused.Store(true)
		}
		ringsMu.Lock()
		made--
		ringsMu.Unlock()
		return nil
	}
	return r
}

func putRing(r *ring) {
	if r == nil {
		return
	}
	ringsMu.Lock()
	defer ringsMu.Unlock()
	if r.broken {
		// Its memory and the buffers the kernel may still read stay
		// allocated; and a kernel that left a send waiting once gets no
		// more batches.
		brokenRings = append(brokenRings, r)
		made--
		refused.Store(true)
		return
	}
	if len(rings) < maxRings() {
		rings = append(rings, r)
		return
	}
	made--
	r.close()
}

func newRing() (*ring, error) {
	var p uringParams
	fd, _, errno := syscall.Syscall(sysIOURingSetup, ringEntries, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, errno
	}
	r := &ring{fd: int(fd)}
	// A wait must be able to time out, and one mapping must hold both
	// queues' rings (kernels from 5.11 do both).
	if p.features&featExtArg == 0 || p.features&featSingleMmap == 0 {
		r.close()
		return nil, syscall.ENOSYS
	}
	size := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(cqe{})))
	var err error
	if r.mem, err = syscall.Mmap(r.fd, offSQRing, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE); err != nil {
		r.close()
		return nil, err
	}
	if r.sqeMem, err = syscall.Mmap(r.fd, offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(sqe{})), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE); err != nil {
		r.close()
		return nil, err
	}
	base := unsafe.Pointer(&r.mem[0])
	r.sqTail = (*uint32)(unsafe.Add(base, p.sqOff.tail))
	r.sqMask = (*uint32)(unsafe.Add(base, p.sqOff.ringMask))
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Add(base, p.sqOff.array)), p.sqEntries)
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	r.cqHead = (*uint32)(unsafe.Add(base, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(base, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(base, p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*cqe)(unsafe.Add(base, p.cqOff.cqes)), p.cqEntries)
	if !r.completesAtOnce() {
		r.close()
		return nil, syscall.ENOTSUP
	}
	return r, nil
}

// probeFrame is what the probe sends: on the heap, as the kernel may hold
// on to it if the probe fails.
var probeFrame = []byte("probe")

// completesAtOnce checks that this kernel ends a non-blocking send to a
// full socket during the submission, as send relies on, rather than
// waiting for room: it sends to a full socket pair.
func (r *ring) completesAtOnce() bool {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fds[1])
	defer syscall.Close(fds[0])
	fill := make([]byte, 64<<10)
	for {
		_, err := syscall.Write(fds[0], fill)
		if err == syscall.EINTR || err == nil {
			continue
		}
		if err != syscall.EAGAIN {
			return false
		}
		break
	}
	items := []item{{buf: probeFrame, fd: uintptr(fds[0]), pinned: true}}
	tail := *r.sqTail
	idx := tail & *r.sqMask
	r.sqes[idx] = sqe{opcode: opSend, fd: int32(fds[0]), addr: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(items[0].buf)))),
		len: uint32(len(items[0].buf)), msgFlags: syscall.MSG_DONTWAIT | syscall.MSG_NOSIGNAL}
	r.sqArray[idx] = idx
	atomic.StoreUint32(r.sqTail, tail+1)
	for {
		n, _, errno := syscall.Syscall6(sysIOURingEnter, uintptr(r.fd), 1, 0, 0, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 || n != 1 {
			return false
		}
		break
	}
	// A send left waiting is cancelled when the ring is closed.
	return r.reap(items, []int{0}, 0) == 1 && items[0].complete && items[0].n == 0 && items[0].err == nil
}

func (r *ring) close() {
	if r.sqeMem != nil {
		_ = syscall.Munmap(r.sqeMem)
	}
	if r.mem != nil {
		_ = syscall.Munmap(r.mem)
	}
	_ = syscall.Close(r.fd)
}

// send writes the pinned items still to write, up to ringEntries per
// io_uring_enter. Items it leaves incomplete and without an error are
// for the caller to write one at a time (a ring that broke, a group the
// kernel would not take). Each send is non-blocking (MSG_DONTWAIT), so
// the kernel completes it during the submission; one it does not
// complete within waitLimit breaks the ring (never expected: newRing
// checks the kernel does this).
func (r *ring) send(items []item) {
	todo := make([]int, 0, ringEntries)
	for start := 0; start < len(items) && !r.broken; {
		todo = todo[:0]
		for ; start < len(items) && len(todo) < len(r.sqes); start++ {
			if it := &items[start]; it.pinned && !it.complete && it.err == nil {
				todo = append(todo, start)
			}
		}
		if len(todo) > 0 && !r.sendGroup(items, todo) {
			return
		}
	}
}

// waitLimit bounds the wait for a send the kernel did not complete at
// once.
const waitLimit = time.Second

// sendGroup submits todo's items and reaps their completions; false if
// the kernel took none of them.
func (r *ring) sendGroup(items []item, todo []int) bool {
	r.seq++
	tail := *r.sqTail // only this goroutine submits
	mask := *r.sqMask
	for j, i := range todo {
		it := &items[i]
		idx := (tail + uint32(j)) & mask
		r.sqes[idx] = sqe{opcode: opSend, fd: int32(it.fd),
			addr: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(it.buf)))), len: uint32(len(it.buf)),
			msgFlags: syscall.MSG_DONTWAIT | syscall.MSG_NOSIGNAL, userData: uint64(r.seq)<<32 | uint64(j)}
		r.sqArray[idx] = idx
	}
	atomic.StoreUint32(r.sqTail, tail+uint32(len(todo)))
	submitted := 0
	for submitted < len(todo) {
		n, _, errno := syscall.Syscall6(sysIOURingEnter, uintptr(r.fd), uintptr(len(todo)-submitted), 0, 0, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 || n == 0 {
			if submitted == 0 {
				// Nothing went: take the entries back; the caller writes
				// them the usual way.
				atomic.StoreUint32(r.sqTail, tail)
				return false
			}
			// Some went: finish those; the rest stay unsubmitted (the ring
			// is not entered again) and are written the usual way.
			r.broken = true
			break
		}
		submitted += int(n)
	}
	ringSends.Add(int64(submitted))
	todo = todo[:submitted]
	got := r.reap(items, todo, 0)
	if got < len(todo) {
		deadline := time.Now().Add(waitLimit)
		for got < len(todo) {
			left := time.Until(deadline).Nanoseconds()
			if left <= 0 {
				r.breakWith(items, todo)
				break
			}
			r.limit = kernelTimespec{sec: left / 1e9, nsec: left % 1e9}
			r.arg = geteventsArg{ts: uint64(uintptr(unsafe.Pointer(&r.limit)))}
			_, _, errno := syscall.Syscall6(sysIOURingEnter, uintptr(r.fd), 0, uintptr(len(todo)-got),
				enterGetEvents|enterExtArg, uintptr(unsafe.Pointer(&r.arg)), unsafe.Sizeof(r.arg))
			before := got
			got = r.reap(items, todo, got)
			if errno != 0 && errno != syscall.EINTR && errno != syscall.ETIME && got == before {
				r.breakWith(items, todo)
				break
			}
		}
	}
	for _, i := range todo {
		runtime.KeepAlive(items[i].buf)
	}
	return true
}

// reap takes the completions there are, returning how many of todo's
// writes have completed (got so far, plus these). Completions of an
// earlier submission (none are expected) are dropped.
func (r *ring) reap(items []item, todo []int, got int) int {
	head := atomic.LoadUint32(r.cqHead)
	tail := atomic.LoadUint32(r.cqTail)
	for ; head != tail; head++ {
		c := r.cqes[head&r.cqMask]
		j := int(uint32(c.userData))
		if uint32(c.userData>>32) != r.seq || j >= len(todo) || items[todo[j]].complete {
			continue
		}
		it := &items[todo[j]]
		if c.res < 0 {
			it.n, it.err = result(0, syscall.Errno(-c.res))
		} else {
			it.n, it.err = result(int(c.res), nil)
		}
		it.complete = true
		got++
	}
	atomic.StoreUint32(r.cqHead, head)
	return got
}

// breakWith gives up on the ring: writes whose completion is missing
// count as failed, and their buffers, which the kernel may still read,
// stay with the ring, which is never used again.
func (r *ring) breakWith(items []item, todo []int) {
	r.broken = true
	for _, i := range todo {
		it := &items[i]
		if !it.complete {
			it.err = syscall.EIO
			r.held = append(r.held, it.buf)
			it.buf = nil
		}
	}
}
