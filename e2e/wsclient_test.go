package e2e

// A minimal RFC 6455 WebSocket client on the standard library, enough to talk
// JSON-RPC to the gateway and to send frames a normal client library would not
// (binary frames, oversized messages).

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	wsOpContinuation = 0x0
	wsOpText         = 0x1
	wsOpBinary       = 0x2
	wsOpClose        = 0x8
	wsOpPing         = 0x9
	wsOpPong         = 0xA

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
type wsHandshakeError struct {
	Status int
	Body   string
}

func (e *wsHandshakeError) Error() string {
	return fmt.Sprintf("websocket handshake refused: HTTP %d: %s", e.Status, truncate(e.Body, 300))
}

// wsDial opens a WebSocket connection to a ws:// URL. hdr adds request headers
// (e.g. Authorization). timeout bounds the TCP connect and the handshake.
func wsDial(rawURL string, hdr http.Header, timeout time.Duration) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("only ws:// URLs are supported, got %q", rawURL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	conn, err := net.DialTimeout("tcp", host, timeout)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))

	keyBytes := make([]byte, 16)
	_, _ = rand.Read(keyBytes)
	key := base64.StdEncoding.EncodeToString(keyBytes)
	path := u.RequestURI()

	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\n", path)
	fmt.Fprintf(&b, "Host: %s\r\n", u.Host)
	b.WriteString("Upgrade: websocket\r\nConnection: Upgrade\r\n")
	fmt.Fprintf(&b, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", key)
	for k, vs := range hdr {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	req, _ := http.NewRequest(http.MethodGet, "http://"+u.Host+path, nil)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("reading handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		conn.Close()
		return nil, &wsHandshakeError{Status: resp.StatusCode, Body: string(body)}
	}
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(h[:]); got != want {
		conn.Close()
		return nil, fmt.Errorf("bad Sec-WebSocket-Accept %q, want %q", got, want)
	}
	_ = conn.SetDeadline(time.Time{})
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
	hdr := make([]byte, 0, 14)
	hdr = append(hdr, 0x80|opcode)
	n := len(payload)
	switch {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n <= 0xFFFF:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	hdr = append(hdr, mask[:]...)
	buf := make([]byte, len(hdr)+n)
	copy(buf, hdr)
	for i := 0; i < n; i++ {
		buf[len(hdr)+i] = payload[i] ^ mask[i&3]
	}
	_, err := c.conn.Write(buf)
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
