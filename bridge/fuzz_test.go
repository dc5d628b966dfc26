package bridge

import (
	"bytes"
	"testing"
)

// FuzzDecodeEntry feeds queue files to the decoder: it must never panic, and
// whatever it accepts must encode back to the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	b, err := appendEntry(nil, testEntry())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(entryMagic + "\x00\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEntry(data)
		if err != nil {
			return
		}
		again, err := appendEntry(nil, e)
		if err != nil {
			t.Fatalf("decoded entry does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("round trip differs:\n in  %x\n out %x", data, again)
		}
	})
}
