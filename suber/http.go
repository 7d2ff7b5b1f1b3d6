package suber

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/jsonrpc"
)

// httpTransport calls a node that serves JSON-RPC over HTTP only.
type httpTransport struct {
	url       string
	display   string
	client    *http.Client
	readLimit int64
	header    http.Header
	log       *zap.Logger
	// failing is set after a transport error and cleared by the next
	// success, so routing can skip a node that is down.
	failing atomic.Bool
}

func newHTTPTransport(rawURL, display string, opts Options, log *zap.Logger) *httpTransport {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
		TLSClientConfig:     opts.TLS,
	}
	client := &http.Client{
		Transport: tr,
		// A redirect would carry the configured headers (API keys) to
		// whatever host it names: it is reported as an error instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &httpTransport{url: rawURL, display: display, client: client, readLimit: opts.ReadLimit, header: opts.Header, log: log}
}

func (t *httpTransport) call(ctx context.Context, id uint64, method string, params json.RawMessage) (json.RawMessage, error) {
	body := jsonrpc.AppendRequest(nil, id, method, params)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("http request: %w", err)
	}
	for k, vs := range t.header {
		req.Header[k] = vs
	}
	if h := t.header.Get("Host"); h != "" {
		req.Host = h
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		// net/http names the full URL, API keys in its path or query
		// included: name the redacted one instead.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		err = fmt.Errorf("http upstream %s: %w%s", t.display, err, tlsHint(err))
		if ctx.Err() == nil {
			t.fail(err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// Only the target's host is named: its path or query may hold a key.
		target := "elsewhere"
		if loc, lerr := resp.Location(); lerr == nil {
			target = "to " + loc.Host
		}
		err := fmt.Errorf("http upstream %s: status %d redirects %s; redirects are not followed: configure the node's final URL", t.display, resp.StatusCode, target)
		t.fail(err)
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, t.readLimit))
	if err != nil {
		return nil, fmt.Errorf("http upstream: reading reply: %w", err)
	}
	var m jsonrpc.Message
	if err := json.Unmarshal(data, &m); err != nil {
		err = fmt.Errorf("http upstream: status %d, undecodable reply: %w", resp.StatusCode, err)
		t.fail(err)
		return nil, err
	}
	if t.failing.Swap(false) {
		t.log.Info("upstream connection restored")
	}
	if m.Error != nil {
		return nil, m.Error
	}
	return m.Result, nil
}

// fail marks the node down, with one warning per outage as WebSocket
// nodes have.
func (t *httpTransport) fail(err error) {
	if !t.failing.Swap(true) {
		t.log.Warn("upstream connection failed", zap.Error(err))
	}
}

func (t *httpTransport) healthy() bool { return !t.failing.Load() }

func (t *httpTransport) close() { t.client.CloseIdleConnections() }
