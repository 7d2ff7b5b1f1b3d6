package handler_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/elara-gateway/elara/internal/fakenode"
)

const metadataCall = `{"jsonrpc":"2.0","id":1,"method":"state_getMetadata","params":[]}`

// postEncoded POSTs body with the given Accept-Encoding (none when
// empty) on a client that leaves the reply as the gateway sent it, and
// returns the reply and its Content-Encoding.
func postEncoded(t *testing.T, url, acceptEncoding, body string) (enc string, raw []byte, resp *http.Response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, DisableKeepAlives: true}}
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Get("Content-Encoding"), raw, resp
}

func decompress(t *testing.T, enc string, raw []byte) []byte {
	t.Helper()
	var r io.Reader
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("not gzip: %v", err)
		}
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	case "":
		return raw
	default:
		t.Fatalf("unexpected Content-Encoding %q", enc)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decompressing %s: %v", enc, err)
	}
	return out
}

// Large HTTP replies are compressed for clients that ask, with the
// encoding they prefer; clients that do not ask get them as they are.
func TestHTTPRepliesCompressedWhenAccepted(t *testing.T) {
	gw, _ := start(t, "")
	_, identity, _ := postEncoded(t, gw.HTTP("/dev"), "", metadataCall)
	if len(identity) < fakenode.MetadataSize || !bytes.Contains(identity, []byte(`"result":"0x`)) {
		t.Fatalf("identity reply of %d bytes: %.100s", len(identity), identity)
	}
	cases := []struct {
		name, accept, body string
		wantEnc            string
	}{
		{"no Accept-Encoding", "", metadataCall, ""},
		{"gzip", "gzip", metadataCall, "gzip"},
		{"zstd", "zstd", metadataCall, "zstd"},
		{"both: zstd preferred", "gzip, deflate, br, zstd", metadataCall, "zstd"},
		{"q-values: gzip preferred", "zstd;q=0.5, gzip", metadataCall, "gzip"},
		{"identity preferred", "identity, gzip;q=0.1", metadataCall, ""},
		{"gzip refused", "gzip;q=0", metadataCall, ""},
		{"only unsupported", "br", metadataCall, ""},
		{"small reply", "gzip, zstd", `{"jsonrpc":"2.0","id":1,"method":"system_chain","params":[]}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			enc, raw, resp := postEncoded(t, gw.HTTP("/dev"), tc.accept, tc.body)
			if enc != tc.wantEnc {
				t.Fatalf("Content-Encoding %q, want %q", enc, tc.wantEnc)
			}
			if resp.Header.Get("Content-Length") != "" && resp.ContentLength != int64(len(raw)) {
				t.Fatalf("Content-Length %d for %d bytes", resp.ContentLength, len(raw))
			}
			got := decompress(t, enc, raw)
			if tc.body == metadataCall {
				if !bytes.Equal(got, identity) {
					t.Fatalf("decoded reply (%d bytes) differs from the identity one (%d bytes)", len(got), len(identity))
				}
				// The fake metadata is random hex, which zstd's fast levels
				// store as is; real metadata shrinks several times.
				if enc == "gzip" && len(raw) > len(identity)*3/5 {
					t.Fatalf("%s reply is %d bytes for %d: not compressed", enc, len(raw), len(identity))
				}
			} else if string(got) != `{"jsonrpc":"2.0","id":1,"result":"Fake Dev"}` {
				t.Fatalf("reply %s", got)
			}
		})
	}
	// Go's default client asks for gzip and decodes it by itself.
	resp, err := http.Post(gw.HTTP("/dev"), "application/json", strings.NewReader(metadataCall))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if !resp.Uncompressed || !bytes.Equal(got, identity) {
		t.Fatalf("default Go client: decompressed by the transport %v, same reply %v", resp.Uncompressed, bytes.Equal(got, identity))
	}
}

// With Caddy's `encode` in front, the reply is compressed once, by
// `encode` with the operator's settings.
func TestHTTPCompressionLeftToEncodeInFront(t *testing.T) {
	gw, _ := start(t, `
	encode gzip
	elara_rpc`)
	_, identity, _ := postEncoded(t, gw.HTTP("/dev"), "", metadataCall)
	for _, accept := range []string{"gzip", "zstd"} {
		t.Run(accept, func(t *testing.T) {
			enc, raw, _ := postEncoded(t, gw.HTTP("/dev"), accept, metadataCall)
			// encode offers gzip only: a zstd-only client gets identity.
			want := map[string]string{"gzip": "gzip", "zstd": ""}[accept]
			if enc != want {
				t.Fatalf("Content-Encoding %q, want %q", enc, want)
			}
			if got := decompress(t, enc, raw); !bytes.Equal(got, identity) {
				t.Fatalf("one decoding does not give the reply back (%d bytes, %.40q)", len(got), got)
			}
		})
	}
}
