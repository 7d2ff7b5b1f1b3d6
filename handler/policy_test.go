package handler_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/elara-gateway/elara/handler"
)

// unsafeExamples expands UnsafeMethods into concrete method names: each
// exact entry, and for each pattern a few names it must cover.
func unsafeExamples(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, m := range handler.UnsafeMethods {
		pre, suf, wild := strings.Cut(m, "*")
		if !wild {
			out = append(out, m)
			continue
		}
		out = append(out, pre+"x"+suf, pre+"newBlock"+suf, pre+suf)
	}
	if len(out) == 0 {
		t.Fatal("UnsafeMethods is empty")
	}
	return out
}

func mustPolicy(t *testing.T, allow, deny []string) *handler.Policy {
	t.Helper()
	p, err := handler.NewPolicy(allow, deny)
	if err != nil {
		t.Fatalf("NewPolicy(%q, %q): %v", allow, deny, err)
	}
	return p
}

func TestUnsafeMethodsListed(t *testing.T) {
	// The methods Substrate marks unsafe, which must never be open by default.
	must := []string{
		"author_insertKey", "author_rotateKeys", "author_hasKey", "author_hasSessionKeys",
		"author_removeExtrinsic", "offchain_localStorageSet", "offchain_localStorageGet",
		"system_addReservedPeer", "system_removeReservedPeer", "system_addLogFilter",
		"system_resetLogFilter", "system_nodeRoles", "system_peers", "system_unstable_networkState",
		"system_dryRun", "state_getPairs", "state_queryStorage", "state_traceBlock",
		"dev_newBlock", "dev_getBlockStats",
		"babe_epochAuthorship", "statement_dump", "statement_remove",
	}
	p := mustPolicy(t, nil, nil)
	for _, m := range must {
		if p.Allowed(m) {
			t.Errorf("%s is allowed by default", m)
		}
	}
}

func TestPolicyDefaultDeniesUnsafe(t *testing.T) {
	examples := unsafeExamples(t)
	policies := []struct {
		name        string
		allow, deny []string
	}{
		{"default", nil, nil},
		{"allow star", []string{"*"}, nil},
		{"allow prefix patterns", []string{"author_*", "offchain_*", "system_*", "state_*", "dev_*", "sudo_*", "engine_*"}, nil},
		{"allow suffix patterns", []string{"*Key", "*Keys", "*Peer", "*Block", "*Set", "*Get", "*Clear", "*Filter", "*Pairs"}, nil},
		{"allow infix patterns", []string{"a*y", "s*s", "o*t", "d*k"}, nil},
		{"deny other things", nil, []string{"chain_*"}},
	}
	for _, pol := range policies {
		t.Run(pol.name, func(t *testing.T) {
			p := mustPolicy(t, pol.allow, pol.deny)
			for _, m := range examples {
				if p.Allowed(m) {
					t.Errorf("unsafe method %s allowed", m)
				}
			}
		})
	}
}

func TestPolicyExactAllowOpensOneUnsafeMethod(t *testing.T) {
	for _, m := range unsafeExamples(t) {
		t.Run(m, func(t *testing.T) {
			p := mustPolicy(t, []string{m}, nil)
			if !p.Allowed(m) {
				t.Errorf("exact allow %s does not open it", m)
			}
			for _, other := range unsafeExamples(t) {
				if other != m && p.Allowed(other) {
					t.Errorf("allow %s also opened %s", m, other)
				}
			}
			if p.Allowed("system_chain") {
				t.Errorf("allow list [%s] admits system_chain", m)
			}
			// With a wildcard next to it, still only the named unsafe method opens.
			p = mustPolicy(t, []string{"*", m}, nil)
			if !p.Allowed(m) || !p.Allowed("system_chain") {
				t.Errorf("allow [* %s]: %s=%v system_chain=%v", m, m, p.Allowed(m), p.Allowed("system_chain"))
			}
			for _, other := range unsafeExamples(t) {
				if other != m && p.Allowed(other) {
					t.Errorf("allow [* %s] also opened %s", m, other)
				}
			}
			// Deny wins over the exact allow.
			p = mustPolicy(t, []string{m}, []string{m})
			if p.Allowed(m) {
				t.Errorf("deny %s does not win over allow %s", m, m)
			}
		})
	}
}

func TestPolicyMatrix(t *testing.T) {
	cases := []struct {
		name        string
		allow, deny []string
		allowed     []string
		denied      []string
	}{
		{
			name:    "default allows safe methods",
			allowed: []string{"system_chain", "chain_getBlock", "state_getStorage", "author_submitExtrinsic", "rpc_methods", "state_getKeysPaged", "x"},
			denied:  []string{"author_rotateKeys", "dev_newBlock"},
		},
		{
			name:    "allow star is everything safe",
			allow:   []string{"*"},
			allowed: []string{"system_chain", "anything", "a"},
			denied:  []string{"author_insertKey", "sudo_x"},
		},
		{
			name:    "exact allow list",
			allow:   []string{"system_chain", "chain_getBlock"},
			allowed: []string{"system_chain", "chain_getBlock"},
			denied:  []string{"system_chainType", "chain_getBlockHash", "system_chai", "state_getStorage"},
		},
		{
			name:    "prefix pattern",
			allow:   []string{"chain_*"},
			allowed: []string{"chain_getBlock", "chain_", "chain_subscribeNewHeads"},
			denied:  []string{"chain", "xchain_getBlock", "state_getStorage"},
		},
		{
			name:    "suffix pattern",
			allow:   []string{"*_getStorage"},
			allowed: []string{"state_getStorage", "childstate_getStorage", "_getStorage", "state_getStorageAt"}, // an alias
			denied:  []string{"state_getStorageHash", "getStorage"},
		},
		{
			name:    "infix pattern does not overlap",
			allow:   []string{"ab*ba"},
			allowed: []string{"abba", "abxba", "ab_ba"},
			denied:  []string{"aba", "ab", "ba", "abbax"},
		},
		{
			name:    "deny wins over allow",
			allow:   []string{"chain_*"},
			deny:    []string{"chain_getBlock"},
			allowed: []string{"chain_getHeader"},
			denied:  []string{"chain_getBlock"},
		},
		{
			name:    "deny pattern",
			deny:    []string{"state_*"},
			allowed: []string{"chain_getBlock"},
			denied:  []string{"state_getStorage", "state_call"},
		},
		{
			name:    "deny suffix pattern",
			deny:    []string{"*Storage"},
			allowed: []string{"state_getStorageHashAt"},
			denied:  []string{"state_getStorage", "childstate_getStorage", "state_getStorageAt"}, // an alias
		},
		{
			name:   "deny star denies everything",
			allow:  []string{"system_chain", "author_rotateKeys"},
			deny:   []string{"*"},
			denied: []string{"system_chain", "author_rotateKeys", "x"},
		},
		{
			name:    "matching is case-sensitive",
			allow:   []string{"system_chain"},
			allowed: []string{"system_chain"},
			denied:  []string{"System_chain", "SYSTEM_CHAIN"},
		},
		{
			name:    "unsafe pattern member opened exactly, siblings stay shut",
			allow:   []string{"*", "dev_newBlock"},
			allowed: []string{"dev_newBlock", "system_chain"},
			denied:  []string{"dev_setStorage", "dev_timeTravel", "sudo_x"},
		},
		{
			name:   "an exact allow does not open an unsafe pattern",
			allow:  []string{"dev_*"},
			denied: []string{"dev_newBlock", "dev_", "system_chain"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPolicy(t, tc.allow, tc.deny)
			for _, m := range tc.allowed {
				if !p.Allowed(m) {
					t.Errorf("%s denied, want allowed", m)
				}
			}
			for _, m := range tc.denied {
				if p.Allowed(m) {
					t.Errorf("%s allowed, want denied", m)
				}
			}
		})
	}
}

func TestNewPolicyRejectsBadPatterns(t *testing.T) {
	cases := []struct {
		name        string
		allow, deny []string
		wantInErr   string
	}{
		{"two stars in allow", []string{"a*b*"}, nil, "allow"},
		{"double star in allow", []string{"**"}, nil, "allow"},
		{"empty allow entry", []string{"system_chain", ""}, nil, "allow"},
		{"two stars in deny", nil, []string{"*x*"}, "deny"},
		{"empty deny entry", nil, []string{""}, "deny"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := handler.NewPolicy(tc.allow, tc.deny)
			if err == nil {
				t.Fatalf("got policy %+v, want an error", p)
			}
			if !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("error %q does not say which list (%s)", err, tc.wantInErr)
			}
		})
	}
}

func TestFilterMethods(t *testing.T) {
	cases := []struct {
		name        string
		allow, deny []string
		in          string
		wantMethods []string
		wantOther   map[string]string // other members, raw
	}{
		{
			name:        "default drops unsafe, keeps version",
			in:          `{"version":1,"methods":["system_chain","author_rotateKeys","chain_getBlock","dev_newBlock","offchain_localStorageGet"]}`,
			wantMethods: []string{"system_chain", "chain_getBlock"},
			wantOther:   map[string]string{"version": "1"},
		},
		{
			name:        "deny list applies, order kept",
			deny:        []string{"state_*"},
			in:          `{"methods":["z_last","state_call","a_first","state_getStorage","m_mid"],"extra":{"a":[1,2]}}`,
			wantMethods: []string{"z_last", "a_first", "m_mid"},
			wantOther:   map[string]string{"extra": `{"a":[1,2]}`},
		},
		{
			name:        "allow list applies",
			allow:       []string{"chain_*", "author_rotateKeys"},
			in:          `{"version":1,"methods":["system_chain","author_rotateKeys","chain_getBlock","author_insertKey"]}`,
			wantMethods: []string{"author_rotateKeys", "chain_getBlock"},
			wantOther:   map[string]string{"version": "1"},
		},
		{
			name:        "everything removed gives an empty array",
			deny:        []string{"*"},
			in:          `{"version":1,"methods":["a","b"]}`,
			wantMethods: []string{},
			wantOther:   map[string]string{"version": "1"},
		},
		{
			name:        "empty list",
			in:          `{"methods":[]}`,
			wantMethods: []string{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPolicy(t, tc.allow, tc.deny)
			out, err := p.FilterMethods(json.RawMessage(tc.in))
			if err != nil {
				t.Fatalf("FilterMethods: %v", err)
			}
			if !json.Valid(out) {
				t.Fatalf("output is not JSON: %s", out)
			}
			var got map[string]json.RawMessage
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			var methods []string
			if err := json.Unmarshal(got["methods"], &methods); err != nil {
				t.Fatalf("methods member %s: %v", got["methods"], err)
			}
			if methods == nil {
				t.Fatalf("methods member is %s, want an array", got["methods"])
			}
			if !reflect.DeepEqual(methods, tc.wantMethods) {
				t.Errorf("methods = %q, want %q", methods, tc.wantMethods)
			}
			if len(got) != len(tc.wantOther)+1 {
				t.Errorf("members %v, want methods plus %v", keys(got), tc.wantOther)
			}
			for k, v := range tc.wantOther {
				if string(got[k]) != v {
					t.Errorf("member %s = %s, want %s", k, got[k], v)
				}
			}
		})
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestFilterMethodsBadInput(t *testing.T) {
	p := mustPolicy(t, nil, nil)
	cases := []struct {
		name string
		in   string
	}{
		{"empty", ``},
		{"not json", `{"methods":`},
		{"array", `["system_chain"]`},
		{"string", `"x"`},
		{"null", `null`},
		{"no methods member", `{"version":1}`},
		{"methods not an array", `{"methods":"system_chain"}`},
		{"methods of numbers", `{"methods":[1,2]}`},
		{"methods an object", `{"methods":{"a":1}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := p.FilterMethods(json.RawMessage(tc.in))
			if err == nil {
				t.Fatalf("got %s, want an error", out)
			}
		})
	}
}
