package main

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/gorilla/websocket"
)

// deflateDialer offers permessage-deflate, as browsers do.
var deflateDialer = &websocket.Dialer{
	Proxy:             websocket.DefaultDialer.Proxy,
	HandshakeTimeout:  websocket.DefaultDialer.HandshakeTimeout,
	EnableCompression: true,
}

// wsDriver gives each client its own WebSocket connection, as dApps have.
type wsDriver struct {
	url     string
	timeout time.Duration
	deflate bool // offer permessage-deflate
}

func (d *wsDriver) open(ctx context.Context) (caller, error) {
	c := &wsCaller{d: d, ctx: ctx}
	if err := c.dial(); err != nil {
		return nil, err
	}
	return c, nil
}

func (d *wsDriver) close() {}

type wsCaller struct {
	d    *wsDriver
	ctx  context.Context
	conn *websocket.Conn
	// stop unregisters the close-on-cancel hook of conn.
	stop func() bool
	buf  bytes.Buffer
}

func (c *wsCaller) dial() error {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	dialer := websocket.DefaultDialer
	if c.d.deflate {
		dialer = deflateDialer
	}
	conn, resp, err := dialer.DialContext(ctx, c.d.url, nil)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("dial %s: %w (status %d)", c.d.url, err, resp.StatusCode)
		}
		return fmt.Errorf("dial %s: %w", c.d.url, err)
	}
	c.conn = conn
	// Closing the connection is what unblocks a read when the run is
	// interrupted; net.Conn.Close is safe to call concurrently.
	c.stop = context.AfterFunc(c.ctx, func() { _ = conn.NetConn().Close() })
	return nil
}

// call sends one request and reads one message. After any error the
// connection is in an unknown state: it is dropped and the next call
// dials again.
func (c *wsCaller) call(req []byte) ([]byte, error) {
	if c.conn == nil {
		if err := c.dial(); err != nil {
			return nil, err
		}
	}
	out, err := c.roundTrip(req)
	if err != nil {
		c.close()
	}
	return out, err
}

func (c *wsCaller) roundTrip(req []byte) ([]byte, error) {
	deadline := time.Now().Add(c.d.timeout)
	_ = c.conn.SetWriteDeadline(deadline)
	if err := c.conn.WriteMessage(websocket.TextMessage, req); err != nil {
		return nil, err
	}
	_ = c.conn.SetReadDeadline(deadline)
	_, r, err := c.conn.NextReader()
	if err != nil {
		return nil, err
	}
	c.buf.Reset()
	if _, err := c.buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return c.buf.Bytes(), nil
}

func (c *wsCaller) close() {
	if c.conn == nil {
		return
	}
	c.stop()
	_ = c.conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	_ = c.conn.Close()
	c.conn = nil
}
