package handler

import (
	"bytes"
	"net/http"
	"reflect"
	"strconv"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/encode"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// compressMinSize is the smallest HTTP reply compressed: below it the
// bytes saved are not worth the CPU (most replies are a few hundred
// bytes; state_getMetadata is over 500 kB).
const compressMinSize = 1024

// encodePkg is the package of Caddy's `encode` handler, whose response
// writer in front of this handler compresses by itself.
var encodePkg = reflect.TypeOf(encode.Encode{}).PkgPath()

// Encoders are reused: a zstd encoder in particular is costly to build.
// Settings follow Caddy's `encode` defaults (gzip level 5, zstd default
// level with a window browsers accept).
var (
	gzipPool = sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(nil, 5)
		return w
	}}
	zstdPool = sync.Pool{New: func() any {
		w, _ := zstd.NewWriter(nil,
			zstd.WithWindowSize(128<<10),
			zstd.WithEncoderConcurrency(1),
			zstd.WithZeroFrames(true),
			zstd.WithEncoderLevel(zstd.SpeedDefault))
		return w
	}}
	bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

// writeReply writes a JSON-RPC response body, compressed with zstd or
// gzip when it is large enough, the client accepts one of them (its
// Accept-Encoding, q-values honoured) and no `encode` handler in front of
// this one will compress it.
func writeReply(w http.ResponseWriter, r *http.Request, body []byte) error {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	enc := ""
	if len(body) >= compressMinSize && hdr.Get("Content-Encoding") == "" && !encodeInFront(w) {
		hdr.Add("Vary", "Accept-Encoding")
		enc = negotiateEncoding(r)
	}
	if enc == "" {
		hdr.Set("Content-Length", strconv.Itoa(len(body)))
		_, err := w.Write(body)
		return err
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 4<<20 {
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	buf.Reset()
	if err := compress(buf, enc, body); err != nil {
		// Never seen with an in-memory buffer; the reply still goes out.
		hdr.Set("Content-Length", strconv.Itoa(len(body)))
		_, err := w.Write(body)
		return err
	}
	hdr.Set("Content-Encoding", enc)
	hdr.Set("Content-Length", strconv.Itoa(buf.Len()))
	_, err := w.Write(buf.Bytes())
	return err
}

func compress(buf *bytes.Buffer, enc string, body []byte) error {
	switch enc {
	case "zstd":
		zw := zstdPool.Get().(*zstd.Encoder)
		defer zstdPool.Put(zw)
		zw.Reset(buf)
		if _, err := zw.Write(body); err != nil {
			return err
		}
		return zw.Close()
	default:
		gw := gzipPool.Get().(*gzip.Writer)
		defer gzipPool.Put(gw)
		gw.Reset(buf)
		if _, err := gw.Write(body); err != nil {
			return err
		}
		return gw.Close()
	}
}

// negotiateEncoding picks zstd or gzip from the request's Accept-Encoding,
// or "" for identity (nothing accepted, or identity preferred).
func negotiateEncoding(r *http.Request) string {
	for _, name := range encode.AcceptedEncodings(r, []string{"zstd", "gzip"}) {
		switch name {
		case "zstd", "gzip":
			return name
		case "identity":
			return ""
		}
	}
	return ""
}

// encodeInFront reports whether Caddy's `encode` handler wraps w: it
// compresses with the operator's settings, so the handler leaves it to it.
func encodeInFront(w http.ResponseWriter) bool {
	for {
		if t := reflect.TypeOf(w); t.Kind() == reflect.Pointer && t.Elem().PkgPath() == encodePkg {
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}
