package handler

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/elara-gateway/elara/jobs"
	"github.com/elara-gateway/elara/jsonrpc"
)

// Statistics records. serve records every call; the WebSocket session
// records its connection, its subscriptions and, summed, the
// notifications it delivers. A Record is a value of fixed strings (the
// chain's name, a catalogue method, a constant): recording allocates
// nothing and never blocks (see jobs.Recorder).

// recordOutcomes maps the metrics' outcomes to the records'.
var recordOutcomes = [numOutcomes]string{
	outOK: jobs.OutcomeOK, outDenied: jobs.OutcomeDenied, outTimeout: jobs.OutcomeTimeout,
	outNoNode: jobs.OutcomeNoNode, outLimited: jobs.OutcomeLimited, outRefused: jobs.OutcomeRefused,
	outCanceled: jobs.OutcomeCanceled,
}

// statsProject is who a route's calls count for: its project once
// admitted, else public (without projects the path segment is anyone's
// to invent, and would grow the aggregates without bound).
func (rt *route) statsProject() string {
	if rt.acc != nil && rt.acc.project != "" {
		return rt.acc.project
	}
	return jobs.Public
}

// recordCall records one call that serve answered.
func (h *Handler) recordCall(ctx context.Context, rec *jobs.Recorder, rt *route, sess *wsSession, c jsonrpc.Call,
	a *answer, method string, start time.Time, latency time.Duration) {
	r := jobs.Record{Time: start, Kind: jobs.KindCall, Chain: rt.chain.Name, Project: rt.statsProject(),
		Method: knownMethods[methodSlot(method)], Transport: transportNames[transportOf(sess)],
		BytesOut: int64(len(a.reply)), Latency: latency, CacheHit: a.cacheHit, Node: a.node, ClientIP: rt.clientIP}
	id := c.ID
	if c.Request != nil {
		r.BytesIn = int64(len(c.Request.Params))
		id = c.Request.ID
	}
	out := a.outcome
	if out == outNoNode && ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
		out = outCanceled
	}
	r.Outcome = recordOutcomes[out]
	code, isErr := errorCode(a.reply, id)
	if isErr {
		r.Code = code
	}
	if r.Outcome == "" || (out == outOK && isErr) {
		r.Outcome = jobs.OutcomeError
	}
	rec.Record(r)
}

// errorCode is the code of an error reply built by jsonrpc.AppendError
// for id, read without parsing the reply.
func errorCode(b []byte, id []byte) (int, bool) {
	if !isErrorReply(b, id) {
		return 0, false
	}
	_, rest, _ := bytes.Cut(b, []byte(`,"error":{"code":`))
	end := bytes.IndexAny(rest, ",}")
	if end < 0 {
		return 0, true
	}
	n, err := strconv.Atoi(string(rest[:end]))
	if err != nil {
		return 0, true
	}
	return n, true
}

// recordEvent records a connection or subscription event of a session.
func (s *wsSession) recordEvent(kind jobs.Kind, n int) {
	if n == 0 {
		return
	}
	b := s.b.Load()
	if rec := b.h.app.Recorder(); rec != nil {
		rec.Record(jobs.Record{Time: time.Now(), Kind: kind, Chain: b.rt.chain.Name, Project: b.rt.statsProject(),
			Transport: transportNames[transportWS], Count: int64(n)})
	}
}

// notificationFlushEvery is how many notifications a session sums before
// it checks whether notificationFlushAfter passed since its last record.
const (
	notificationFlushEvery = 64
	notificationFlushAfter = 10 * time.Second
)

// wsNotes sums the notifications a session delivered since its last
// record.
type wsNotes struct {
	count     atomic.Int64
	bytes     atomic.Int64
	lastFlush atomic.Int64 // unix nanos
}

// isNotification reports whether frame is a notification built by
// jsonrpc.AppendNotification (replies start with the id).
func isNotification(frame []byte) bool {
	return bytes.HasPrefix(frame, []byte(`{"jsonrpc":"2.0","method":`))
}

// noteSent sums a notification queued for the client; every so often
// the sum is recorded.
func (s *wsSession) noteSent(frame []byte) {
	if isNotification(frame) {
		s.noteNotification(len(frame))
	}
}

// noteNotification sums one notification of size bytes.
func (s *wsSession) noteNotification(size int) {
	n := s.notes.count.Add(1)
	s.notes.bytes.Add(int64(size))
	if n%notificationFlushEvery == 0 {
		now := time.Now().UnixNano()
		last := s.notes.lastFlush.Load()
		if now-last >= int64(notificationFlushAfter) && s.notes.lastFlush.CompareAndSwap(last, now) {
			s.flushNotes()
		}
	}
}

// flushNotes records the notifications summed so far.
func (s *wsSession) flushNotes() {
	n := s.notes.count.Swap(0)
	nb := s.notes.bytes.Swap(0)
	if n == 0 {
		return
	}
	if rec := s.handler().app.Recorder(); rec != nil {
		rt := s.route()
		rec.Record(jobs.Record{Time: time.Now(), Kind: jobs.KindNotify, Chain: rt.chain.Name, Project: rt.statsProject(),
			Transport: transportNames[transportWS], Count: n, BytesOut: nb})
	}
}

// recordUnparsed records a body (or WebSocket message) that was not
// JSON-RPC: one failed call of no method.
func (h *Handler) recordUnparsed(rt *route, sess *wsSession, perr *jsonrpc.Error, size int) {
	rec := h.app.Recorder()
	if rec == nil {
		return
	}
	rec.Record(jobs.Record{Time: time.Now(), Kind: jobs.KindCall, Chain: rt.chain.Name, Project: rt.statsProject(),
		Method: otherMethod, Transport: transportNames[transportOf(sess)], Outcome: jobs.OutcomeError, Code: perr.Code,
		BytesIn: int64(size), ClientIP: rt.clientIP})
}
