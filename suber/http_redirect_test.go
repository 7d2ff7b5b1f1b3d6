package suber_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// An HTTP node that redirects is an error, and the configured headers
// (API keys) never reach the server it redirects to.
func TestHTTPNodeDoesNotFollowRedirects(t *testing.T) {
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var mu sync.Mutex
			var leaked []string
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				if k := r.Header.Get("X-Api-Key"); k != "" {
					leaked = append(leaked, k)
				}
				mu.Unlock()
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":"Other"}`))
			}))
			t.Cleanup(other.Close)
			node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.URL+"/rpc", status)
			}))
			t.Cleanup(node.Close)

			opts := fastOptions(1)
			opts.Header = http.Header{"X-Api-Key": {"secret-key"}}
			n := startNode(t, node.URL, opts)
			res, err := n.Call(ctxTimeout(t, 5*time.Second), "system_chain", nil)
			if err == nil || !strings.Contains(err.Error(), "redirect") {
				t.Fatalf("call through a redirect: %s, %v; want a redirect error", res, err)
			}
			if strings.Contains(err.Error(), "secret-key") {
				t.Fatalf("the error names the key: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(leaked) > 0 {
				t.Fatalf("the API key reached the server redirected to: %v", leaked)
			}
		})
	}
}
