package projects

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
)

// Origins are kept in the form browsers send (scheme and host in lower
// case, no default port), so one written with :443 or in capitals still
// lets its browser in.
func TestOriginsNormalized(t *testing.T) {
	cases := []struct {
		name   string
		origin string
		stored string
		sent   string // an Origin header a browser at that origin sends
	}{
		{"default https port", "https://app.example.com:443", "https://app.example.com", "https://app.example.com"},
		{"default http port", "http://localhost:80", "http://localhost", "http://localhost"},
		{"capitals", "HTTPS://App.Example.COM", "https://app.example.com", "https://app.example.com"},
		{"other port kept", "http://localhost:3000", "http://localhost:3000", "http://localhost:3000"},
		{"trailing slash", "https://app.example.com/", "https://app.example.com", "https://app.example.com"},
		{"IPv6", "https://[::1]:443", "https://[::1]", "https://[::1]"},
		{"any", "*", "*", "https://whatever.example"},
	}
	for _, m := range makers[:2] {
		t.Run(m.name, func(t *testing.T) {
			s := m.make(t, newClock())
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					body, _ := json.Marshal(map[string]any{"name": "o", "plan": "gold", "origins": []string{c.origin}})
					p := create(t, s, string(body))
					check := func(how string, p Project) {
						t.Helper()
						if !slices.Equal(p.Origins, []string{c.stored}) {
							t.Errorf("%s: origins %q, want %q", how, p.Origins, c.stored)
						}
						if !p.AllowsOrigin(c.sent) {
							t.Errorf("%s: a browser at %s is refused", how, c.sent)
						}
						if c.origin != "*" && p.AllowsOrigin("https://evil.example") {
							t.Errorf("%s: another origin is allowed", how)
						}
					}
					check("created", p)
					got, _ := s.Lookup(p.ID)
					check("looked up", got)

					patch := Patch{"origins": json.RawMessage(`["https://other.example", ` + string(mustJSON(c.origin)) + `]`)}
					u, err := s.Update(context.Background(), p.ID, patch)
					if err != nil {
						t.Fatal(err)
					}
					if u.Origins[1] != c.stored || !u.AllowsOrigin(c.sent) {
						t.Errorf("patched: origins %q", u.Origins)
					}
				})
			}
		})
	}
	// A project stored before origins were normalized still matches.
	old := Project{Origins: []string{"https://App.example.com:443"}}
	if !old.AllowsOrigin("https://app.example.com") {
		t.Error("an origin stored with :443 does not match its browser")
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
