package multiwrite

import (
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
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
	// broken is set when the kernel did not complete a write at once: the
	// ring and the buffers it may still read are never reused.
	broken bool
	held   [][]byte
}

var (
	ringsMu sync.Mutex
	rings   []*ring // idle
	made    int
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
	r := getRing()
	putRing(r)
	return r != nil
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
		refused.Store(true)
		ringsMu.Lock()
		made--
		ringsMu.Unlock()
		return nil
	}
	return r
}

func putRing(r *ring) {
	if r == nil || r.broken {
		return // a broken ring stays out of use, and so does its memory
	}
	ringsMu.Lock()
	defer ringsMu.Unlock()
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
		if _, err := syscall.Write(fds[0], fill); err != nil {
			if err == syscall.EINTR {
				continue
			}
			break
		}
	}
	items := []item{{buf: []byte("probe"), fd: uintptr(fds[0]), pinned: true}}
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
// io_uring_enter, and reports false when it wrote nothing (the caller
// then writes them one at a time). Each send is non-blocking
// (MSG_DONTWAIT), so the kernel completes it during the submission; one
// it does not complete within waitLimit breaks the ring (never expected).
func (r *ring) send(items []item) bool {
	todo := make([]int, 0, ringEntries)
	sent := false
	for start := 0; start < len(items); {
		todo = todo[:0]
		for ; start < len(items) && len(todo) < len(r.sqes); start++ {
			if it := &items[start]; it.pinned && it.err == nil {
				todo = append(todo, start)
			}
		}
		if len(todo) == 0 {
			continue
		}
		if !r.sendGroup(items, todo) {
			return sent
		}
		sent = true
	}
	return true
}

// waitLimit bounds the wait for a send the kernel did not complete at
// once.
const waitLimit = int64(1e9) // ns

func (r *ring) sendGroup(items []item, todo []int) bool {
	tail := *r.sqTail // only this goroutine submits
	mask := *r.sqMask
	for j, i := range todo {
		it := &items[i]
		idx := (tail + uint32(j)) & mask
		r.sqes[idx] = sqe{opcode: opSend, fd: int32(it.fd),
			addr: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(it.buf)))), len: uint32(len(it.buf)),
			msgFlags: syscall.MSG_DONTWAIT | syscall.MSG_NOSIGNAL, userData: uint64(j)}
		r.sqArray[idx] = idx
	}
	atomic.StoreUint32(r.sqTail, tail+uint32(len(todo)))
	ringSends.Add(int64(len(todo)))
	submitted := 0
	for submitted < len(todo) {
		n, _, errno := syscall.Syscall6(sysIOURingEnter, uintptr(r.fd), uintptr(len(todo)-submitted), 0, 0, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 || n == 0 {
			if submitted == 0 {
				// Nothing went: take the entries back and write the usual way.
				atomic.StoreUint32(r.sqTail, tail)
				return false
			}
			r.breakWith(items, todo)
			return true
		}
		submitted += int(n)
	}
	got := r.reap(items, todo, 0)
	if got < len(todo) {
		limit := syscall.Timespec{Sec: waitLimit / 1e9}
		arg := geteventsArg{ts: uint64(uintptr(unsafe.Pointer(&limit)))}
		for got < len(todo) {
			_, _, errno := syscall.Syscall6(sysIOURingEnter, uintptr(r.fd), 0, uintptr(len(todo)-got),
				enterGetEvents|enterExtArg, uintptr(unsafe.Pointer(&arg)), unsafe.Sizeof(arg))
			before := got
			got = r.reap(items, todo, got)
			if errno != 0 && errno != syscall.EINTR && got == before {
				r.breakWith(items, todo)
				break
			}
		}
		runtime.KeepAlive(&limit)
	}
	for _, i := range todo {
		runtime.KeepAlive(items[i].buf)
	}
	return true
}

// reap takes the completions there are, returning how many of todo's
// writes have completed (got so far, plus these).
func (r *ring) reap(items []item, todo []int, got int) int {
	head := atomic.LoadUint32(r.cqHead)
	tail := atomic.LoadUint32(r.cqTail)
	for ; head != tail; head++ {
		c := r.cqes[head&r.cqMask]
		if j := int(c.userData); j < len(todo) {
			it := &items[todo[j]]
			if c.res < 0 {
				it.n, it.err = result(0, syscall.Errno(-c.res))
			} else {
				it.n, it.err = result(int(c.res), nil)
			}
			it.complete = true
			got++
		}
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
