package app

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/elara-gateway/elara/suber"
)

// provisionOne provisions one chain as a config would and returns its
// node and chain; release lets go of them as the config's Cleanup does.
func provisionOne(t *testing.T, cc *ChainConfig) (node *suber.Node, chain *Chain, release func()) {
	t.Helper()
	a := &App{log: zap.NewNop(), chains: map[string]*Chain{}, applies: map[string]*chainApply{}, nodeLabels: map[string][]string{}}
	if err := a.provisionChain("dev", cc, caddy.NewReplacer()); err != nil {
		t.Fatal(err)
	}
	return a.applies["dev"].nodes[0], a.chains["dev"], func() { _ = a.Cleanup() }
}

// A reload keeps a node's connections only when nothing that defines them
// changed: any node option, or the chain's health interval, changed by a
// reload builds a new node; the same config, or an option written as its
// default, keeps them. The chain is kept either way (chain_apply.go).
func TestReloadKeepsNodeOnlyWithTheSameConfig(t *testing.T) {
	base := func() *ChainConfig {
		return &ChainConfig{Nodes: []*NodeConfig{{URL: "wss://node.example:443",
			Headers: http.Header{"X-Api-Key": {"first"}}, TLS: &NodeTLS{ServerName: "node.example"}}}}
	}
	cases := []struct {
		name    string
		change  func(cc *ChainConfig)
		newNode bool
	}{
		{"same config", func(*ChainConfig) {}, false},
		{"pool written as its default", func(cc *ChainConfig) { cc.Nodes[0].Pool = suber.DefaultPoolSize }, false},
		{"header value", func(cc *ChainConfig) { cc.Nodes[0].Headers.Set("X-Api-Key", "second") }, true},
		{"header added", func(cc *ChainConfig) { cc.Nodes[0].Headers.Set("X-Other", "v") }, true},
		{"tls server name", func(cc *ChainConfig) { cc.Nodes[0].TLS.ServerName = "other.example" }, true},
		{"tls insecure", func(cc *ChainConfig) { cc.Nodes[0].TLS.InsecureSkipVerify = true }, true},
		{"pool", func(cc *ChainConfig) { cc.Nodes[0].Pool = 2 }, true},
		{"dial timeout", func(cc *ChainConfig) { cc.Nodes[0].DialTimeout = caddy.Duration(time.Second) }, true},
		{"ping interval", func(cc *ChainConfig) { cc.Nodes[0].PingInterval = caddy.Duration(time.Second) }, true},
		{"max message size", func(cc *ChainConfig) { cc.Nodes[0].MaxMessageSize = 1 << 20 }, true},
		{"health interval", func(cc *ChainConfig) { cc.HealthInterval = caddy.Duration(time.Second) }, true},
		{"url", func(cc *ChainConfig) { cc.Nodes[0].URL = "wss://node.example:444" }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			oldNode, oldChain, releaseOld := provisionOne(t, base())
			cc := base()
			tc.change(cc)
			// As in a reload: the new config loads before the old one lets go.
			newNode, newChain, releaseNew := provisionOne(t, cc)
			releaseOld()
			defer releaseNew()
			if got := newNode != oldNode; got != tc.newNode {
				t.Fatalf("new node: %v, want %v", got, tc.newNode)
			}
			if newChain != oldChain {
				t.Fatal("the chain was built anew: its clients would be closed")
			}
		})
	}
}

// Every field of NodeConfig and ChainConfig is either part of a node's
// key (the node is built anew) or of the settings a config applies to the
// kept chain: setting any of them to a value other than its default
// changes one of them. A field added later is covered without anyone
// listing it.
func TestStateKeysCoverEveryConfigField(t *testing.T) {
	keyOf := func(nc NodeConfig, cc ChainConfig) string {
		nk, err := poolKey(nodeKey{Chain: "dev", URL: nc.URL, Node: nc.withDefaults(), HealthInterval: cc.healthInterval()})
		if err != nil {
			t.Fatal(err)
		}
		ck, err := poolKey(chainKey{Name: "dev"})
		if err != nil {
			t.Fatal(err)
		}
		sk, err := poolKey(cc.settings())
		if err != nil {
			t.Fatal(err)
		}
		return nk + ck + sk
	}
	base := keyOf(NodeConfig{URL: "ws://a"}, ChainConfig{})
	nt := reflect.TypeFor[NodeConfig]()
	for i := range nt.NumField() {
		f := nt.Field(i)
		nc := NodeConfig{URL: "ws://a"}
		setOdd(t, reflect.ValueOf(&nc).Elem().Field(i))
		if keyOf(nc, ChainConfig{}) == base {
			t.Errorf("node option %s is not in the node's key", f.Name)
		}
	}
	ct := reflect.TypeFor[ChainConfig]()
	for i := range ct.NumField() {
		f := ct.Field(i)
		if f.Name == "Nodes" {
			continue // the node keys, above
		}
		cc := ChainConfig{}
		setOdd(t, reflect.ValueOf(&cc).Elem().Field(i))
		if keyOf(NodeConfig{URL: "ws://a"}, cc) == base {
			t.Errorf("chain option %s is in neither the node keys nor the chain's settings", f.Name)
		}
	}
}

// setOdd sets v to a value no default has.
func setOdd(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString("ws://odd")
	case reflect.Int, reflect.Int64:
		v.SetInt(3)
	case reflect.Uint64:
		v.SetUint(3)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		setOdd(t, v.Elem())
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("X-Odd"), reflect.ValueOf([]string{"odd"}))
		v.Set(m)
	case reflect.Struct:
		setOdd(t, v.Field(0))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		setOdd(t, s.Index(0))
		v.Set(s)
	default:
		t.Fatalf("setOdd: unhandled kind %s", v.Kind())
	}
}
