package packet

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fuzzMaxSize bounds what one fuzzed Read may allocate for a body.
const fuzzMaxSize = 1 << 16

// fuzzVersions maps the fuzzer's version byte onto the versions Read takes:
// 0 (first packet), 3.1, 3.1.1 and 5.0.
var fuzzVersions = [...]Version{0, V31, V311, V5}

func fuzzVersion(b byte) Version { return fuzzVersions[int(b)%len(fuzzVersions)] }

func versionByte(v Version) byte {
	for i, fv := range fuzzVersions {
		if fv == v {
			return byte(i)
		}
	}
	panic("unknown version")
}

func addSeeds(f *testing.F) {
	for _, tp := range tpackets {
		f.Add(tp.raw, versionByte(tp.readVersion()))
	}
	f.Add([]byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}, versionByte(V5))       // largest remaining length
	f.Add([]byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}, versionByte(V5)) // fifth length byte
	f.Add([]byte{0x32, 10, 0, 3, 'a', '/', 'b', 0, 1, 0xFF, 0xFF, 0x7F}, versionByte(V5))
}

// smallReadChunk makes Read grow bodies from a few bytes on, so that
// fuzzed inputs, which are small, take the growing path as well.
func smallReadChunk(f *testing.F) {
	old := readChunk
	readChunk = 8
	f.Cleanup(func() { readChunk = old })
}

// FuzzRead feeds arbitrary bytes to Read: it must never panic, never
// allocate past maxSize for a body, and fail only with the package's
// sentinels or a truncated stream.
func FuzzRead(f *testing.F) {
	addSeeds(f)
	smallReadChunk(f)
	f.Fuzz(func(t *testing.T, data []byte, version byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		v := fuzzVersion(version)
		for {
			p, err := Read(r, v, fuzzMaxSize)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrMalformed) &&
					!errors.Is(err, ErrProtocolError) && !errors.Is(err, ErrPacketTooLarge) && !errors.Is(err, ErrUnsupportedVersion) {
					t.Fatalf("Read error wraps no sentinel: %v", err)
				}
				return
			}
			if c, ok := p.(*ConnectPacket); ok {
				v = c.Version // the rest of the stream is that connection's
			}
		}
	})
}

// FuzzRoundTrip checks that whatever Read accepts, Append writes (with the
// size Size reports) and Read reads back equal.
func FuzzRoundTrip(f *testing.F) {
	addSeeds(f)
	smallReadChunk(f)
	f.Fuzz(func(t *testing.T, data []byte, version byte) {
		rv := fuzzVersion(version)
		p, err := Read(bufio.NewReader(bytes.NewReader(data)), rv, fuzzMaxSize)
		if err != nil {
			return
		}
		wv := rv
		if c, ok := p.(*ConnectPacket); ok {
			wv = c.Version
		}
		b, err := Append(nil, p, wv)
		require.NoError(t, err, "Read accepted % x but Append refuses %#v", data, p)
		n, err := Size(p, wv)
		require.NoError(t, err)
		require.Len(t, b, n)
		again, err := Read(bufio.NewReader(bytes.NewReader(b)), rv, fuzzMaxSize)
		require.NoError(t, err, "Append wrote % x for % x", b, data)
		assert.Equal(t, p, again)
	})
}
