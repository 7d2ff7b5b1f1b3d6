package handler_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/elara-gateway/elara/internal/testgw"
	"github.com/elara-gateway/elara/projects"
)

// A project's limits are resolved once per project and kept between
// calls; a change to the project applies from the next call on, on a
// connection that stays open too.
func TestAccessLimitsChangeAppliesToTheNextCall(t *testing.T) {
	gw, x, _ := startAccess(t, "")
	for _, tc := range []struct {
		name string
		call func(t *testing.T, path string) (code int)
	}{
		{"http", func(t *testing.T, path string) int {
			_, body := postRaw(t, gw.HTTP(path), chainCall, nil)
			var r struct {
				Error *struct{ Code int }
			}
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if r.Error == nil {
				return 0
			}
			return r.Error.Code
		}},
		{"ws", func() func(t *testing.T, path string) int {
			var c *testgw.WSClient
			return func(t *testing.T, path string) int {
				if c == nil {
					c = testgw.Dial(t, gw.WS(path))
				}
				return c.Call("system_chain", []any{}).ErrCode()
			}
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := createProject(t, x, projects.CreateRequest{Plan: "free"})
			path := "/dev/" + p.ID
			for i := range 3 {
				if code := tc.call(t, path); code != 0 {
					t.Fatalf("call %d on a plan without limits: error %d", i+1, code)
				}
			}
			patch := projects.Patch{"limits": json.RawMessage(`{"requests_per_day":4}`)}
			if _, err := x.Store().Update(context.Background(), p.ID, patch); err != nil {
				t.Fatal(err)
			}
			if code := tc.call(t, path); code != 0 {
				t.Fatalf("the 4th call of 4 a day: error %d", code)
			}
			// The 5th call suspends the project, which also closes its
			// WebSockets (1008), racing the refusal's reply: ask over HTTP.
			_, body := postRaw(t, gw.HTTP(path), chainCall, nil)
			var r struct {
				Error *struct{ Code int }
			}
			if err := json.Unmarshal(body, &r); err != nil || r.Error == nil || r.Error.Code != -32029 {
				t.Fatalf("the 5th call of 4 a day: %s, want -32029", body)
			}
		})
	}
}
