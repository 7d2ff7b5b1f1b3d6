package handler_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/projects"
)

// A project that lists origins decides CORS on its paths: preflights and
// replies echo an allowed origin with Vary: Origin and refuse others with
// 403, over POST and WebSocket; other paths keep the handler's (any).
func TestProjectOriginsDriveCORS(t *testing.T) {
	gw, x, _ := startAccess(t, "")
	const allowed, other = "https://app.example", "https://evil.example"
	listed := createProject(t, x, projects.CreateRequest{Plan: "free", Origins: []string{allowed + "/"}})
	open := createProject(t, x, projects.CreateRequest{Plan: "free"})

	tests := []struct {
		name       string
		path       string
		method     string
		origin     string
		wantStatus int
		wantACAO   string // Access-Control-Allow-Origin
		wantVary   bool
	}{
		{"preflight from a listed origin", "/dev/" + listed.ID, http.MethodOptions, allowed, 204, allowed, true},
		{"preflight from another origin", "/dev/" + listed.ID, http.MethodOptions, other, 403, "", true},
		{"POST from a listed origin", "/dev/" + listed.ID, http.MethodPost, allowed, 200, allowed, true},
		{"POST with the origin in other case", "/dev/" + listed.ID, http.MethodPost, "HTTPS://APP.example", 200, "HTTPS://APP.example", true},
		{"POST from another origin", "/dev/" + listed.ID, http.MethodPost, other, 403, "", true},
		{"POST without Origin (no browser)", "/dev/" + listed.ID, http.MethodPost, "", 200, "", true},
		{"project without origins keeps the handler's", "/dev/" + open.ID, http.MethodPost, other, 200, "*", false},
		{"public path keeps the handler's", "/dev", http.MethodPost, other, 200, "*", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, gw.HTTP(tc.path), strings.NewReader(chainCall))
			req.Header.Set("Content-Type", "application/json")
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.method == http.MethodOptions {
				req.Header.Set("Access-Control-Request-Method", "POST")
				req.Header.Set("Access-Control-Request-Headers", "content-type")
			}
			resp, err := noKeepAlive.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := readAll(resp)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.wantACAO {
				t.Fatalf("Access-Control-Allow-Origin %q, want %q", got, tc.wantACAO)
			}
			vary := strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin")
			if vary != tc.wantVary {
				t.Fatalf("Vary %q; want Origin in it: %v", resp.Header.Values("Vary"), tc.wantVary)
			}
			if tc.wantStatus == 403 && tc.method == http.MethodPost {
				if e := decodeErr(t, body); e.Error == nil || e.Error.Code != -32003 {
					t.Fatalf("refusal body %s; want error -32003", body)
				}
			}
			if tc.wantStatus == 204 && resp.Header.Get("Access-Control-Allow-Methods") == "" {
				t.Fatal("preflight without Access-Control-Allow-Methods")
			}
		})
	}

	ws := []struct {
		name       string
		origin     string
		wantStatus int
	}{
		{"WebSocket from a listed origin", allowed, http.StatusSwitchingProtocols},
		{"WebSocket from another origin", other, http.StatusForbidden},
	}
	for _, tc := range ws {
		t.Run(tc.name, func(t *testing.T) {
			c, resp, err := websocket.DefaultDialer.Dial(gw.WS("/dev/"+listed.ID), http.Header{"Origin": {tc.origin}})
			if c != nil {
				defer c.Close()
			}
			if resp == nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("upgrade status %d, want %d (%v)", resp.StatusCode, tc.wantStatus, err)
			}
			if tc.wantStatus == http.StatusSwitchingProtocols {
				if err := c.WriteMessage(websocket.TextMessage, []byte(chainCall)); err != nil {
					t.Fatal(err)
				}
				if _, msg, err := c.ReadMessage(); err != nil || !strings.Contains(string(msg), `"result"`) {
					t.Fatalf("call over the socket: %s %v", msg, err)
				}
			}
		})
	}

	// A change of the project's origins applies to the next request.
	if _, err := x.Store().Update(context.Background(), listed.ID, projects.Patch{"origins": json.RawMessage(`["` + other + `"]`)}); err != nil {
		t.Fatal(err)
	}
	for origin, want := range map[string]int{allowed: 403, other: 200} {
		resp, body := postRaw(t, gw.HTTP("/dev/"+listed.ID), chainCall, http.Header{"Origin": {origin}})
		if resp.StatusCode != want {
			t.Fatalf("after the change, %s: status %d, want %d: %s", origin, resp.StatusCode, want, body)
		}
	}
}
