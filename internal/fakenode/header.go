package fakenode

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Header is a Substrate block header.
//
// Its JSON form is exactly Substrate's: the number is a 0x-prefixed hex
// string and the block hash is not part of it (Substrate computes it from the
// encoded header), so Hash is carried alongside.
type Header struct {
	ParentHash     string
	Number         uint64
	StateRoot      string
	ExtrinsicsRoot string
	Digest         Digest
	// Hash is the block hash; it is not serialized.
	Hash string
}

// Digest is the header digest; Logs are hex-encoded digest items.
type Digest struct {
	Logs []string
}

type headerWire struct {
	ParentHash     string     `json:"parentHash"`
	Number         string     `json:"number"`
	StateRoot      string     `json:"stateRoot"`
	ExtrinsicsRoot string     `json:"extrinsicsRoot"`
	Digest         digestWire `json:"digest"`
}

type digestWire struct {
	Logs []string `json:"logs"`
}

// MarshalJSON encodes h like Substrate:
// {"parentHash":"0x..","number":"0x1a","stateRoot":"0x..","extrinsicsRoot":"0x..","digest":{"logs":[]}}.
func (h Header) MarshalJSON() ([]byte, error) {
	logs := h.Digest.Logs
	if logs == nil {
		logs = []string{} // Substrate never sends null here
	}
	return json.Marshal(headerWire{
		ParentHash:     h.ParentHash,
		Number:         "0x" + strconv.FormatUint(h.Number, 16),
		StateRoot:      h.StateRoot,
		ExtrinsicsRoot: h.ExtrinsicsRoot,
		Digest:         digestWire{Logs: logs},
	})
}

// UnmarshalJSON decodes a Substrate header. Hash is left empty because it is
// not on the wire.
func (h *Header) UnmarshalJSON(data []byte) error {
	var w headerWire
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	num, err := strconv.ParseUint(strings.TrimPrefix(w.Number, "0x"), 16, 64)
	if err != nil {
		return fmt.Errorf("fakenode: header number %q: %w", w.Number, err)
	}
	*h = Header{
		ParentHash:     w.ParentHash,
		Number:         num,
		StateRoot:      w.StateRoot,
		ExtrinsicsRoot: w.ExtrinsicsRoot,
		Digest:         Digest{Logs: w.Digest.Logs},
	}
	return nil
}

// clone returns a copy that shares no memory with the chain's copy.
func (h Header) clone() Header {
	h.Digest.Logs = append([]string{}, h.Digest.Logs...)
	return h
}
