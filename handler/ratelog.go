package handler

import (
	"bytes"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/elara-gateway/elara/jsonrpc"
)

// Kinds of event the handler warns about at a bounded rate: a flood of
// timeouts or of misbehaving clients must not become a flood of log lines.
const (
	logUpstreamTimeout = "upstream_timeout"
	logClientTooBig    = "client_message_too_big"
	logClientSlow      = "client_too_slow"
	logLimitsFailed    = "limits_failed"
)

// logEvery is the least time between two warnings of one kind.
const logEvery = 10 * time.Second

// rateLog writes at most one line per kind per interval. Lines dropped in
// between are counted and the count goes out with the next line written
// (field "suppressed"), so an operator sees how many there were.
type rateLog struct {
	log   *zap.Logger
	every time.Duration
	now   func() time.Time // injectable for tests

	mu    sync.Mutex
	kinds map[string]*rateState
}

type rateState struct {
	last       time.Time
	suppressed int
}

func newRateLog(log *zap.Logger, every time.Duration, now func() time.Time) *rateLog {
	if now == nil {
		now = time.Now
	}
	return &rateLog{log: log, every: every, now: now, kinds: make(map[string]*rateState)}
}

// warn logs msg at warn level unless a line of the same kind went out
// less than the interval ago. kind is one of the constants above, so the
// map stays small.
func (l *rateLog) warn(kind, msg string, fields ...zap.Field) {
	if l == nil {
		return
	}
	ce := l.log.Check(zapcore.WarnLevel, msg)
	if ce == nil {
		return
	}
	now := l.now()
	l.mu.Lock()
	st := l.kinds[kind]
	if st == nil {
		st = &rateState{}
		l.kinds[kind] = st
	}
	if !st.last.IsZero() && now.Sub(st.last) < l.every {
		st.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := st.suppressed
	st.last, st.suppressed = now, 0
	l.mu.Unlock()
	ce.Write(append(fields, zap.String("kind", kind), zap.Int("suppressed", suppressed))...)
}

// clientIP is the client's address as Caddy sees it: the forwarded one
// when the request came through a trusted proxy (`trusted_proxies`), the
// peer's otherwise.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return r.RemoteAddr
}

// frameMethod names the method of a frame queued for a client (a
// notification's), for a log line; replies have none.
func frameMethod(frame []byte) zap.Field {
	if m, err := jsonrpc.ParseMessage(frame); err == nil && m.Method != "" {
		return zap.String("method", m.Method)
	}
	return zap.Skip()
}

// peekMethod finds the method named in the start of a message that was
// too big to parse, for a log line: operators want to know which call
// (say, a runtime upgrade extrinsic) hit the limit.
func peekMethod(data []byte) zap.Field {
	const window = 4 << 10
	if len(data) > window {
		data = data[:window]
	}
	i := bytes.Index(data, []byte(`"method"`))
	if i < 0 {
		return zap.Skip()
	}
	rest := bytes.TrimLeft(data[i+len(`"method"`):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return zap.Skip()
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) == 0 || rest[0] != '"' {
		return zap.Skip()
	}
	rest = rest[1:]
	n := 0
	for n < len(rest) && n < 128 && isMethodChar(rest[n]) {
		n++
	}
	if n == 0 || n == len(rest) || rest[n] != '"' {
		return zap.Skip()
	}
	return zap.String("method", string(rest[:n]))
}

func isMethodChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}
