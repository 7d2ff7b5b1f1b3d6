package fakenode

import (
	"encoding/json"
	"fmt"
	"time"
)

// outcome is what executing one request produced.
type outcome struct {
	resp       []byte        // encoded response; nil = nothing to send
	sub        *subscription // created by a subscribe call; held until resp is sent
	after      func()        // sends a chainHead operation's events once resp is queued
	delay      time.Duration
	dropped    bool
	disconnect bool
	aborted    bool // gave up waiting for a custom handler (connection gone)
}

func (n *Node) recordCalls(reqs []*request) {
	for _, r := range reqs {
		if r.invalid == nil {
			n.stats.record(r.method, r.raw)
		}
	}
}

// handleWS executes one WebSocket message. Built-in methods run inline,
// which keeps replies in request order; a message involving a custom
// handler runs on its own goroutine so a slow handler only delays itself.
func (n *Node) handleWS(c *wsConn, data []byte) {
	reqs, batch, perr := parseMessage(data)
	if perr != nil {
		c.send(outMsg{data: encodeError(nil, perr), reply: true})
		return
	}
	n.recordCalls(reqs)
	for _, r := range reqs {
		if r.invalid == nil && n.handler(r.method) != nil {
			n.handlerWG.Add(1) // Close waits for every reader before it waits on handlerWG
			go func() {
				defer n.handlerWG.Done()
				n.respondWS(c, reqs, batch)
			}()
			return
		}
	}
	n.respondWS(c, reqs, batch)
}

func (n *Node) respondWS(c *wsConn, reqs []*request, batch bool) {
	outs := make([]outcome, len(reqs))
	var subs []*subscription
	var afters []func()
	var delay time.Duration
	for i, r := range reqs {
		outs[i] = n.exec(r, c, nil, nil)
		if outs[i].disconnect {
			c.shutdown() // subscriptions made so far go with the connection
			return
		}
		if outs[i].sub != nil {
			subs = append(subs, outs[i].sub)
		}
		if outs[i].after != nil {
			afters = append(afters, outs[i].after)
		}
		delay = max(delay, outs[i].delay)
	}
	msg := assemble(outs, batch, n.faults.reorder.Load())
	if msg == nil && subs == nil && afters == nil {
		return
	}
	if delay <= 0 {
		n.deliver(c, msg, subs, afters)
		return
	}
	n.handlerWG.Add(1)
	go func() {
		defer n.handlerWG.Done()
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
			n.deliver(c, msg, subs, afters)
		case <-c.done:
		}
	}()
}

// deliver sends a reply and then releases the notifications its new
// subscriptions gathered meanwhile (the other way round in early mode),
// then the events of the operations it started, right behind the reply.
func (n *Node) deliver(c *wsConn, msg []byte, subs []*subscription, afters []func()) {
	defer func() {
		for _, fn := range afters {
			fn()
		}
	}()
	early := n.faults.early.Load()
	if early {
		n.activate(subs)
	}
	if msg != nil {
		c.send(outMsg{data: msg, reply: true})
	}
	if !early {
		n.activate(subs)
	}
}

// exec runs one request. c is nil over HTTP. A custom handler is awaited
// until stop or abort is closed (nil channels: wait for it inline).
func (n *Node) exec(r *request, c *wsConn, stop, abort <-chan struct{}) outcome {
	if r.invalid != nil {
		return outcome{resp: encodeError(r.id, r.invalid)}
	}
	if r.id == nil {
		return outcome{} // a notification: jsonrpsee neither runs nor answers it
	}
	delay, drop, disconnect := n.faults.table.Load().forMethod(r.method)
	switch {
	case disconnect:
		return outcome{disconnect: true}
	case drop:
		return outcome{dropped: true}
	}
	o := outcome{delay: delay}
	var result json.RawMessage
	var err *Error
	if h := n.handler(r.method); h != nil {
		var ok bool
		if result, err, ok = n.callCustom(h, r.params, stop, abort); !ok {
			return outcome{aborted: true}
		}
	} else {
		result, o.sub, o.after, err = n.callBuiltin(r, c)
	}
	if err != nil {
		o.resp = encodeError(r.id, err)
	} else {
		o.resp = encodeResult(r.id, result)
	}
	return o
}

func (n *Node) callBuiltin(r *request, c *wsConn) (json.RawMessage, *subscription, func(), *Error) {
	m, ok := builtins[r.method]
	if !ok {
		return nil, nil, nil, errMethodNotFound()
	}
	if (m.kind == kindSubscribe || m.kind == kindUnsubscribe) && c == nil {
		// jsonrpsee answers subscribe and unsubscribe calls on HTTP with a
		// plain "Internal error".
		return nil, nil, nil, errInternal()
	}
	p, perr := parseParams(r.params)
	if perr != nil {
		return nil, nil, nil, perr
	}
	var v any
	var err *Error
	var after func()
	switch m.kind {
	case kindSubscribe:
		res, sub, err := n.subscribe(c, m.sub, r.method, p)
		return res, sub, nil, err
	case kindUnsubscribe:
		res, err := n.unsubscribe(c, m.sub, p)
		return res, nil, nil, err
	case kindConnCall:
		v, err = m.cfn(n, c, p)
	case kindOperation:
		v, after, err = m.ofn(n, c, p)
	default:
		v, err = m.fn(n, p)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	res, err := marshalResult(v)
	if err != nil {
		after = nil
	}
	return res, nil, after, err
}

type customResult struct {
	result json.RawMessage
	err    *Error
}

func (n *Node) callCustom(h HandlerFunc, params json.RawMessage, stop, abort <-chan struct{}) (json.RawMessage, *Error, bool) {
	if stop == nil && abort == nil {
		r := runCustom(h, params)
		return r.result, r.err, true
	}
	ch := make(chan customResult, 1)
	n.handlerWG.Add(1) // the calling HTTP handler is still counted by its generation
	go func() {
		defer n.handlerWG.Done()
		ch <- runCustom(h, params)
	}()
	select {
	case r := <-ch:
		return r.result, r.err, true
	case <-stop:
	case <-abort:
	}
	return nil, nil, false
}

// runCustom turns a panicking handler into an internal error, so a bad test
// handler fails its request rather than the whole test binary.
func runCustom(h HandlerFunc, params json.RawMessage) (r customResult) {
	defer func() {
		if p := recover(); p != nil {
			r = customResult{err: &Error{Code: CodeInternalError, Message: "Internal error", Data: fmt.Sprint(p)}}
		}
	}()
	v, err := h(params)
	if err != nil {
		return customResult{err: err}
	}
	res, err := marshalResult(v)
	return customResult{result: res, err: err}
}
