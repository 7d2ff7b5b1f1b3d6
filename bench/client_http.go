package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// httpDriver posts over a keep-alive pool with an idle slot per client, so
// that connections are reused and none is opened during the measurement.
type httpDriver struct {
	url    string
	client *http.Client
	tr     *http.Transport
}

func newHTTPDriver(url string, clients int, timeout time.Duration) *httpDriver {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        clients * 2,
		MaxIdleConnsPerHost: clients * 2,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true, // clients of a JSON-RPC node rarely ask for gzip
	}
	return &httpDriver{url: url, tr: tr, client: &http.Client{Transport: tr, Timeout: timeout}}
}

func (d *httpDriver) open(ctx context.Context) (caller, error) {
	return &httpCaller{d: d, ctx: ctx}, nil
}

func (d *httpDriver) close() { d.tr.CloseIdleConnections() }

type httpCaller struct {
	d   *httpDriver
	ctx context.Context
	buf bytes.Buffer
}

func (c *httpCaller) call(body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, c.d.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	// A Substrate node refuses POSTs without it.
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.d.client.Do(req)
	if err != nil {
		return nil, err
	}
	c.buf.Reset()
	_, err = c.buf.ReadFrom(resp.Body) // read to EOF so the connection is reused
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %.120s", resp.StatusCode, c.buf.Bytes())
	}
	return c.buf.Bytes(), nil
}

func (c *httpCaller) close() {}
