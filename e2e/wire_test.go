package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// wireResult is what testdata/wire.mjs reports.
type wireResult struct {
	Code       int    `json:"code"`
	Reason     string `json:"reason"`
	Extensions string `json:"extensions"`
	Length     int    `json:"length"`
	SHA256     string `json:"sha256"`
	Error      string `json:"error"`
}

func runWire(t *testing.T, args ...string) wireResult {
	t.Helper()
	var r wireResult
	runScript(t, 60*time.Second, nil, &r, "wire.mjs", args...)
	if r.Error != "" {
		t.Fatalf("wire.mjs %v: %s", args, r.Error)
	}
	return r
}

// A message over max_request_size (8 MiB by default) from the `ws`
// library polkadot.js uses closes with 1009 and a reason: not the 1006 of
// a connection reset under the close frame while the client still sends.
func TestOversizedMessageCloseCodeWithWS(t *testing.T) {
	n := realNode(t)
	g := startGateway(t, n, publicCaddyfile, nil, chainURLPath)
	cases := []struct {
		name    string
		size    int
		deflate string
	}{
		{"9 MB, uncompressed", 9 << 20, "0"},
		{"30 MB, uncompressed", 30 << 20, "0"},
		{"9 MB, permessage-deflate (limit on the decompressed size)", 9 << 20, "1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runWire(t, "oversize", g.wsURL(chainURLPath), strconv.Itoa(tc.size), tc.deflate)
			if r.Code != 1009 || !strings.Contains(r.Reason, "max_request_size") {
				t.Fatalf("closed with %d %q, want 1009 naming max_request_size", r.Code, r.Reason)
			}
			if got := strings.Contains(r.Extensions, "permessage-deflate"); got != (tc.deflate == "1") {
				t.Fatalf("extensions %q with deflate offered %s", r.Extensions, tc.deflate)
			}
		})
		g.alive(t)
	}
}

// The real runtime's metadata comes back intact and smaller: over HTTP to
// Go clients that accept gzip or zstd, over WebSocket to the `ws` library
// that offers permessage-deflate.
func TestCompressionWithRealMetadata(t *testing.T) {
	n := realNode(t)
	g := startGateway(t, n, publicCaddyfile, nil, chainURLPath)
	var direct string
	if err := rpcResult(n.httpURL(), "state_getMetadata", nil, &direct); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(direct))
	want := hex.EncodeToString(sum[:])

	body := string(request(1, "state_getMetadata", nil))
	for _, enc := range []string{"", "gzip", "zstd"} {
		t.Run("http "+enc, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, g.httpURL(chainURLPath), strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if enc != "" {
				req.Header.Set("Accept-Encoding", enc)
			}
			client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: callTimeout}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if got := resp.Header.Get("Content-Encoding"); got != enc {
				t.Fatalf("Content-Encoding %q, want %q", got, enc)
			}
			plain := raw
			switch enc {
			case "gzip":
				zr, err := gzip.NewReader(bytes.NewReader(raw))
				if err != nil {
					t.Fatal(err)
				}
				plain, err = io.ReadAll(zr)
				if err != nil {
					t.Fatal(err)
				}
			case "zstd":
				zr, err := zstd.NewReader(bytes.NewReader(raw))
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				plain, err = io.ReadAll(zr)
				if err != nil {
					t.Fatal(err)
				}
			}
			var r rpcResponse
			if err := json.Unmarshal(plain, &r); err != nil {
				t.Fatalf("reply: %v", err)
			}
			var meta string
			_ = json.Unmarshal(r.Result, &meta)
			if s := sha256.Sum256([]byte(meta)); hex.EncodeToString(s[:]) != want {
				t.Fatalf("metadata differs from the node's")
			}
			t.Logf("%s: %d bytes on the wire for %d", map[string]string{"": "identity"}[enc]+enc, len(raw), len(plain))
			if enc != "" && len(raw) > len(plain)/2 {
				t.Fatalf("%s reply is %d bytes for %d", enc, len(raw), len(plain))
			}
		})
	}
	for _, deflate := range []string{"0", "1"} {
		t.Run("websocket deflate "+deflate, func(t *testing.T) {
			r := runWire(t, "metadata", g.wsURL(chainURLPath), deflate)
			if r.SHA256 != want {
				t.Fatalf("metadata of %d chars differs from the node's", r.Length)
			}
			if got := strings.Contains(r.Extensions, "permessage-deflate"); got != (deflate == "1") {
				t.Fatalf("extensions %q with deflate offered %s", r.Extensions, deflate)
			}
		})
	}
}

// A real browser gets metadata compressed both ways, and decodes it to
// the node's exact bytes: fetch() with Chromium's own Accept-Encoding, and
// a WebSocket with its own permessage-deflate offer.
func TestCompressionInBrowser(t *testing.T) {
	chromium := requireBrowser(t)
	n := realNode(t)
	g := startGateway(t, n, publicCaddyfile, nil, chainURLPath)
	var direct string
	if err := rpcResult(n.httpURL(), "state_getMetadata", nil, &direct); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(direct))
	want := hex.EncodeToString(sum[:])

	var r struct {
		ContentEncoding string `json:"contentEncoding"`
		EncodedBodySize int    `json:"encodedBodySize"`
		DecodedBodySize int    `json:"decodedBodySize"`
		HTTPSHA256      string `json:"httpSHA256"`
		WSSHA256        string `json:"wsSHA256"`
		WSExtensions    string `json:"wsExtensions"`
	}
	runBrowserScript(t, chromium, "browser_wire.mjs", &r, g.httpURL(chainURLPath), g.wsURL(chainURLPath))
	t.Logf("fetch: Content-Encoding %s, %d bytes on the wire for %d; WebSocket extensions %q", r.ContentEncoding, r.EncodedBodySize, r.DecodedBodySize, r.WSExtensions)
	if r.ContentEncoding != "zstd" && r.ContentEncoding != "gzip" {
		t.Errorf("fetch: Content-Encoding %q, want zstd or gzip", r.ContentEncoding)
	}
	if r.EncodedBodySize <= 0 || r.EncodedBodySize > r.DecodedBodySize/2 {
		t.Errorf("fetch: %d bytes on the wire for %d", r.EncodedBodySize, r.DecodedBodySize)
	}
	if r.HTTPSHA256 != want || r.WSSHA256 != want {
		t.Errorf("metadata differs from the node's: fetch %v, WebSocket %v", r.HTTPSHA256 == want, r.WSSHA256 == want)
	}
	if !strings.Contains(r.WSExtensions, "permessage-deflate") {
		t.Errorf("WebSocket extensions %q, want permessage-deflate", r.WSExtensions)
	}
}
