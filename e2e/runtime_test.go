package e2e

// A real runtime-version change, offline: the chain spec's runtime code with
// the spec_version in its embedded `runtime_version` custom section bumped.
// Chopsticks (smoldot's executor) reads the runtime version of a block from
// that section, so after `dev_setStorage` of `:code` and one block, the node
// reports, and notifies through state_subscribeRuntimeVersion, the new
// version, exactly as after a runtime upgrade. The code itself is unchanged,
// so blocks still build (the runtime's compiled VERSION constant, used by
// frame_executive, keeps the old number; metadata is byte-identical).

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
)

const codeKey = "0x3a636f6465" // ":code"

// sp_maybe_compressed_blob's prefix of zstd-compressed runtime code.
var wasmZstdPrefix = []byte{0x52, 0xbc, 0x53, 0x76, 0x46, 0xdb, 0x8e, 0x05}

type runtimeCode struct {
	OrigHex     string // the spec's :code, as it is
	PatchedHex  string // the same runtime with spec_version = OrigSpec + 1, compressed the same way
	OrigSpec    uint32
	PatchedSpec uint32
}

// bumpedRuntimeCode reads :code from the raw chain spec and returns it with
// a patched copy.
func bumpedRuntimeCode(specPath string) (*runtimeCode, error) {
	data, err := os.ReadFile(specPath)
	if err != nil {
		return nil, err
	}
	var spec struct {
		Genesis struct {
			Raw struct {
				Top map[string]string `json:"top"`
			} `json:"raw"`
		} `json:"genesis"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, err
	}
	codeHex := spec.Genesis.Raw.Top[codeKey]
	if codeHex == "" {
		return nil, errors.New("chain spec has no :code")
	}
	code, err := hex.DecodeString(strings.TrimPrefix(codeHex, "0x"))
	if err != nil {
		return nil, fmt.Errorf(":code is not hex: %w", err)
	}
	compressed := bytes.HasPrefix(code, wasmZstdPrefix)
	wasm := code
	if compressed {
		dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(256<<20))
		if err != nil {
			return nil, err
		}
		defer dec.Close()
		if wasm, err = dec.DecodeAll(code[len(wasmZstdPrefix):], nil); err != nil {
			return nil, fmt.Errorf("decompressing :code: %w", err)
		}
	}
	off, err := specVersionOffset(wasm)
	if err != nil {
		return nil, err
	}
	orig := binary.LittleEndian.Uint32(wasm[off:])
	patched := bytes.Clone(wasm)
	binary.LittleEndian.PutUint32(patched[off:], orig+1)
	out := patched
	if compressed {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			return nil, err
		}
		out = append(bytes.Clone(wasmZstdPrefix), enc.EncodeAll(patched, nil)...)
		enc.Close()
	}
	return &runtimeCode{
		OrigHex:     "0x" + strings.TrimPrefix(codeHex, "0x"),
		PatchedHex:  "0x" + hex.EncodeToString(out),
		OrigSpec:    orig,
		PatchedSpec: orig + 1,
	}, nil
}

// specVersionOffset finds the custom section "runtime_version" of a wasm
// module and returns the offset of spec_version in it. The section holds a
// SCALE RuntimeVersion: spec_name, impl_name (compact length + bytes),
// authoring_version u32, spec_version u32, ...
func specVersionOffset(wasm []byte) (int, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], []byte("\x00asm")) {
		return 0, errors.New("runtime code is not a wasm module")
	}
	p := 8
	for p < len(wasm) {
		id := wasm[p]
		p++
		size, n := binary.Uvarint(wasm[p:])
		if n <= 0 || p+n+int(size) > len(wasm) {
			return 0, errors.New("bad wasm section header")
		}
		p += n
		end := p + int(size)
		if id == 0 {
			nameLen, m := binary.Uvarint(wasm[p:end])
			if m > 0 && p+m+int(nameLen) <= end && string(wasm[p+m:p+m+int(nameLen)]) == "runtime_version" {
				q := p + m + int(nameLen)
				for range 2 { // spec_name, impl_name
					l, k, err := scaleCompact(wasm[q:end])
					if err != nil {
						return 0, err
					}
					q += k + int(l)
				}
				q += 4 // authoring_version
				if q+4 > end {
					return 0, errors.New("runtime_version section too short")
				}
				return q, nil
			}
		}
		p = end
	}
	return 0, errors.New("runtime code has no runtime_version custom section")
}

func scaleCompact(b []byte) (uint64, int, error) {
	if len(b) == 0 {
		return 0, 0, errors.New("short compact")
	}
	switch b[0] & 3 {
	case 0:
		return uint64(b[0] >> 2), 1, nil
	case 1:
		if len(b) < 2 {
			return 0, 0, errors.New("short compact")
		}
		return uint64(binary.LittleEndian.Uint16(b)) >> 2, 2, nil
	case 2:
		if len(b) < 4 {
			return 0, 0, errors.New("short compact")
		}
		return uint64(binary.LittleEndian.Uint32(b)) >> 2, 4, nil
	}
	return 0, 0, errors.New("big compact in runtime_version")
}
