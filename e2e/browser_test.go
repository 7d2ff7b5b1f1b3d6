package e2e

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corsCaddyfile: the default handler (every origin) on /westend, one whose
// origin list leaves the page out on /others/westend, and one that lists
// the page's origin on /page/westend.
const corsCaddyfile = globalOptionsTemplate + `
http://127.0.0.1:@@HTTP_PORT@@ {
	handle_path /others/* {
		elara_rpc {
			origins https://dapp.example.com
		}
	}
	handle_path /page/* {
		elara_rpc {
			origins https://dapp.example.com @@PAGE_ORIGIN@@
		}
	}
	handle {
		elara_rpc
	}
}
`

// browserCall is what the page saw for one way of calling.
type browserCall struct {
	OK     bool   `json:"ok"`
	Status int    `json:"status"`
	Error  string `json:"error"`
	Code   int    `json:"code"` // WebSocket close code when it closed first
	Body   struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	} `json:"body"`
}

// TestBrowserCORS: a page on one origin (a static server in the test)
// calls the gateway, on another origin, from headless Chromium with fetch
// (POST JSON, so the browser sends a preflight) and over a WebSocket.
// Both work with the default config and with an origin list naming the
// page; both are refused with a list that leaves the page out.
func TestBrowserCORS(t *testing.T) {
	chromium := requireBrowser(t)
	n := realNode(t)
	page, err := os.ReadFile(filepath.Join(testdataDir, "browser_cors_page.html"))
	if err != nil {
		t.Fatal(err)
	}
	origin := servePage(t, page)
	g := startGateway(t, n, corsCaddyfile, map[string]string{"PAGE_ORIGIN": origin}, chainURLPath)

	var chain string
	if err := rpcResult(n.httpURL(), "system_chain", nil, &chain); err != nil || chain == "" {
		t.Fatalf("system_chain directly on the node: %q, %v", chain, err)
	}
	wantResult, _ := json.Marshal(chain)

	cases := []struct {
		name, prefix string
		served       bool
	}{
		{"default config", "", true},
		{"origin list with the page", "/page", true},
		{"origin list without the page", "/others", false},
	}
	type endpoint struct {
		Name string `json:"name"`
		HTTP string `json:"http"`
		WS   string `json:"ws"`
	}
	var endpoints []endpoint
	for _, tc := range cases {
		endpoints = append(endpoints, endpoint{tc.name, g.httpURL(tc.prefix + chainURLPath), g.wsURL(tc.prefix + chainURLPath)})
	}
	list, _ := json.Marshal(endpoints)
	pageURL := origin + "/?endpoints=" + url.QueryEscape(string(list))

	var out struct {
		Results map[string]struct {
			Fetch browserCall `json:"fetch"`
			WS    browserCall `json:"ws"`
		} `json:"results"`
		Log []string `json:"log"`
	}
	runBrowserScript(t, chromium, "browser_cors.mjs", &out, pageURL)
	t.Logf("page %s; browser log:\n%s", origin, strings.Join(out.Log, "\n"))

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := out.Results[tc.name]
			if !ok {
				t.Fatalf("the page has no result for %q: %+v", tc.name, out.Results)
			}
			endpoint, wsEndpoint := g.httpURL(tc.prefix+chainURLPath), g.wsURL(tc.prefix+chainURLPath)
			if tc.served {
				if logHas(out.Log, "'"+endpoint+"'") || logHas(out.Log, "'"+wsEndpoint+"'") {
					t.Errorf("the browser reported a problem with %s: %q", endpoint, out.Log)
				}
				if !r.Fetch.OK || r.Fetch.Status != 200 || r.Fetch.Body.Error != nil ||
					string(r.Fetch.Body.ID) != "1" || string(r.Fetch.Body.Result) != string(wantResult) {
					t.Errorf("fetch from %s: %+v, want HTTP 200 with id 1 and result %s", origin, r.Fetch, wantResult)
				}
				if !r.WS.OK || r.WS.Body.Error != nil || string(r.WS.Body.ID) != `"ws-1"` || string(r.WS.Body.Result) != string(wantResult) {
					t.Errorf("WebSocket from %s: %+v, want id \"ws-1\" and result %s", origin, r.WS, wantResult)
				}
				return
			}
			// The page only learns that the browser refused: fetch rejects
			// with a TypeError, the WebSocket closes abnormally (1006).
			if r.Fetch.OK || !strings.Contains(r.Fetch.Error, "TypeError") {
				t.Errorf("fetch from %s, not listed: %+v, want it refused (TypeError)", origin, r.Fetch)
			}
			if r.WS.OK || r.WS.Code != 1006 {
				t.Errorf("WebSocket from %s, not listed: %+v, want it refused (close 1006)", origin, r.WS)
			}
			// ...and the browser says why: the gateway's answers.
			if !logHas(out.Log, "'"+endpoint+"'", "blocked by CORS policy") {
				t.Errorf("the browser did not report the fetch to %s blocked by CORS policy: %q", endpoint, out.Log)
			}
			if !logHas(out.Log, "'"+wsEndpoint+"'", "403") {
				t.Errorf("the browser did not report the WebSocket handshake to %s refused with 403: %q", wsEndpoint, out.Log)
			}
		})
	}
}

// logHas reports whether one line of the browser log holds every part.
func logHas(log []string, parts ...string) bool {
	for _, l := range log {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}
