package handler

import (
	"errors"
	"math/rand/v2"
	"net"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// A session's writing side holds no goroutine while it has nothing to
// send: Send starts flush when the queue goes from empty to not empty, and
// flush ends when it has emptied it. Pings come from a timer, and the close
// handshake runs on a goroutine of its own once the session closes. With
// most connections idle between notifications, that saves a goroutine
// stack per client.

// next takes the oldest queued frame. When the queue is empty it returns
// nil and marks the writer stopped, under the same lock Send checks it, so
// a frame queued after that starts a new flush.
func (s *wsSession) next() []byte {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.head == len(s.out) {
		s.writing = false
		s.noteIdleLocked()
		return nil
	}
	f := s.out[s.head]
	s.out[s.head] = nil
	s.head++
	s.queued -= int64(len(f))
	if s.head == len(s.out) {
		// Drained: start over at the front, keeping a small backing array.
		s.head = 0
		if cap(s.out) > 64 {
			s.out = nil
		} else {
			s.out = s.out[:0]
		}
	}
	return f
}

// flush writes queued frames until the queue is empty, after the rest of
// a frame a direct write left.
func (s *wsSession) flush() {
	if rest := s.rest; rest != nil {
		s.rest = nil
		// Even when closing: the close frame must not start mid-frame.
		// sendDirect handed over wmu with the rest.
		c := s.conn.UnderlyingConn()
		_ = c.SetWriteDeadline(time.Now().Add(time.Duration(s.handler().WriteTimeout)))
		_, err := c.Write(rest)
		s.wmu.Unlock()
		if err != nil {
			s.writeFailed(err, rest)
			return
		}
	}
	for frame := s.next(); frame != nil; frame = s.next() {
		// Once the session is closing, queued frames are dropped: the
		// close frame goes out next, so a slow client learns why it was
		// dropped. Draining the queue keeps Send from starting another
		// flush meanwhile.
		if s.ending.Load() {
			continue
		}
		s.wmu.Lock()
		_ = s.conn.SetWriteDeadline(time.Now().Add(time.Duration(s.handler().WriteTimeout)))
		// With permessage-deflate, small frames go out as they are:
		// compressing them costs more than the bytes it saves.
		s.conn.EnableWriteCompression(len(frame) >= wsCompressMinSize)
		err := s.conn.WriteMessage(websocket.TextMessage, frame)
		s.wmu.Unlock()
		if err != nil {
			s.writeFailed(err, frame)
			return
		}
	}
}

// writeFailed ends the session after a failed write of frame.
func (s *wsSession) writeFailed(err error, frame []byte) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.handler().rlog.warn(logClientSlow, "disconnecting slow websocket client",
			append(s.route().logFields(), frameMethod(frame), zap.String("reason", "write_timeout reached"))...)
	}
	// A write that failed or timed out leaves the socket unusable: close
	// it, or the hijacked connection stays. A session already closing
	// has sent its close frame, and writeClose closes the socket after
	// the grace.
	if s.ctx.Err() == nil {
		s.closeWith(0, "")
		_ = s.conn.Close()
	}
	s.drop()
}

// drop empties the queue after the writer failed and marks it stopped.
func (s *wsSession) drop() {
	for s.next() != nil {
	}
}

// pingAfter is the wait before a session's next ping: the interval give
// or take a tenth, so that clients that connected together (after a
// deploy or a network blip) are not all pinged, and do not all answer,
// in the same instant every interval. A client stays within the read
// deadline of two intervals.
func pingAfter(interval time.Duration) time.Duration {
	spread := interval / 5
	if spread <= 0 {
		return interval
	}
	return interval - spread/2 + rand.N(spread)
}

// sendPing runs on the ping timer.
func (s *wsSession) sendPing() {
	s.qmu.Lock()
	if s.shut || s.ending.Load() {
		s.qmu.Unlock()
		return
	}
	s.pinging = true
	s.qmu.Unlock()
	s.wmu.Lock()
	var err error
	closed := s.closeSent
	switch {
	case closed:
		// Nothing follows a close frame.
	case s.raw != nil:
		err = s.writeSmallDirect(pingFrame)
	default:
		err = s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Duration(s.handler().WriteTimeout)))
	}
	s.wmu.Unlock()
	s.qmu.Lock()
	s.pinging = false
	s.noteIdleLocked()
	s.qmu.Unlock()
	if closed {
		return
	}
	if err != nil {
		// A session closing already (or refused at registration) is
		// being taken down by whoever set ending.
		if !s.ending.Load() {
			s.closeWith(0, "")
			_ = s.conn.Close()
		}
		return
	}
	s.ping.Reset(pingAfter(time.Duration(s.handler().PingInterval)))
	// writeClose may have stopped the timer between the check above and
	// the Reset: stop it again, so a closed session is not kept until the
	// next tick.
	if s.ending.Load() {
		s.ping.Stop()
	}
}

// noteIdleLocked tells writeClose, waiting for the writers of a closed
// socket, that none is left. s.qmu is held.
func (s *wsSession) noteIdleLocked() {
	if s.idle != nil && !s.writing && !s.pinging {
		close(s.idle)
		s.idle = nil
	}
}

// writeClose sends the close frame, when the session has a code to send,
// and closes the socket. It runs once, when the session starts closing;
// gorilla serialises it with a frame flush may be writing.
func (s *wsSession) writeClose() {
	s.ping.Stop()
	s.mu.Lock()
	code, text := s.closeCode, s.closeText
	s.mu.Unlock()
	if code > 0 {
		s.wmu.Lock()
		err := s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Duration(s.handler().WriteTimeout)))
		s.closeSent = true
		s.wmu.Unlock()
		if err == nil {
			// Let the reader take in what the client still sends, up to its
			// close frame: see closeGrace.
			t := time.NewTimer(closeGrace)
			select {
			case <-s.readDone:
			case <-t.C:
			}
			t.Stop()
		}
	}
	_ = s.conn.Close()
	// The session's goroutines are counted until this returns (see
	// closeWith): wait for a flush or a ping still writing, which the
	// closed socket makes fail at once, so none outlives Stop.
	s.qmu.Lock()
	s.shut = true
	var idle chan struct{}
	if s.writing || s.pinging {
		s.idle = make(chan struct{})
		idle = s.idle
	}
	s.qmu.Unlock()
	if idle != nil {
		<-idle
	}
}
