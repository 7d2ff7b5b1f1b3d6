package handler

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/elara-gateway/elara/internal/multiwrite"
)

// A frame sent to a session with nothing queued and no writer running is
// written at once by the sender, with one non-blocking write(2) on the
// socket: a new head fanned out to 10,000 clients then costs 10,000
// system calls, not 10,000 goroutines each setting a deadline and going
// through the WebSocket library's writer. What the socket does not take
// (a full send buffer: a slow client) goes to the session's writer
// goroutine, which writes it first, with the write deadline, before any
// later frame. The direct path needs the socket itself: a plain TCP or
// Unix connection. TLS connections (and frames large enough to be
// compressed) go through the writer as before.

// directConn returns the socket a session may write to directly, or nil.
func directConn(c net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// directMaxFrame is the largest payload written directly: frames that
// may be compressed go through the library's writer.
const directMaxFrame = wsCompressMinSize - 1

// directWritesCut counts direct writes the socket took only part of (a
// test checks that path is taken).
var directWritesCut atomic.Int64

// directBufs hold a frame's header and payload for one write(2).
var directBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, directMaxFrame+4)
	return &b
}}

// appendTextFrameHeader appends the header of an unmasked, final text
// frame of n bytes (RFC 6455 §5.2), as a server sends it.
func appendTextFrameHeader(b []byte, n int) []byte {
	const finText = 0x80 | 0x1
	switch {
	case n < 126:
		return append(b, finText, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, finText, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, finText, 127), uint64(n))
	}
}

// writeNow writes buf with one non-blocking write(2), never waiting for
// the socket (that is the writer's job). It returns how many bytes the
// socket took, and an error only when the socket is broken. The caller
// holds s.wmu.
func (s *wsSession) writeNow(buf []byte) (int, error) {
	// s.wmu orders the session's writes to the socket, so the write skips
	// the descriptor's own write lock, poller state and deadline: about a
	// third of the gateway's CPU per notification outside the system call
	// went there. (One write escapes wmu: the close frame gorilla's reader
	// sends itself on a protocol error. It may land inside a frame being
	// written; the session is torn down then anyway, and the client that
	// broke the protocol sees a garbled end.)
	return multiwrite.Write(s.raw, buf)
}

// sendDirect writes f at once if the session is idle, reporting
// whether it took the frame. It is called with s.qmu held and the queue
// empty, and returns with s.qmu held; while it writes, writing is set, so
// frames sent meanwhile queue behind it. A frame with a batch joins it
// and is written when the batch is flushed (Written finishes then): the
// session holds wmu, and stays writing, until then.
func (s *wsSession) sendDirect(f *outFrame) bool {
	if s.raw == nil || f.size() > directMaxFrame || !s.wmu.TryLock() {
		return false
	}
	if s.closeSent {
		// Nothing follows a close frame: the session is ending anyway.
		s.wmu.Unlock()
		return true
	}
	s.writing = true
	s.qmu.Unlock()
	s.direct = directBufs.Get().(*[]byte)
	buf := f.appendTo(appendTextFrameHeader((*s.direct)[:0], f.size()))
	if f.batch != nil {
		f.batch.Add(s.raw, buf, s)
	} else {
		n, err := s.writeNow(buf)
		s.Written(buf, n, err)
	}
	s.qmu.Lock()
	return true
}

// Written implements multiwrite.Done: it finishes a direct write of buf,
// of which the socket took n bytes. The caller holds s.wmu and s.qmu is
// not held; writing is set.
func (s *wsSession) Written(buf []byte, n int, err error) {
	var rest []byte
	if n < len(buf) && err == nil {
		rest = append([]byte(nil), buf[n:]...)
		directWritesCut.Add(1)
	}
	if buf != nil { // nil: the kernel may still read it; it is not reused
		*s.direct = buf[:0]
		directBufs.Put(s.direct)
	}
	s.direct = nil
	if rest == nil {
		s.wmu.Unlock()
	} // else the writer holds on to wmu until it has written the rest
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if err != nil {
		// As when the writer fails: the socket is unusable.
		s.qmu.Unlock()
		if s.ctx.Err() == nil {
			s.closeWith(0, "")
			_ = s.conn.Close()
		}
		s.drop()
		s.qmu.Lock()
		return
	}
	if rest == nil && s.head == len(s.out) {
		s.writing = false
		s.noteIdleLocked()
		return
	}
	// The rest of the frame, then whatever queued meanwhile, go through
	// the writer goroutine, which is handed wmu: no ping, pong or close
	// frame may start inside this one.
	s.rest = rest
	go s.flush()
}

// pingFrame is an empty ping as a server sends it (RFC 6455 §5.5.2).
var pingFrame = []byte{0x80 | 0x9, 0}

// writeSmallDirect writes a small frame (a ping) with one non-blocking
// write, as a notification is; what the socket does not take is written
// with the write deadline. The caller holds s.wmu. With 10,000 clients
// pinged every interval this saves the library's frame building and a
// deadline per ping.
func (s *wsSession) writeSmallDirect(frame []byte) error {
	n, err := s.writeNow(frame)
	if err != nil || n == len(frame) {
		return err
	}
	c := s.conn.UnderlyingConn()
	_ = c.SetWriteDeadline(time.Now().Add(time.Duration(s.handler().WriteTimeout)))
	_, err = c.Write(frame[n:])
	return err
}
