package e2e

// A minimal RFC 6455 WebSocket client on the standard library, enough to talk
// JSON-RPC to the gateway and to send frames a normal client library would not
// (binary frames, oversized messages).

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/elara-gateway/elara/internal/wsraw"
)

const (
	wsOpContinuation = wsraw.OpContinuation
	wsOpText         = wsraw.OpText
	wsOpBinary       = wsraw.OpBinary
	wsOpClose        = wsraw.OpClose
	wsOpPing         = wsraw.OpPing
	wsOpPong         = wsraw.OpPong

	wsMaxMessage = 64 << 20
)

type wsConn struct {
	conn net.Conn
	br   *bufio.Reader
}

// wsCloseError is returned by readMessage when the server sent a close frame.
type wsCloseError struct {
	Code   int // 1005 when the close frame carried no code
	Reason string
}

func (e *wsCloseError) Error() string {
	return fmt.Sprintf("websocket closed by server: code %d reason %q", e.Code, e.Reason)
}

// wsHandshakeError is returned by wsDial when the server did not switch
// protocols; it carries the HTTP status and body.
type wsHandshakeError = wsraw.HandshakeError

// wsDial opens a WebSocket connection to a ws:// URL. hdr adds request headers
// (e.g. Authorization). timeout bounds the TCP connect and the handshake.
func wsDial(rawURL string, hdr http.Header, timeout time.Duration) (*wsConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, br, _, err := wsraw.Dial(ctx, rawURL, hdr, 64<<10)
	if err != nil {
		return nil, err
	}
	return &wsConn{conn: conn, br: br}, nil
}

func (c *wsConn) Close() error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	payload := []byte{0x03, 0xE8} // 1000 normal closure
	_ = c.writeFrame(wsOpClose, payload)
	return c.conn.Close()
}

// writeFrame writes one final, masked frame.
func (c *wsConn) writeFrame(opcode byte, payload []byte) error {
	_, err := c.conn.Write(wsraw.Frame(opcode, payload))
	return err
}

func (c *wsConn) writeText(s string) error   { return c.writeFrame(wsOpText, []byte(s)) }
func (c *wsConn) writeBinary(b []byte) error { return c.writeFrame(wsOpBinary, b) }

func (c *wsConn) readFrame() (fin bool, opcode byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(c.br, h[:]); err != nil {
		return
	}
	fin = h[0]&0x80 != 0
	opcode = h[0] & 0x0F
	masked := h[1]&0x80 != 0
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var ext [2]byte
		if _, err = io.ReadFull(c.br, ext[:]); err != nil {
			return
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err = io.ReadFull(c.br, ext[:]); err != nil {
			return
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > wsMaxMessage {
		err = fmt.Errorf("frame of %d bytes exceeds the test client's limit", n)
		return
	}
	var mask [4]byte
	if masked {
		if _, err = io.ReadFull(c.br, mask[:]); err != nil {
			return
		}
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(c.br, payload); err != nil {
		return
	}
	if masked {
		for i := range payload {
			payload[i] ^= mask[i&3]
		}
	}
	return
}

// readMessage returns the next data message (text or binary), answering pings.
// A close frame from the server gives a *wsCloseError.
func (c *wsConn) readMessage(deadline time.Time) (opcode byte, msg []byte, err error) {
	_ = c.conn.SetReadDeadline(deadline)
	var buf []byte
	var first byte
	started := false
	for {
		fin, op, payload, err := c.readFrame()
		if err != nil {
			return 0, nil, err
		}
		switch op {
		case wsOpPing:
			_ = c.writeFrame(wsOpPong, payload)
			continue
		case wsOpPong:
			continue
		case wsOpClose:
			ce := &wsCloseError{Code: 1005}
			if len(payload) >= 2 {
				ce.Code = int(binary.BigEndian.Uint16(payload[:2]))
				ce.Reason = string(payload[2:])
			}
			return 0, nil, ce
		case wsOpText, wsOpBinary:
			if started {
				return 0, nil, errors.New("new data frame inside a fragmented message")
			}
			started, first = true, op
		case wsOpContinuation:
			if !started {
				return 0, nil, errors.New("continuation frame without a start")
			}
		default:
			return 0, nil, fmt.Errorf("unknown opcode %#x", op)
		}
		buf = append(buf, payload...)
		if len(buf) > wsMaxMessage {
			return 0, nil, errors.New("message exceeds the test client's limit")
		}
		if fin {
			return first, buf, nil
		}
	}
}
