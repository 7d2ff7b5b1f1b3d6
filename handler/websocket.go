package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/matcher"
)

// WebSocket close codes the gateway uses.
const (
	closeSlowConsumer   = websocket.ClosePolicyViolation // 1008
	closeServiceRestart = websocket.CloseServiceRestart  // 1012
	closeGoingAway      = websocket.CloseGoingAway       // 1001
	closeMessageTooBig  = websocket.CloseMessageTooBig   // 1009
	// callsPerConnection bounds concurrent calls of one client; reading
	// pauses while it is reached, which pushes back on the client.
	callsPerConnection = 64
	// closeGrace is how long a session that sent a close frame waits for
	// the client's before closing the socket. Closing with the client's
	// data unread resets the connection, and a reset makes the client's
	// system drop what it has not read yet: the close frame, so the
	// client would see 1006 instead of the code and reason.
	closeGrace = 2 * time.Second
	// closeAnswered marks a session whose client started the close and
	// got its answer: no second close frame.
	closeAnswered = -1
	// wsCompressMinSize is the smallest frame compressed when the client
	// negotiated permessage-deflate.
	wsCompressMinSize = 1024
)

// errMessageTooBig is a client message over max_request_size.
var errMessageTooBig = errors.New("message over max_request_size")

// newUpgrader returns the handler's WebSocket upgrader.
func (h *Handler) newUpgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		ReadBufferSize:  16 << 10,
		WriteBufferSize: 16 << 10,
		// Write buffers are taken only while a message is written, so idle
		// connections (most of them, with subscriptions) hold none.
		WriteBufferPool: &sync.Pool{},
		// permessage-deflate, when enabled and the client offers it.
		EnableCompression: *h.WSCompression,
		// ServeHTTP has checked the Origin against the handler's origins
		// before the upgrade, and answers a refusal with a JSON-RPC body.
		CheckOrigin: func(*http.Request) bool { return true },
	}
}

func isWebSocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && websocket.IsWebSocketUpgrade(r)
}

// hijackable unwraps Caddy's response writer wrappers (encode, headers,
// logging...) down to the server's own writer, which can be hijacked.
func hijackable(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}

// wsSession is one client WebSocket connection (a "puber").
type wsSession struct {
	h    *Handler
	rt   route
	conn *websocket.Conn
	log  *zap.Logger

	// out is the send queue: it grows with what waits, up to SendQueue
	// frames and SendQueueBytes bytes, so an idle connection holds no
	// queue memory.
	qmu    sync.Mutex
	out    [][]byte
	head   int
	queued int64 // bytes in out[head:]
	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	subs     map[string]*matcher.ClientSub
	reserved int
	// operations maps broadcast ids to their node and stop method.
	operations map[string]broadcastOp
	closed     bool
	closeCode  int
	closeText  string

	calls sync.WaitGroup
	// readDone is closed when the reader has stopped, so the writer knows
	// the client's close frame came (or never will).
	readDone chan struct{}
}

func (h *Handler) serveWebSocket(w http.ResponseWriter, r *http.Request, rt route) error {
	conn, err := h.upgrader.Upgrade(hijackable(w), r, nil)
	if err != nil {
		// The upgrader has already answered the client.
		if ce := h.log.Check(zap.DebugLevel, "websocket upgrade failed"); ce != nil {
			ce.Write(append(rt.logFields(), zap.Error(err))...)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &wsSession{
		h:        h,
		rt:       rt,
		conn:     conn,
		log:      h.log.With(rt.logFields()...),
		wake:     make(chan struct{}, 1),
		ctx:      ctx,
		cancel:   cancel,
		subs:     make(map[string]*matcher.ClientSub),
		readDone: make(chan struct{}),
	}
	set := h.sessions
	set.mu.Lock()
	if set.closing {
		set.mu.Unlock()
		cancel()
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeServiceRestart, "gateway configuration reloaded"), time.Now().Add(time.Second))
		_ = conn.Close()
		return nil
	}
	set.all[s] = struct{}{}
	set.wg.Add(1)
	set.mu.Unlock()
	rt.stats.sessionOpened()

	go s.writeLoop()
	s.readLoop()
	return nil
}

// Send implements matcher.Client. It never blocks: a client whose queue is
// full is too slow to follow and is disconnected.
func (s *wsSession) Send(frame []byte) bool {
	select {
	case <-s.ctx.Done():
		return false
	default:
	}
	s.qmu.Lock()
	queued, bytes := len(s.out)-s.head, s.queued
	size := int64(len(frame))
	switch {
	case queued >= s.h.SendQueue:
		s.qmu.Unlock()
		s.h.rlog.warn(logClientSlow, "disconnecting slow websocket client",
			append(s.rt.logFields(), frameMethod(frame), zap.String("reason", "send_queue full"), zap.Int("queued", queued))...)
		s.closeWith(closeSlowConsumer, "slow consumer: too many messages waiting (send_queue)")
		return false
	// A frame alone over the bound still goes when nothing waits: a
	// client must be able to receive any one reply.
	case queued > 0 && bytes+size > s.h.SendQueueBytes:
		s.qmu.Unlock()
		s.h.rlog.warn(logClientSlow, "disconnecting slow websocket client",
			append(s.rt.logFields(), frameMethod(frame), zap.String("reason", "send_queue_bytes reached"),
				zap.Int64("queued_bytes", bytes), zap.Int64("send_queue_bytes", s.h.SendQueueBytes))...)
		s.closeWith(closeSlowConsumer, "slow consumer: too many bytes waiting (send_queue_bytes)")
		return false
	}
	s.out = append(s.out, frame)
	s.queued += size
	notePeakQueued(s.queued)
	s.qmu.Unlock()
	if ex := s.rt.acc.countSent(len(frame)); ex != nil {
		s.overBytes(ex)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// Ended implements matcher.Client: a subscription that ended on the
// node's side frees its place.
func (s *wsSession) Ended(cs *matcher.ClientSub) {
	key, _ := subKey(cs.ID())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs[key] == cs {
		delete(s.subs, key)
		s.rt.stats.subscriptions(-1)
	}
}

// subKey is the key a client's subscription is held under, from the id as
// the client wrote it: a string id by its decoded value, so "ab" and
// "a\u0062" name the same subscription, and an integer by its value. ok is
// false for anything else, which no node takes for a subscription id.
func subKey(id json.RawMessage) (key string, ok bool) {
	id = bytes.TrimSpace(id)
	if len(id) == 0 {
		return "", false
	}
	switch c := id[0]; {
	case c == '"':
		var str string
		if json.Unmarshal(id, &str) != nil {
			return "", false
		}
		return "s" + str, true
	case c >= '0' && c <= '9':
		n, err := strconv.ParseUint(string(id), 10, 64)
		if err != nil {
			return "", false
		}
		return "n" + strconv.FormatUint(n, 10), true
	}
	return "", false
}

// next takes the oldest queued frame, or nil.
func (s *wsSession) next() []byte {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.head == len(s.out) {
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

func (s *wsSession) readLoop() {
	defer s.end()
	ping := time.Duration(s.h.PingInterval)
	_ = s.conn.SetReadDeadline(time.Now().Add(2 * ping))
	s.conn.SetPongHandler(func(string) error {
		if s.ctx.Err() != nil {
			return nil // closing: the close deadline stands
		}
		return s.conn.SetReadDeadline(time.Now().Add(2 * ping))
	})
	// The client's close frame is answered only when the client started
	// the close; when the gateway did, its own close frame was the answer.
	s.conn.SetCloseHandler(func(code int, _ string) error {
		s.mu.Lock()
		answer := s.closeCode == 0
		if answer {
			s.closeCode = closeAnswered
		}
		s.mu.Unlock()
		if answer {
			_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
		}
		return nil
	})
	sem := make(chan struct{}, callsPerConnection)
	for {
		kind, data, err := s.readMessage()
		if err != nil {
			if errors.Is(err, errMessageTooBig) {
				s.h.rlog.warn(logClientTooBig, "closing websocket client: message over max_request_size",
					append(s.rt.logFields(), peekMethod(data), zap.Int64("max_request_size", s.h.MaxRequestSize))...)
				s.closeWith(closeMessageTooBig, "message over the limit of "+strconv.FormatInt(s.h.MaxRequestSize, 10)+" bytes (max_request_size)")
				s.drain()
			}
			return
		}
		if s.ctx.Err() != nil {
			s.drain()
			return
		}
		_ = s.conn.SetReadDeadline(time.Now().Add(2 * ping))
		if kind != websocket.TextMessage {
			s.rt.stats.record(s.ctx, transportWS, "", outParse, 0)
			s.Send(jsonrpc.AppendError(nil, nil, jsonrpc.NewError(jsonrpc.CodeParseError, "Binary frames are not supported: send JSON-RPC as text frames")))
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-s.ctx.Done():
			s.drain()
			return
		}
		s.calls.Add(1)
		go func() {
			defer func() { <-sem; s.calls.Done() }()
			s.handleMessage(data)
		}()
	}
}

// readMessage reads one message of at most max_request_size bytes. The
// limit is checked here rather than by gorilla's read limit, which closes
// with 1009 but no reason. A message over it returns errMessageTooBig and
// the part read, for the log line.
func (s *wsSession) readMessage() (int, []byte, error) {
	kind, r, err := s.conn.NextReader()
	if err != nil {
		return 0, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(r, s.h.MaxRequestSize+1))
	if err != nil {
		return 0, nil, err
	}
	if int64(len(data)) > s.h.MaxRequestSize {
		return kind, data, errMessageTooBig
	}
	return kind, data, nil
}

// drain reads and drops what the client still sends after the gateway
// started closing, until the client's close frame, an error, or the
// writer closes the socket after closeGrace.
func (s *wsSession) drain() {
	for {
		_, r, err := s.conn.NextReader()
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
	}
}

func (s *wsSession) handleMessage(data []byte) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		parsed, perr := jsonrpc.Parse(trimmed, s.h.limits())
		if perr != nil {
			s.rt.stats.record(s.ctx, transportWS, "", outcomeOf(perr), 0)
			s.Send(jsonrpc.AppendError(nil, nil, perr))
			return
		}
		answers := make([]answer, len(parsed.Calls))
		// As over HTTP: a batch runs at most batchConcurrency calls at
		// once, so one message cannot take every upstream connection.
		var wg sync.WaitGroup
		sem := make(chan struct{}, batchConcurrency)
		for i, c := range parsed.Calls {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				answers[i] = s.h.serve(s.ctx, s.rt, s, c)
			}()
		}
		wg.Wait()
		if out := joinReplies(answers, true); out != nil {
			s.Send(out)
		}
		for _, a := range answers {
			if a.after != nil {
				a.after()
			}
		}
		return
	}
	a := s.h.serve(s.ctx, s.rt, s, jsonrpc.ParseRequest(trimmed, maxDepth))
	if a.reply != nil {
		s.Send(a.reply)
	}
	if a.after != nil {
		a.after()
	}
}

func (s *wsSession) writeLoop() {
	ticker := time.NewTicker(time.Duration(s.h.PingInterval))
	defer ticker.Stop()
	for {
		// Once the session is closing, queued frames are dropped: the close
		// frame goes out next, so a slow client learns why it was dropped.
		if s.ctx.Err() != nil {
			s.writeClose()
			return
		}
		select {
		case <-s.wake:
			for frame := s.next(); frame != nil; frame = s.next() {
				if s.ctx.Err() != nil {
					break
				}
				_ = s.conn.SetWriteDeadline(time.Now().Add(time.Duration(s.h.WriteTimeout)))
				// With permessage-deflate, small frames go out as they are:
				// compressing them costs more than the bytes it saves.
				s.conn.EnableWriteCompression(len(frame) >= wsCompressMinSize)
				if err := s.conn.WriteMessage(websocket.TextMessage, frame); err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						s.h.rlog.warn(logClientSlow, "disconnecting slow websocket client",
							append(s.rt.logFields(), frameMethod(frame), zap.String("reason", "write_timeout reached"))...)
					}
					// A write that failed or timed out leaves the socket
					// unusable: close it, or the hijacked connection stays.
					s.closeWith(0, "")
					_ = s.conn.Close()
					return
				}
			}
		case <-ticker.C:
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Duration(s.h.WriteTimeout))); err != nil {
				s.closeWith(0, "")
				_ = s.conn.Close()
				return
			}
		case <-s.ctx.Done():
			s.writeClose()
			return
		}
	}
}

func (s *wsSession) writeClose() {
	s.mu.Lock()
	code, text := s.closeCode, s.closeText
	s.mu.Unlock()
	if code > 0 {
		if s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Duration(s.h.WriteTimeout))) == nil {
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
}

// closeWith ends the session, telling the client why when code is set.
func (s *wsSession) closeWith(code int, text string) {
	s.mu.Lock()
	if s.closeCode == 0 && !s.closed {
		s.closeCode, s.closeText = code, text
	}
	s.mu.Unlock()
	s.cancel()
	// The reader goes on only to take in the client's last messages and
	// its close frame; the writer closes the socket after closeGrace.
	_ = s.conn.SetReadDeadline(time.Now().Add(closeGrace))
}

// end runs once the reader stops: it releases every subscription of the
// client and unregisters the session.
func (s *wsSession) end() {
	close(s.readDone)
	s.closeWith(closeGoingAway, "")
	s.calls.Wait()
	s.mu.Lock()
	s.closed = true
	subs, ops := s.subs, s.operations
	s.subs, s.operations = nil, nil
	s.mu.Unlock()
	s.rt.stats.subscriptions(-len(subs))
	for _, sub := range subs {
		sub.Close()
	}
	s.stopBroadcasts(ops)
	set := s.h.sessions
	set.mu.Lock()
	delete(set.all, s)
	set.mu.Unlock()
	s.rt.stats.sessionClosed()
	set.wg.Done()
}

// subscribe opens a subscription for the client; its notifications are
// released once the reply is queued.
func (s *wsSession) subscribe(ctx context.Context, req *jsonrpc.Request) answer {
	subject, planLimit := s.planSubscriptions()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return answer{outcome: outCanceled}
	}
	// The plan's limit is checked with the reservation, under one lock:
	// the subscribes of one batch run at once.
	if n := len(s.subs) + s.reserved; planLimit > 0 && int64(n) >= planLimit {
		s.mu.Unlock()
		return s.overSubscriptions(req, subject, n)
	}
	if len(s.subs)+s.reserved >= s.h.MaxSubscriptions {
		s.mu.Unlock()
		return reply(req, nil, jsonrpc.NewError(jsonrpc.CodeLimitExceeded,
			"Too many subscriptions on this connection (limit "+strconv.Itoa(s.h.MaxSubscriptions)+")"))
	}
	s.reserved++
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, s.rt.chain.RequestTimeout)
	defer cancel()
	sub, err := s.rt.chain.Matcher.Subscribe(ctx, s, req.Method, req.Params)

	s.mu.Lock()
	s.reserved--
	if err != nil {
		s.mu.Unlock()
		return reply(req, nil, s.h.clientError(s.rt, req.Method, err))
	}
	if s.closed {
		s.mu.Unlock()
		sub.Close()
		return answer{outcome: outCanceled}
	}
	key, _ := subKey(sub.ID())
	if _, replaced := s.subs[key]; !replaced {
		s.rt.stats.subscriptions(1)
	}
	s.subs[key] = sub
	s.mu.Unlock()
	// One that ended before it was recorded (its final event came with
	// the reply) holds no place. Checked after unlocking: the
	// subscription's lock is never taken under the session's.
	if sub.Done() {
		s.Ended(sub)
	}
	a := reply(req, sub.ID(), nil)
	a.after = sub.Activate
	return a
}

// unsubscribe closes one of the client's subscriptions. Ids the client
// does not hold, or of another kind, answer false, as a node does.
func (s *wsSession) unsubscribe(ctx context.Context, req *jsonrpc.Request) answer {
	var params []json.RawMessage
	if err := json.Unmarshal(req.Params, &params); err != nil || len(params) != 1 {
		return reply(req, nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Invalid params: expected [subscription id]"))
	}
	key, ok := subKey(params[0])
	if !ok {
		return reply(req, nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Invalid params: a subscription id is a string or a number"))
	}
	family, _ := matcher.LookupUnsubscribe(req.Method)
	s.mu.Lock()
	sub := s.subs[key]
	if sub != nil && (sub.Family().Name == family || sub.Family().Unsubscribe == req.Method) {
		delete(s.subs, key)
		s.rt.stats.subscriptions(-1)
	} else {
		sub = nil
	}
	s.mu.Unlock()
	if sub == nil {
		return reply(req, json.RawMessage("false"), nil)
	}
	ctx, cancel := context.WithTimeout(ctx, s.rt.chain.RequestTimeout)
	defer cancel()
	result, err := sub.Unsubscribe(ctx)
	if err != nil {
		// The client's subscription is gone either way.
		result = json.RawMessage("true")
	}
	return reply(req, result, nil)
}
