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

	"github.com/elara-gateway/elara/jsonrpc"
)

// httpTransport calls a node that serves JSON-RPC over HTTP only.
type httpTransport struct {
	url       string
	display   string
	client    *http.Client
	readLimit int64
	header    http.Header
	// failing is set after a transport error and cleared by the next
	// success, so routing can skip a node that is down.
	failing atomic.Bool
}

func newHTTPTransport(rawURL, display string, opts Options) *httpTransport {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
		TLSClientConfig:     opts.TLS,
	}
	return &httpTransport{url: rawURL, display: display, client: &http.Client{Transport: tr}, readLimit: opts.ReadLimit, header: opts.Header}
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
		if ctx.Err() == nil {
			t.failing.Store(true)
		}
		// net/http names the full URL, API keys in its path or query
		// included: name the redacted one instead.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("http upstream %s: %w%s", t.display, err, tlsHint(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, t.readLimit))
	if err != nil {
		return nil, fmt.Errorf("http upstream: reading reply: %w", err)
	}
	var m jsonrpc.Message
	if err := json.Unmarshal(data, &m); err != nil {
		t.failing.Store(true)
		return nil, fmt.Errorf("http upstream: status %d, undecodable reply: %w", resp.StatusCode, err)
	}
	t.failing.Store(false)
	if m.Error != nil {
		return nil, m.Error
	}
	return m.Result, nil
}

func (t *httpTransport) healthy() bool { return !t.failing.Load() }

func (t *httpTransport) close() { t.client.CloseIdleConnections() }
