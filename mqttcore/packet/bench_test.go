package packet

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func benchPublish() *PublishPacket {
	return &PublishPacket{QoS: 1, Topic: "sensors/garden/temperature", PacketID: 42, Payload: bytes.Repeat([]byte{'x'}, 100)}
}

func benchRead(b *testing.B, raw []byte, v Version) {
	b.Helper()
	src := bytes.NewReader(raw)
	r := bufio.NewReader(src)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		src.Reset(raw)
		r.Reset(src)
		if _, err := Read(r, v, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadPublishQoS1(b *testing.B) {
	for _, v := range []Version{V311, V5} {
		b.Run(v.String(), func(b *testing.B) {
			raw, err := Append(nil, benchPublish(), v)
			require.NoError(b, err)
			benchRead(b, raw, v)
		})
	}
}

func BenchmarkAppendPublishQoS1(b *testing.B) {
	for _, v := range []Version{V311, V5} {
		b.Run(v.String(), func(b *testing.B) {
			p := benchPublish()
			buf := make([]byte, 0, 256)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = Append(buf[:0], p, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadConnect(b *testing.B) {
	for _, name := range []string{"connect v311 will user password", "connect v5 all properties will user password"} {
		for _, tp := range tpackets {
			if tp.name == name {
				b.Run(tp.version.String(), func(b *testing.B) { benchRead(b, tp.raw, 0) })
			}
		}
	}
}
