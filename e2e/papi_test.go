package e2e

import (
	"encoding/json"
	"math/big"
	"slices"
	"testing"
	"time"
)

// papiBlock is a block as polkadot-api reports it.
type papiBlock struct {
	Number uint64 `json:"number"`
	Hash   string `json:"hash"`
}

// papiStreams is what finalizedBlock$ and bestBlocks$ (its best block)
// delivered.
type papiStreams struct {
	Finalized []papiBlock `json:"finalized"`
	Best      []papiBlock `json:"best"`
	Error     string      `json:"error"`
}

// papiProviderResult is what one polkadot-api provider saw, through the
// gateway and directly.
type papiProviderResult struct {
	// Gateway and Direct hold chain spec data, finalized and best block,
	// metadata (length, sha256), a block body and System.Account(//Alice)
	// at best and at the finalized block: they must be equal.
	Gateway json.RawMessage `json:"gateway"`
	Direct  json.RawMessage `json:"direct"`
	Made    []papiBlock     `json:"made"`
	Streams struct {
		Gateway papiStreams `json:"gateway"`
		Direct  papiStreams `json:"direct"`
	} `json:"streams"`
	Transfer struct {
		OK       bool      `json:"ok"`
		Block    papiBlock `json:"block"`
		Events   []string  `json:"events"`
		Statuses []string  `json:"statuses"`
	} `json:"transfer"`
	Bob struct {
		Before  string `json:"before"`
		Gateway string `json:"gateway"`
		Direct  string `json:"direct"`
		Amount  string `json:"amount"`
	} `json:"bob"`
}

type papiResult struct {
	OK        bool                          `json:"ok"`
	Error     string                        `json:"error"`
	Steps     []string                      `json:"steps"`
	Providers map[string]papiProviderResult `json:"providers"`
}

// TestPolkadotAPIThroughGateway runs testdata/papi_compare.mjs: polkadot-api
// (chainHead_v1, chainSpec_v1, transaction_v1) with its default and its raw
// WebSocket provider, through the gateway and directly against the node.
func TestPolkadotAPIThroughGateway(t *testing.T) {
	n := realNode(t)
	g := startGateway(t, n, publicCaddyfile, nil, chainURLPath)

	var r papiResult
	run := runScript(t, 210*time.Second, nil, &r, "papi_compare.mjs", g.wsURL(chainURLPath), n.wsURL())
	if !r.OK || run.err != nil {
		t.Errorf("papi_compare.mjs failed (exit: %v) after steps %v: %s\nstderr tail:\n%s", run.err, r.Steps, r.Error, run.stderr)
	}
	for _, kind := range []string{"default", "raw"} {
		t.Run(kind, func(t *testing.T) {
			p, ok := r.Providers[kind]
			if !ok {
				t.Fatal("no result for this provider")
			}
			checkPAPIFacts(t, p)
			checkPAPIStreams(t, p)
			checkPAPITransfer(t, p)
		})
	}
}

func checkPAPIFacts(t *testing.T, p papiProviderResult) {
	t.Helper()
	if len(p.Gateway) == 0 || !jsonEqual(p.Gateway, p.Direct) {
		t.Errorf("answers differ:\ngateway %s\ndirect  %s", truncate(string(p.Gateway), 3000), truncate(string(p.Direct), 3000))
		return
	}
	var f struct {
		ChainSpec struct {
			Name        string `json:"name"`
			GenesisHash string `json:"genesisHash"`
		} `json:"chainSpec"`
		Metadata struct {
			Length int `json:"length"`
		} `json:"metadata"`
		Body      []string `json:"body"`
		AliceBest struct {
			Data struct {
				Free string `json:"free"`
			} `json:"data"`
		} `json:"aliceBest"`
	}
	if err := json.Unmarshal(p.Gateway, &f); err != nil {
		t.Fatal(err)
	}
	// Equal but empty would prove nothing: the facts must be real ones.
	free, _ := new(big.Int).SetString(f.AliceBest.Data.Free, 10)
	switch {
	case f.ChainSpec.Name == "" || len(f.ChainSpec.GenesisHash) != 66:
		t.Errorf("chain spec data: %+v", f.ChainSpec)
	case f.Metadata.Length < 1000:
		t.Errorf("metadata of %d bytes", f.Metadata.Length)
	case len(f.Body) == 0:
		t.Error("finalized block body is empty (Chopsticks blocks hold the timestamp inherent)")
	case free == nil || free.Sign() <= 0:
		t.Errorf("System.Account(//Alice) free balance %q: read as zero", f.AliceBest.Data.Free)
	}
}

// checkPAPIStreams: both streams went block by block over the blocks made,
// with no gap or repeat, and the gateway's saw what the node's did.
func checkPAPIStreams(t *testing.T, p papiProviderResult) {
	t.Helper()
	if len(p.Made) != 3 {
		t.Fatalf("blocks made: %+v", p.Made)
	}
	for _, s := range []struct {
		name string
		gw   []papiBlock
		dx   []papiBlock
	}{
		{"finalizedBlock$", p.Streams.Gateway.Finalized, p.Streams.Direct.Finalized},
		{"bestBlocks$[0]", p.Streams.Gateway.Best, p.Streams.Direct.Best},
	} {
		for i := 1; i < len(s.gw); i++ {
			if s.gw[i].Number != s.gw[i-1].Number+1 {
				t.Errorf("%s through the gateway has a gap or repeat at %d: %+v", s.name, i, s.gw)
				break
			}
		}
		for _, m := range p.Made {
			if !slices.Contains(s.gw, m) {
				t.Errorf("%s through the gateway missed made block %+v: %+v", s.name, m, s.gw)
			}
			if !slices.Contains(s.dx, m) {
				t.Errorf("%s directly missed made block %+v: %+v", s.name, m, s.dx)
			}
		}
		if s.gw[len(s.gw)-1] != p.Made[len(p.Made)-1] {
			t.Errorf("%s through the gateway ends at %+v, want the last made block %+v", s.name, s.gw[len(s.gw)-1], p.Made[len(p.Made)-1])
		}
	}
	if p.Streams.Gateway.Error != "" || p.Streams.Direct.Error != "" {
		t.Errorf("stream errors: gateway %q, direct %q", p.Streams.Gateway.Error, p.Streams.Direct.Error)
	}
}

func checkPAPITransfer(t *testing.T, p papiProviderResult) {
	t.Helper()
	tr := p.Transfer
	if !tr.OK || !slices.Contains(tr.Events, "Balances.Transfer") || !slices.Contains(tr.Events, "System.ExtrinsicSuccess") {
		t.Errorf("transfer not finalized as a success: %+v", tr)
	}
	before, ok1 := new(big.Int).SetString(p.Bob.Before, 10)
	after, ok2 := new(big.Int).SetString(p.Bob.Gateway, 10)
	amount, ok3 := new(big.Int).SetString(p.Bob.Amount, 10)
	if !ok1 || !ok2 || !ok3 || p.Bob.Gateway != p.Bob.Direct || new(big.Int).Sub(after, before).Cmp(amount) != 0 {
		t.Errorf("Bob's balance: before %s, after %s through the gateway and %s directly, amount %s", p.Bob.Before, p.Bob.Gateway, p.Bob.Direct, p.Bob.Amount)
	}
}
