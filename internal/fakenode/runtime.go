package fakenode

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"sync"
)

// MetadataSize is the size in bytes of the fake runtime metadata, about the
// size of a real relay chain's, so that gateways caching or streaming it are
// exercised with realistic payloads.
const MetadataSize = 300 << 10

// metadataCache maps specVersion to the JSON string "0x..." of its metadata.
// It is global because the blob depends only on the specVersion and is big.
var metadataCache sync.Map

// Metadata returns the "0x"-prefixed hex metadata state_getMetadata returns
// for specVersion.
func Metadata(specVersion uint32) string {
	js := metadataJSON(specVersion)
	return string(js[1 : len(js)-1])
}

func metadataJSON(spec uint32) json.RawMessage {
	if v, ok := metadataCache.Load(spec); ok {
		return v.(json.RawMessage)
	}
	raw := metadataBlob(spec)
	out := make([]byte, 0, 2*len(raw)+4)
	out = append(out, `"0x`...)
	out = hex.AppendEncode(out, raw)
	out = append(out, '"')
	v, _ := metadataCache.LoadOrStore(spec, json.RawMessage(out))
	return v.(json.RawMessage)
}

// metadataBlob starts like real metadata (magic "meta", version 14) and is
// followed by the specVersion and deterministic pseudo-random bytes.
func metadataBlob(spec uint32) []byte {
	b := make([]byte, MetadataSize)
	copy(b, "meta")
	b[4] = 14
	binary.LittleEndian.PutUint32(b[5:], spec)
	x := uint64(spec)*0x9E3779B97F4A7C15 + 0x243F6A8885A308D3
	var word [8]byte
	for i := 9; i < len(b); i += 8 {
		// splitmix64: fast, deterministic, good enough to defeat compression tricks
		x += 0x9E3779B97F4A7C15
		z := x
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		z ^= z >> 31
		binary.LittleEndian.PutUint64(word[:], z)
		copy(b[i:], word[:])
	}
	return b
}

// runtimeVersionJSON is the RuntimeVersion object of state_getRuntimeVersion.
func runtimeVersionJSON(spec uint32) json.RawMessage {
	return json.RawMessage(`{"specName":"fake","implName":"fake","authoringVersion":1,"specVersion":` +
		strconv.FormatUint(uint64(spec), 10) +
		`,"implVersion":0,"apis":[],"transactionVersion":1,"stateVersion":1}`)
}
