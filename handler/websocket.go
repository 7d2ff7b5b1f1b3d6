package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/matcher"
	"github.com/elara-gateway/elara/suber"
)

// WebSocket close codes the gateway uses.
const (
	closeSlowConsumer   = websocket.ClosePolicyViolation // 1008
	closeServiceRestart = websocket.CloseServiceRestart  // 1012
	closeGoingAway      = websocket.CloseGoingAway       // 1001
	// callsPerConnection bounds concurrent calls of one client; reading
	// pauses while it is reached, which pushes back on the client.
	callsPerConnection = 64
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  16 << 10,
	WriteBufferSize: 16 << 10,
	// Write buffers are taken only while a message is written, so idle
	// connections (most of them, with subscriptions) hold none.
	WriteBufferPool: &sync.Pool{},
	// dApps connect from any origin; authentication, where wanted, is done
	// by the handlers in front of this one.
	CheckOrigin: func(*http.Request) bool { return true },
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
	// frames, so an idle connection holds no queue memory.
	qmu    sync.Mutex
	out    [][]byte
	head   int
	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	subs     map[string]*matcher.ClientSub
	reserved int
	// operations maps transaction_v1 broadcast ids to their node.
	operations map[string]*suber.Node
	closed     bool
	closeCode  int
	closeText  string

	calls sync.WaitGroup
}

func (h *Handler) serveWebSocket(w http.ResponseWriter, r *http.Request, rt route) error {
	conn, err := upgrader.Upgrade(hijackable(w), r, nil)
	if err != nil {
		// The upgrader has already answered the client.
		if ce := h.log.Check(zap.DebugLevel, "websocket upgrade failed"); ce != nil {
			ce.Write(append(rt.logFields(), zap.Error(err))...)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &wsSession{
		h:      h,
		rt:     rt,
		conn:   conn,
		log:    h.log.With(append(rt.logFields(), zap.String("remote", r.RemoteAddr))...),
		wake:   make(chan struct{}, 1),
		ctx:    ctx,
		cancel: cancel,
		subs:   make(map[string]*matcher.ClientSub),
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
	queued := len(s.out) - s.head
	if queued >= s.h.SendQueue {
		s.qmu.Unlock()
		s.log.Warn("disconnecting slow websocket client", zap.Int("queued", queued))
		s.closeWith(closeSlowConsumer, "slow consumer: too many messages waiting")
		return false
	}
	s.out = append(s.out, frame)
	s.qmu.Unlock()
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
	s.conn.SetReadLimit(s.h.MaxRequestSize)
	_ = s.conn.SetReadDeadline(time.Now().Add(2 * ping))
	s.conn.SetPongHandler(func(string) error { return s.conn.SetReadDeadline(time.Now().Add(2 * ping)) })
	sem := make(chan struct{}, callsPerConnection)
	for {
		kind, data, err := s.conn.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				s.closeWith(websocket.CloseMessageTooBig, "message over the limit of "+strconv.FormatInt(s.h.MaxRequestSize, 10)+" bytes")
			}
			return
		}
		if s.ctx.Err() != nil {
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
			return
		}
		s.calls.Add(1)
		go func() {
			defer func() { <-sem; s.calls.Done() }()
			s.handleMessage(data)
		}()
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
		var wg sync.WaitGroup
		for i, c := range parsed.Calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i] = s.h.call(s.ctx, s.rt, s, c)
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
	a := s.h.call(s.ctx, s.rt, s, jsonrpc.ParseRequest(trimmed, maxDepth))
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
				if err := s.conn.WriteMessage(websocket.TextMessage, frame); err != nil {
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
	if code != 0 {
		_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Duration(s.h.WriteTimeout)))
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
	// Unblock the reader so the session ends even if the client is silent.
	_ = s.conn.SetReadDeadline(time.Now())
}

// end runs once the reader stops: it releases every subscription of the
// client and unregisters the session.
func (s *wsSession) end() {
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
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return answer{outcome: outCanceled}
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
