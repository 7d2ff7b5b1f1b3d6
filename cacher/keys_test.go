package cacher

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSplitParams(t *testing.T) {
	cases := []struct {
		name   string
		params string
		want   string // joined canonical form; "!" = not an array
	}{
		{"absent", "", "[]"},
		{"null", "null", "[]"},
		{"empty", "[]", "[]"},
		{"trailing null", `["0x01",null]`, `["0x01"]`},
		{"several trailing nulls", `["0x01",null,null]`, `["0x01"]`},
		{"inner null kept", `["0x01",null,5]`, `["0x01",null,5]`},
		{"only nulls", `[null,null]`, "[]"},
		{"named params", `{"key":"0x01"}`, "!"},
		{"nested arrays", `[["0x01","0x02"],"0xab"]`, `[["0x01","0x02"],"0xab"]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p json.RawMessage
			if tc.params != "" {
				p = json.RawMessage(tc.params)
			}
			elems, ok := splitParams(p)
			if tc.want == "!" {
				if ok {
					t.Fatalf("accepted %s", tc.params)
				}
				return
			}
			if !ok {
				t.Fatalf("refused %s", tc.params)
			}
			if got := string(joinParams(elems)); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestKeysNeverCollide(t *testing.T) {
	id := chainID("dev", "0x"+strings.Repeat("ab", 32))
	long := `["0x` + strings.Repeat("00", 300) + `"]`
	keys := map[string]string{}
	for _, c := range []struct{ scope, method, params string }{
		{scopeBlock, "m", `[12]`},
		{scopeBlock, "m", `[1,2]`},
		{scopeBlock, "m", `["12"]`},
		{scopeBlock, "m", `[[1],2]`},
		{scopeBlock, "m", `[[1,2]]`},
		{scopeBlock, "m2", `[12]`},
		{scopeTTL, "m", `[12]`},
		{scopeRuntime + "1", "m", `[]`},
		{scopeRuntime + "12", "m", `[]`},
		{scopeBlock, "m", long},
		{scopeBlock, "m", long[:len(long)-2] + `1"]`},
	} {
		k := buildKey(id, c.scope, c.method, json.RawMessage(c.params))
		what := c.scope + " " + c.method + " " + c.params
		if prev, dup := keys[k]; dup {
			t.Fatalf("%q and %q share key %q", prev, what, k)
		}
		keys[k] = what
		if len(k) > 200 {
			t.Fatalf("key of %d bytes for %s: long params must be hashed", len(k), c.method)
		}
	}
	if a, b := chainID("dev", "0x"+strings.Repeat("ab", 32)), chainID("dev", "0x"+strings.Repeat("cd", 32)); a == b {
		t.Fatal("chains with different genesis share an id")
	}
}

func TestWithHash(t *testing.T) {
	h := "0x" + strings.Repeat("ab", 32)
	cases := []struct {
		name  string
		elems string
		pos   int
		want  string
	}{
		{"storage key", `["0x01"]`, 1, `["0x01","` + h + `"]`},
		{"keys paged pads start key", `["0x01",10]`, 3, `["0x01",10,null,"` + h + `"]`},
		{"metadata", `[]`, 0, `["` + h + `"]`},
		{"state_call", `["Core_version","0x"]`, 2, `["Core_version","0x","` + h + `"]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			elems, _ := splitParams(json.RawMessage(tc.elems))
			if got := string(joinParams(withHash(elems, tc.pos, h))); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestBlockNumbers(t *testing.T) {
	cases := []struct {
		name string
		raw  string
		want uint64
		ok   bool
	}{
		{"number", `7`, 7, true},
		{"hex string", `"0x1f"`, 31, true},
		{"list", `[1,"0x10",3]`, 16, true},
		{"bad hex", `"1f"`, 0, false},
		{"negative", `-1`, 0, false},
		{"float", `1.5`, 0, false},
		{"empty list", `[]`, 0, false},
		{"object", `{}`, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := maxBlockNumber(json.RawMessage(tc.raw))
			if ok != tc.ok || got != tc.want {
				t.Fatalf("got %d %v, want %d %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestIsBlockHash(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for raw, want := range map[string]bool{
		`"0x` + h + `"`:        true,
		`"0x` + h[:62] + `"`:   false,
		`"0x` + h + `00"`:      false,
		`"0x` + h[:62] + `zz"`: false,
		`null`:                 false,
		`12`:                   false,
	} {
		if isBlockHash(json.RawMessage(raw)) != want {
			t.Errorf("isBlockHash(%s) = %v", raw, !want)
		}
	}
}
