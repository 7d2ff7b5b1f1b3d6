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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/elara-gateway/elara/internal/multiwrite"
	"github.com/elara-gateway/elara/jobs"
	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/matcher"
)

// WebSocket close codes the gateway uses.
const (
	// wsReadBufferSize is each connection's read buffer.
	wsReadBufferSize    = 512
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
		// Every connection keeps its read buffer while idle, so it is
		// small: a frame header and a typical call fit, and a larger
		// message is read past it straight into the message.
		ReadBufferSize:  wsReadBufferSize,
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
//
// A session outlives the handler that opened it: a config reload hands it
// to the handler of the new config (see sessions.go), so every call reads
// the handler and route it is bound to now.
type wsSession struct {
	b    atomic.Pointer[binding]
	conn *websocket.Conn

	// out is the send queue: it grows with what waits, up to SendQueue
	// frames and SendQueueBytes bytes, so an idle connection holds no
	// queue memory.
	qmu    sync.Mutex
	out    [][]byte
	head   int
	queued int64 // bytes in out[head:]
	// writing is set while a flush goroutine runs (see wswrite.go): a
	// connection with nothing to send has no writer goroutine. pinging
	// is set while a ping is written; once the socket is closed (shut),
	// neither starts again and idle is closed when both are done.
	writing bool
	pinging bool
	shut    bool
	idle    chan struct{}
	// wmu is held while anything is written to the socket: a frame by
	// the writer or directly by a sender (wsdirect.go), a ping, the close
	// frame. raw is the socket for direct writes (nil: none), direct the
	// pooled buffer of the one in progress, and rest what a direct write
	// left for the writer to send first.
	wmu    sync.Mutex
	raw    syscall.RawConn
	direct *[]byte
	rest   []byte
	// closeSent is set, under wmu, once a close frame went out: the
	// library refuses frames after it, and direct writes must too.
	closeSent bool
	// ping sends the next ping; closing runs the close handshake once.
	ping    *time.Timer
	closing sync.Once
	// ending is set when the session starts closing, before ctx is
	// canceled: a cheaper check than ctx on the per-notification path.
	ending atomic.Bool
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	subs     map[string]*matcher.ClientSub
	reserved int
	// held is len(subs)+reserved, readable without mu (noteHeldLocked).
	held atomic.Int32
	// operations maps broadcast ids to their node and stop method.
	operations map[string]broadcastOp
	closed     bool
	closeCode  int
	closeText  string

	calls sync.WaitGroup
	// notes sums the notifications delivered, for statistics.
	notes wsNotes
	// readDone is closed when the reader has stopped, so the writer knows
	// the client's close frame came (or never will).
	readDone chan struct{}
	// leaveIP stops counting the session against its client IP's bounds.
	leaveIP func()
	// statsRelease lets go of the statistics pipeline of the config the
	// session is bound to, once its end is recorded; registry.mu guards
	// it (a reload moves the session, and the hold, to the next config).
	statsRelease func()
}

// serveWebSocket upgrades the request and starts its session;
// releaseIP gives back the client IP's connection slot when it ends.
func (h *Handler) serveWebSocket(w http.ResponseWriter, r *http.Request, rt route, releaseIP func()) error {
	conn, err := h.upgrader.Upgrade(hijackable(w), r, nil)
	if err != nil {
		rt.acc.giveBack()
		releaseIP()
		// The upgrader has already answered the client.
		if ce := h.log.Check(zap.DebugLevel, "websocket upgrade failed"); ce != nil {
			ce.Write(append(rt.logFields(), zap.Error(err))...)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(sessionContext(r))
	s := &wsSession{
		conn:     conn,
		ctx:      ctx,
		cancel:   cancel,
		subs:     make(map[string]*matcher.ClientSub),
		readDone: make(chan struct{}),
		raw:      directConn(conn.UnderlyingConn()),
	}
	s.b.Store(h.bind(rt))
	// Armed before the session is registered: a reload may close it at
	// once, and writeClose stops the timer.
	s.ping = time.AfterFunc(pingAfter(time.Duration(h.PingInterval)), s.sendPing)
	if !h.addSession(s) {
		// A ping whose timer fired already may be writing: the close frame
		// waits for it, and none follows the close (sendPing sees ending
		// or closeSent and stops its timer).
		s.ending.Store(true)
		s.ping.Stop()
		cancel()
		rt.acc.giveBack()
		releaseIP()
		s.wmu.Lock()
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeServiceRestart, "gateway configuration reloaded"), time.Now().Add(time.Second))
		s.closeSent = true
		s.wmu.Unlock()
		_ = conn.Close()
		return nil
	}
	rt.stats.sessionOpened()
	leave := s.joinIP()
	s.leaveIP = func() { leave(); releaseIP() }
	// The session's goroutines belong to the registry, not to this
	// request: the session may outlive this handler (a reload), and the
	// request's goroutine would keep the old config's server alive. The
	// request, its buffers and Caddy's handler stack are freed at once.
	s.recordEvent(jobs.KindConnect, 1)
	go s.readLoop()
	return nil
}

// Send implements matcher.Client. It never blocks: a client whose queue is
// full is too slow to follow and is disconnected.
func (s *wsSession) Send(frame []byte) bool {
	return s.send(outFrame{frame: frame})
}

// SendNotification implements matcher.NotificationClient: a notification
// written at once is copied from its shared parts, with no frame of its
// own; one that must wait is queued as a frame. With a batch, the write
// is made when the batch is flushed.
func (s *wsSession) SendNotification(n *jsonrpc.Notification, subscription json.RawMessage, batch *multiwrite.Batch) bool {
	return s.send(outFrame{n: n, sub: subscription, batch: batch})
}

// outFrame is a frame to send: its bytes, or a shared notification and
// the subscription id that makes it this client's, and the batch a
// direct write of it joins (nil: written at once).
type outFrame struct {
	frame []byte
	n     *jsonrpc.Notification
	sub   json.RawMessage
	batch *multiwrite.Batch
}

func (f *outFrame) size() int {
	if f.n != nil {
		return f.n.Len(f.sub)
	}
	return len(f.frame)
}

// bytes is the frame, built from its parts when it has none yet.
func (f *outFrame) bytes() []byte {
	if f.frame == nil && f.n != nil {
		f.frame = f.n.For(f.sub)
	}
	return f.frame
}

// appendTo appends the frame to dst.
func (f *outFrame) appendTo(dst []byte) []byte {
	if f.frame == nil && f.n != nil {
		return f.n.AppendFor(dst, f.sub)
	}
	return append(dst, f.frame...)
}

func (s *wsSession) send(f outFrame) bool {
	if s.ending.Load() {
		return false
	}
	b := s.b.Load()
	h := b.h
	s.qmu.Lock()
	queued, bytes := len(s.out)-s.head, s.queued
	size := int64(f.size())
	switch {
	case queued >= h.SendQueue:
		s.qmu.Unlock()
		h.rlog.warn(logClientSlow, "disconnecting slow websocket client",
			append(b.rt.logFields(), frameMethod(f.bytes()), zap.String("reason", "send_queue full"), zap.Int("queued", queued))...)
		s.closeWith(closeSlowConsumer, "slow consumer: too many messages waiting (send_queue)")
		return false
	// A frame alone over the bound still goes when nothing waits: a
	// client must be able to receive any one reply.
	case queued > 0 && bytes+size > h.SendQueueBytes:
		s.qmu.Unlock()
		h.rlog.warn(logClientSlow, "disconnecting slow websocket client",
			append(b.rt.logFields(), frameMethod(f.bytes()), zap.String("reason", "send_queue_bytes reached"),
				zap.Int64("queued_bytes", bytes), zap.Int64("send_queue_bytes", h.SendQueueBytes))...)
		s.closeWith(closeSlowConsumer, "slow consumer: too many bytes waiting (send_queue_bytes)")
		return false
	}
	start := !s.writing && !s.shut
	if !start || !s.sendDirect(&f) {
		s.out = append(s.out, f.bytes())
		s.queued += size
		notePeakQueued(s.queued)
		if start {
			s.writing = true
			s.qmu.Unlock()
			go s.flush()
		} else {
			s.qmu.Unlock()
		}
	} else {
		s.qmu.Unlock()
	}
	if f.n != nil {
		s.noteNotification(int(size))
	} else {
		s.noteSent(f.frame)
	}
	if ex := b.rt.acc.countSent(int(size)); ex != nil {
		s.overBytes(ex)
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
		s.noteHeldLocked()
		s.route().stats.subscriptions(-1)
		s.recordEvent(jobs.KindSubClose, 1)
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

func (s *wsSession) readLoop() {
	defer s.end()
	// The ping interval of the config the session is bound to now.
	silence := func() time.Time { return time.Now().Add(2 * time.Duration(s.handler().PingInterval)) }
	_ = s.conn.SetReadDeadline(silence())
	s.conn.SetPongHandler(func(string) error {
		if s.ctx.Err() != nil {
			return nil // closing: the close deadline stands
		}
		return s.conn.SetReadDeadline(silence())
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
			s.wmu.Lock()
			_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
			s.closeSent = true
			s.wmu.Unlock()
		}
		return nil
	})
	// The library's own pong answer, but under wmu: a direct write must
	// not run beside it (wsdirect.go).
	s.conn.SetPingHandler(func(data string) error {
		s.wmu.Lock()
		err := s.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		s.wmu.Unlock()
		var ne net.Error
		if err == websocket.ErrCloseSent || errors.As(err, &ne) {
			return nil // as the library's: the reader finds out itself
		}
		return err
	})
	sem := make(chan struct{}, callsPerConnection)
	for {
		kind, data, err := s.readMessage()
		if err != nil {
			if errors.Is(err, errMessageTooBig) {
				s.handler().rlog.warn(logClientTooBig, "closing websocket client: message over max_request_size",
					append(s.route().logFields(), peekMethod(data), zap.Int64("max_request_size", s.handler().MaxRequestSize))...)
				s.closeWith(closeMessageTooBig, "message over the limit of "+strconv.FormatInt(s.handler().MaxRequestSize, 10)+" bytes (max_request_size)")
				s.drain()
			}
			return
		}
		if s.ctx.Err() != nil {
			s.drain()
			return
		}
		_ = s.conn.SetReadDeadline(silence())
		if kind != websocket.TextMessage {
			perr := jsonrpc.NewError(jsonrpc.CodeParseError, "Binary frames are not supported: send JSON-RPC as text frames")
			b := s.b.Load()
			b.rt.stats.record(s.ctx, transportWS, "", outParse, 0)
			b.h.recordUnparsed(&b.rt, s, perr, len(data))
			s.Send(jsonrpc.AppendError(nil, nil, perr))
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
	data, err := io.ReadAll(io.LimitReader(r, s.handler().MaxRequestSize+1))
	if err != nil {
		return 0, nil, err
	}
	if int64(len(data)) > s.handler().MaxRequestSize {
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
	// One message, batch included, is served under one config.
	b := s.b.Load()
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		parsed, perr := jsonrpc.Parse(trimmed, b.h.limits())
		if perr != nil {
			b.rt.stats.record(s.ctx, transportWS, "", outcomeOf(perr), 0)
			b.h.recordUnparsed(&b.rt, s, perr, len(data))
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
				answers[i] = b.h.serve(s.ctx, b.rt, s, c)
			}()
		}
		wg.Wait()
		if out := joinReplies(answers, true); out != nil {
			s.Send(out)
		}
		runAfter(answers)
		return
	}
	a := b.h.serve(s.ctx, b.rt, s, jsonrpc.ParseRequest(trimmed, maxDepth))
	if a.reply != nil {
		s.Send(a.reply)
	}
	if a.after != nil {
		a.after()
	}
}

// closeWith ends the session, telling the client why when code is set.
func (s *wsSession) closeWith(code int, text string) {
	s.mu.Lock()
	if s.closeCode == 0 && !s.closed {
		s.closeCode, s.closeText = code, text
	}
	s.mu.Unlock()
	s.ending.Store(true)
	s.cancel()
	// The reader goes on only to take in the client's last messages and
	// its close frame; writeClose closes the socket after closeGrace.
	_ = s.conn.SetReadDeadline(time.Now().Add(closeGrace))
	s.closing.Do(func() {
		// Counted with the session's goroutines: the reader is still
		// counted (end calls closeWith before it is done), so a Stop that
		// waits for them waits for the close handshake too.
		registry.wg.Add(1)
		go func() {
			defer registry.wg.Done()
			s.writeClose()
		}()
	})
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
	s.noteHeldLocked()
	s.mu.Unlock()
	s.route().stats.subscriptions(-len(subs))
	s.recordEvent(jobs.KindSubClose, len(subs))
	for _, sub := range subs {
		sub.Close()
	}
	s.stopBroadcasts(ops)
	rt, releaseStats := s.removeSession()
	rt.stats.sessionClosed()
	s.flushNotes()
	s.recordEvent(jobs.KindDisconnect, 1)
	releaseStats()
	rt.acc.giveBack()
	s.leaveIP()
	registry.wg.Done()
}

// subscribe opens a subscription for the client; its notifications are
// released once the reply is queued.
func (s *wsSession) subscribe(ctx context.Context, req *jsonrpc.Request) answer {
	if a := s.refuseOverChain(req); a != nil {
		return *a
	}
	ipDone, refused := s.admitIPSubscription(req)
	if refused != nil {
		return *refused
	}
	defer ipDone()
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
	if len(s.subs)+s.reserved >= s.handler().MaxSubscriptions {
		s.mu.Unlock()
		return reply(req, nil, jsonrpc.NewError(jsonrpc.CodeLimitExceeded,
			"Too many subscriptions on this connection (limit "+strconv.Itoa(s.handler().MaxSubscriptions)+")"))
	}
	s.reserved++
	s.noteHeldLocked()
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, s.route().chain.RequestTimeout())
	defer cancel()
	sub, err := s.route().chain.Matcher.Subscribe(ctx, s, req.Method, req.Params)

	s.mu.Lock()
	s.reserved--
	s.noteHeldLocked()
	if err != nil {
		s.mu.Unlock()
		return reply(req, nil, s.handler().clientError(s.route(), req.Method, err))
	}
	if s.closed {
		s.mu.Unlock()
		sub.Close()
		return answer{outcome: outCanceled}
	}
	key, _ := subKey(sub.ID())
	if _, replaced := s.subs[key]; !replaced {
		s.route().stats.subscriptions(1)
		s.recordEvent(jobs.KindSubOpen, 1)
	}
	s.subs[key] = sub
	s.noteHeldLocked()
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
		s.noteHeldLocked()
		s.route().stats.subscriptions(-1)
		s.recordEvent(jobs.KindSubClose, 1)
	} else {
		sub = nil
	}
	s.mu.Unlock()
	if sub == nil {
		return reply(req, json.RawMessage("false"), nil)
	}
	ctx, cancel := context.WithTimeout(ctx, s.route().chain.RequestTimeout())
	defer cancel()
	result, err := sub.Unsubscribe(ctx)
	if err != nil {
		// The client's subscription is gone either way.
		result = json.RawMessage("true")
	}
	return reply(req, result, nil)
}

// Interface guard
var (
	_ matcher.NotificationClient = (*wsSession)(nil)
	_ multiwrite.Done            = (*wsSession)(nil)
)
