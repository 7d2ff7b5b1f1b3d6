package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elara-gateway/elara/internal/wsraw"
)

const (
	subscribeHeads = `{"jsonrpc":"2.0","id":1,"method":"chain_subscribeNewHeads","params":[]}`
	followHeads    = `{"jsonrpc":"2.0","id":1,"method":"chainHead_v1_follow","params":[false]}`
)

// subscriber is one fan-out client: a WebSocket connection subscribed to
// new heads, whose reader records every notification with its arrival
// time. recs and bad belong to the reader until done is closed.
type subscriber struct {
	pattern []byte // `"subscription":"<id>"`, in each notification
	recs    []reception
	newest  atomic.Uint64 // highest block number received (follow: newBlock events)
	follow  bool          // a chainHead_v1_follow client
	hashes  []string      // follow: the block hash of each of recs (numbers set afterwards)
	bad     int           // messages that are not our head notifications
	badMsg  string
	done    chan struct{}

	frames frameReader
	at     time.Duration // when the bytes being parsed arrived (the last of them)
	// A poller's (fanout_poll_linux.go): when epoll reported the socket
	// since it was last read, whether and since when it waits to be read,
	// and, during a read, how many frames came before it.
	reports  []time.Duration
	waiting  bool
	since    time.Duration
	readFrom int
	// Until the subscription's reply: the notifications before it, and
	// what made the reply unusable.
	early   [][]byte
	earlyAt []time.Duration
	subErr  error

	// wmu orders writes (pongs from the reader, the close frame) and the
	// end of the socket: conn until a poller takes the socket over as fd
	// (fanout_poll_linux.go), -1 before and after.
	wmu  sync.Mutex
	conn net.Conn
	fd   int
}

// subscribeClient connects, subscribes and waits for the subscription id;
// notifications that come before it are recorded too. base is the origin
// of reception times.
func subscribeClient(ctx context.Context, url string, deflate, follow bool, base time.Time, timeout time.Duration, capacity int) (*subscriber, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, br, agreed, err := dialWebSocket(ctx, url, deflate)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	s := &subscriber{conn: conn, fd: -1, recs: make([]reception, 0, capacity), done: make(chan struct{}), follow: follow}
	s.frames.deflate = agreed
	request := subscribeHeads
	if follow {
		request = followHeads
	}
	if _, err := conn.Write(wsraw.Frame(wsraw.OpText, []byte(request))); err != nil {
		conn.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	buf := make([]byte, 4096)
	for s.pattern == nil {
		n, err := br.Read(buf)
		s.at = time.Since(base)
		if n > 0 {
			if ferr := s.frames.feed(buf[:n], s); ferr != nil {
				err = ferr
			}
		}
		if s.subErr != nil {
			err = s.subErr
		}
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("subscribe: %w", err)
		}
	}
	// What came with the reply, before a reader takes over the socket.
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		if err := s.frames.feed(b, s); err != nil {
			conn.Close()
			return nil, fmt.Errorf("after subscribing: %w", err)
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return s, nil
}

// message takes the subscription's reply, then notifications.
func (s *subscriber) message(msg []byte) {
	at := s.frameAt()
	if s.pattern != nil {
		s.handle(msg, at)
		return
	}
	id, isReply, err := subscriptionID(msg)
	switch {
	case err != nil:
		if s.subErr == nil {
			s.subErr = err
		}
	case !isReply:
		s.early, s.earlyAt = append(s.early, bytes.Clone(msg)), append(s.earlyAt, at)
	default:
		s.pattern = []byte(`"subscription":"` + id + `"`)
		for i, m := range s.early {
			s.handle(m, s.earlyAt[i])
		}
		s.early, s.earlyAt = nil, nil
	}
}

// frameAt is when the frame that completes the message being parsed
// arrived. s.at is when the last bytes of the read did; a poller's
// reports say more for the frames before them. The i-th report since
// the last read came after at least i arrivals, and each arrival ends
// with a whole frame, so the i-th frame of the read was there by the
// i-th report. That holds while the gateway writes each frame with one
// system call that the socket takes whole (frames.segment): a frame
// larger than a segment may come in pieces, and so may one whose write
// the socket cut short, which needs a full receive buffer (the poller
// reads every socket within readAfter, and the fan-out's frames are
// small). Once a frame may have come in pieces, the frames after it get
// s.at.
func (s *subscriber) frameAt() time.Duration {
	i := s.frames.parsed - s.readFrom // this frame's place in the read, from 1
	if s.frames.pieces || i < 1 || i > len(s.reports) {
		return s.at
	}
	return min(s.reports[i-1], s.at)
}

// ping answers the server's ping: the gateway closes clients that stay
// silent.
func (s *subscriber) ping(payload []byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.writeLocked(wsraw.Frame(wsraw.OpPong, payload))
}

// readLoop records notifications until the connection closes: the
// reader where no poller takes the socket over.
func (s *subscriber) readLoop(base time.Time) {
	defer close(s.done)
	buf := make([]byte, 2048)
	for {
		n, err := s.conn.Read(buf)
		s.at = time.Since(base)
		if n > 0 && s.frames.feed(buf[:n], s) != nil {
			break
		}
		if err != nil {
			break
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.conn.Close()
	s.conn = nil
}

// subscriptionID reads the reply to the subscribe request; isReply is
// false for anything else (a notification).
func subscriptionID(msg []byte) (id string, isReply bool, err error) {
	var r struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(msg, &r); err != nil {
		return "", false, fmt.Errorf("bad message %.120q: %v", msg, err)
	}
	if r.Method != "" || r.ID == nil {
		return "", false, nil
	}
	switch {
	case r.Error != nil:
		return "", true, fmt.Errorf("subscribe: error %.200s", r.Error)
	case string(r.ID) != "1":
		return "", true, fmt.Errorf("subscribe: reply id %s", r.ID)
	case json.Unmarshal(r.Result, &id) != nil || id == "":
		return "", true, fmt.Errorf("subscribe: result %.120s is not a subscription id", r.Result)
	}
	return id, true, nil
}

func (s *subscriber) handle(msg []byte, at time.Duration) {
	if s.follow {
		s.handleFollow(msg, at)
		return
	}
	num, ok := headNumber(msg)
	if !ok || !bytes.Contains(msg, s.pattern) {
		if s.bad++; s.badMsg == "" {
			s.badMsg = fmt.Sprintf("%.200s", msg)
		}
		return
	}
	s.recs = append(s.recs, reception{num: num, at: at})
	if num > s.newest.Load() {
		s.newest.Store(num)
	}
}

// handleFollow records newBlock events; the other events of a follow
// (initialized, bestBlockChanged, finalized) are expected and skipped.
func (s *subscriber) handleFollow(msg []byte, at time.Duration) {
	var n struct {
		Params struct {
			Result struct {
				Event     string `json:"event"`
				BlockHash string `json:"blockHash"`
			} `json:"result"`
		} `json:"params"`
	}
	if !bytes.Contains(msg, s.pattern) || json.Unmarshal(msg, &n) != nil {
		if s.bad++; s.badMsg == "" {
			s.badMsg = fmt.Sprintf("%.200s", msg)
		}
		return
	}
	switch n.Params.Result.Event {
	case "newBlock":
		s.recs = append(s.recs, reception{at: at})
		s.hashes = append(s.hashes, n.Params.Result.BlockHash)
		s.newest.Add(1)
	case "initialized", "bestBlockChanged", "finalized":
	default:
		if s.bad++; s.badMsg == "" {
			s.badMsg = fmt.Sprintf("%.200s", msg)
		}
	}
}

// close says goodbye and ends the connection, which ends its reader.
func (s *subscriber) close() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.writeLocked(closeFrame)
	s.shutdownLocked()
}

// dialParallel is how many clients connect at once: enough to connect
// 10,000 in seconds, few enough not to look like a SYN flood.
const dialParallel = 32

// connectSubscribers connects n clients and starts their readers. It
// returns the clients that subscribed, how many failed and the first
// error.
func connectSubscribers(ctx context.Context, url string, deflate, follow bool, n int, base time.Time, timeout time.Duration, capacity int) ([]*subscriber, int, error) {
	readers := newReaders(base)
	defer readers.seal()
	subs := make([]*subscriber, n)
	var (
		next     atomic.Int64
		failed   atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for range min(dialParallel, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				s, err := subscribeClient(ctx, url, deflate, follow, base, timeout, capacity)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				subs[i] = s
				readers.add(s)
			}
		})
	}
	wg.Wait()
	out := subs[:0]
	for _, s := range subs {
		if s != nil {
			out = append(out, s)
		}
	}
	return out, int(failed.Load()), firstErr
}

func (s *subscriber) writeLocked(frame []byte) {
	switch {
	case s.fd >= 0:
		writeFD(s.fd, frame)
	case s.conn != nil:
		_ = s.conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = s.conn.Write(frame)
	}
}

// shutdownLocked ends the connection; its reader sees the end and
// finishes (closes done).
func (s *subscriber) shutdownLocked() {
	switch {
	case s.fd >= 0:
		shutdownFD(s.fd)
	case s.conn != nil:
		_ = s.conn.Close()
	}
}
