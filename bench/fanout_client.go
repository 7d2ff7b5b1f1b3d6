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

	"github.com/gorilla/websocket"
)

const (
	subscribeHeads = `{"jsonrpc":"2.0","id":1,"method":"chain_subscribeNewHeads","params":[]}`
	followHeads    = `{"jsonrpc":"2.0","id":1,"method":"chainHead_v1_follow","params":[false]}`
)

// subDialer keeps the buffers of thousands of mostly idle connections
// small: a header notification is about 400 bytes.
var subDialer = &websocket.Dialer{
	ReadBufferSize:  1024,
	WriteBufferSize: 512,
	NetDialContext:  (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
}

// subDialerDeflate is subDialer offering permessage-deflate.
var subDialerDeflate = &websocket.Dialer{
	ReadBufferSize:    subDialer.ReadBufferSize,
	WriteBufferSize:   subDialer.WriteBufferSize,
	NetDialContext:    subDialer.NetDialContext,
	EnableCompression: true,
}

// subscriber is one fan-out client: a WebSocket connection subscribed to
// new heads, whose reader records every notification with its arrival
// time. recs and bad belong to the reader until done is closed.
type subscriber struct {
	conn    *websocket.Conn
	pattern []byte // `"subscription":"<id>"`, in each notification
	recs    []reception
	newest  atomic.Uint64 // highest block number received (follow: newBlock events)
	follow  bool          // a chainHead_v1_follow client
	hashes  []string      // follow: the block hash of each of recs (numbers set afterwards)
	bad     int           // messages that are not our head notifications
	badMsg  string
	done    chan struct{}
}

// subscribeClient connects, subscribes and waits for the subscription id;
// notifications that come before it are recorded too. base is the origin
// of reception times.
func subscribeClient(ctx context.Context, dialer *websocket.Dialer, url string, follow bool, base time.Time, timeout time.Duration, capacity int) (*subscriber, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, resp, err := dialer.DialContext(ctx, url, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %w (status %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	s := &subscriber{conn: conn, recs: make([]reception, 0, capacity), done: make(chan struct{}), follow: follow}
	deadline, _ := ctx.Deadline()
	_ = conn.SetWriteDeadline(deadline)
	request := subscribeHeads
	if follow {
		request = followHeads
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte(request)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	_ = conn.SetReadDeadline(deadline)
	var early [][]byte
	var earlyAt []time.Duration
	for {
		_, msg, err := conn.ReadMessage()
		at := time.Since(base)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("subscribe: %w", err)
		}
		id, isReply, err := subscriptionID(msg)
		if err != nil {
			conn.Close()
			return nil, err
		}
		if !isReply {
			early, earlyAt = append(early, msg), append(earlyAt, at)
			continue
		}
		s.pattern = []byte(`"subscription":"` + id + `"`)
		break
	}
	_ = conn.SetReadDeadline(time.Time{})
	_ = conn.SetWriteDeadline(time.Time{})
	for i, m := range early {
		s.handle(m, earlyAt[i])
	}
	return s, nil
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

// readLoop records notifications until the connection closes.
func (s *subscriber) readLoop(base time.Time) {
	defer close(s.done)
	var buf bytes.Buffer
	for {
		_, r, err := s.conn.NextReader()
		if err != nil {
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return
		}
		s.handle(buf.Bytes(), time.Since(base))
	}
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

// close says goodbye and closes the connection, which ends readLoop.
func (s *subscriber) close() {
	_ = s.conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(100*time.Millisecond))
	_ = s.conn.Close()
}

// dialParallel is how many clients connect at once: enough to connect
// 10,000 in seconds, few enough not to look like a SYN flood.
const dialParallel = 32

// connectSubscribers connects n clients and starts their readers. It
// returns the clients that subscribed, how many failed and the first
// error.
func connectSubscribers(ctx context.Context, url string, deflate, follow bool, n int, base time.Time, timeout time.Duration, capacity int) ([]*subscriber, int, error) {
	dialer := subDialer
	if deflate {
		dialer = subDialerDeflate
	}
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
				s, err := subscribeClient(ctx, dialer, url, follow, base, timeout, capacity)
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
				go s.readLoop(base)
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
