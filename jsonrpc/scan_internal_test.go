package jsonrpc

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// firstSpecial is what special must find, one byte at a time: the index of
// the first byte of w that is not plain, or 8.
func firstSpecial(w []byte) int {
	for i, c := range w {
		if !plain[c] {
			return i
		}
	}
	return 8
}

func checkSpecial(t *testing.T, w []byte) {
	t.Helper()
	got := 8
	if s := special(binary.LittleEndian.Uint64(w)); s != 0 {
		got = bits.TrailingZeros64(s) >> 3
	}
	if want := firstSpecial(w); got != want {
		t.Fatalf("special(% x): first special byte at %d, want %d", w, got, want)
	}
}

func TestSpecialMatchesPlainTable(t *testing.T) {
	w := make([]byte, 8)
	// Every byte value at every position, among plain bytes and after
	// bytes that borrow (0x00, 0x20) or sit at the edges of the ranges.
	for _, fill := range []byte{'a', ' ', '~', '!', '#', '[', ']'} {
		for c := 0; c < 256; c++ {
			for k := range 8 {
				for i := range w {
					w[i] = fill
				}
				w[k] = byte(c)
				checkSpecial(t, w)
				for j := k + 1; j < 8; j++ {
					for _, after := range []byte{0x00, 0x1f, 0x20, 0x21, '"', '\\', 0x7f, 0x80, 0xff} {
						w[j] = after
						checkSpecial(t, w)
						w[j] = fill
					}
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	interesting := []byte{0x00, 0x01, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7e, 0x7f, 0x80, 0x81, 0xa0, 0xdf, 0xe0, 0xff}
	for range 1_000_000 {
		for i := range w {
			if rng.IntN(2) == 0 {
				w[i] = interesting[rng.IntN(len(interesting))]
			} else {
				w[i] = byte(rng.IntN(256))
			}
		}
		checkSpecial(t, w)
	}
}
