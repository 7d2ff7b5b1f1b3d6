package main

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/elara-gateway/elara/internal/wsraw"
)

// The fan-out clients speak WebSocket themselves rather than through
// gorilla: 10,000 of them share the machine with the gateway they
// measure, and one epoll loop over raw sockets (fanout_poll_linux.go)
// needs about half the CPU of a goroutine and a buffered reader per
// connection. The handshake and masked frames come from internal/wsraw;
// here is the reading a subscriber needs, fed whatever bytes arrived:
// unmasked frames, fragments, pings and permessage-deflate without
// context takeover.

// errServerClosed: the server sent a close frame.
var errServerClosed = errors.New("server closed the WebSocket")

// dialWebSocket opens a WebSocket to rawURL (ws:// only). It returns the
// connection, a reader holding whatever the server sent after its
// handshake, and whether permessage-deflate was agreed. The
// connection's deadline is ctx's.
func dialWebSocket(ctx context.Context, rawURL string, deflate bool) (net.Conn, *bufio.Reader, bool, error) {
	var hdr http.Header
	if deflate {
		hdr = http.Header{"Sec-WebSocket-Extensions": {"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}}
	}
	conn, br, resp, err := wsraw.Dial(ctx, rawURL, hdr, 4096)
	if err != nil {
		return nil, nil, false, err
	}
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	agreed := deflate && strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	return conn, br, agreed, nil
}

// closeFrame is a client's close frame with status 1000.
var closeFrame = wsraw.Frame(wsraw.OpClose, []byte{0x03, 0xe8})

// frameSink gets what a frameReader finds in the stream.
type frameSink interface {
	message(msg []byte)
	ping(payload []byte)
}

// frameReader splits a server's byte stream into messages. Payloads
// passed to the sink are only valid during the call.
type frameReader struct {
	deflate bool   // permessage-deflate was agreed
	pending []byte // an incomplete frame left from the last feed
	frag    []byte // the fragments of a message so far
	inFrag  bool
	fragZ   bool // the fragmented message is compressed
	// Frames parsed so far, and whether one of them may have come in
	// pieces (set by size here, by the poller for a frame it saw begun):
	// a poller stamps each message by the frame that completed it.
	parsed int
	pieces bool
	// segment is the largest frame taken to have arrived in one piece
	// (0: oneSegment): the gateway writes each frame with one system
	// call, which arrives as one segment if it fits one.
	segment int
}

// oneSegment is segment's default, well under loopback's segment size.
const oneSegment = 16 << 10

// feed parses data after what was left over. It returns errServerClosed
// on a close frame, another error on a stream that is not WebSocket.
func (r *frameReader) feed(data []byte, sink frameSink) error {
	buf, inPending := data, len(r.pending) > 0
	if inPending {
		r.pending = append(r.pending, data...)
		buf = r.pending
	}
	for {
		payload, rest, fin, rsv1, op, ok, err := nextFrame(buf)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		r.parsed++
		limit := r.segment
		if limit == 0 {
			limit = oneSegment
		}
		r.pieces = r.pieces || len(buf)-len(rest) > limit
		buf = rest
		switch op {
		case wsraw.OpClose:
			return errServerClosed
		case wsraw.OpPing:
			sink.ping(payload)
		case wsraw.OpPong:
		case wsraw.OpText, wsraw.OpBinary:
			if r.inFrag {
				return errors.New("a new message inside a fragmented one")
			}
			if fin {
				if err := r.deliver(payload, rsv1, sink); err != nil {
					return err
				}
				continue
			}
			r.frag, r.inFrag, r.fragZ = append(r.frag[:0], payload...), true, rsv1
		case wsraw.OpContinuation:
			if !r.inFrag {
				return errors.New("a continuation frame outside a message")
			}
			r.frag = append(r.frag, payload...)
			if fin {
				r.inFrag = false
				if err := r.deliver(r.frag, r.fragZ, sink); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("unknown opcode %#x", op)
		}
	}
	// Keep the incomplete frame (copy handles buf overlapping pending).
	if inPending {
		r.pending = r.pending[:copy(r.pending, buf)]
	} else {
		r.pending = append(r.pending[:0], buf...)
	}
	return nil
}

func (r *frameReader) deliver(payload []byte, compressed bool, sink frameSink) error {
	if !compressed {
		sink.message(payload)
		return nil
	}
	if !r.deflate {
		return errors.New("a compressed message without permessage-deflate")
	}
	inf := inflaters.Get().(*inflater)
	defer inflaters.Put(inf)
	msg, err := inf.inflate(payload)
	if err != nil {
		return fmt.Errorf("inflate: %w", err)
	}
	sink.message(msg)
	return nil
}

// nextFrame reads the frame at the start of buf; ok is false while it is
// incomplete.
func nextFrame(buf []byte) (payload, rest []byte, fin, rsv1 bool, op byte, ok bool, err error) {
	if len(buf) < 2 {
		return nil, buf, false, false, 0, false, nil
	}
	fin, rsv1, op = buf[0]&0x80 != 0, buf[0]&0x40 != 0, buf[0]&0x0f
	if buf[1]&0x80 != 0 {
		return nil, nil, false, false, 0, false, errors.New("a masked frame from the server")
	}
	n, h := uint64(buf[1]&0x7f), 2
	switch n {
	case 126:
		if len(buf) < 4 {
			return nil, buf, false, false, 0, false, nil
		}
		n, h = uint64(binary.BigEndian.Uint16(buf[2:])), 4
	case 127:
		if len(buf) < 10 {
			return nil, buf, false, false, 0, false, nil
		}
		n, h = binary.BigEndian.Uint64(buf[2:]), 10
	}
	if n > 64<<20 {
		return nil, nil, false, false, 0, false, fmt.Errorf("a %d-byte frame", n)
	}
	if uint64(len(buf)-h) < n {
		return nil, buf, false, false, 0, false, nil
	}
	end := h + int(n)
	return buf[h:end], buf[end:], fin, rsv1, op, true, nil
}

// inflater decompresses permessage-deflate messages sent without context
// takeover; one per message at a time, from a pool.
type inflater struct {
	src bytes.Reader
	r   io.ReadCloser
	out bytes.Buffer
}

// deflateTail ends a message's deflate stream: the sync marker the sender
// stripped (RFC 7692 §7.2.2), then an empty final block so that the
// reader reaches EOF.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

var inflaters = sync.Pool{New: func() any { return new(inflater) }}

func (f *inflater) inflate(p []byte) ([]byte, error) {
	f.src.Reset(append(p[:len(p):len(p)], deflateTail...))
	if f.r == nil {
		f.r = flate.NewReader(&f.src)
	} else if err := f.r.(flate.Resetter).Reset(&f.src, nil); err != nil {
		return nil, err
	}
	f.out.Reset()
	_, err := f.out.ReadFrom(f.r)
	return f.out.Bytes(), err
}
