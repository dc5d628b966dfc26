package mqttsn_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttsn"
)

var (
	benchPublish = []byte{0x0b, 0x0c, 0x20, 0x00, 0x05, 0x00, 0x02, '2', '1', '.', '5'}
	benchConnect = []byte{0x0e, 0x04, 0x0c, 0x01, 0x00, 0x3c, 'c', 'l', 'i', 'e', 'n', 't', '-', '1'}
	benchReg     = []byte{0x12, 0x0a, 0x00, 0x00, 0x00, 0x01, 's', 'e', 'n', 's', 'o', 'r', 's', '/', 't', 'e', 'm', 'p'}
)

// benchPublishLarge is a 300-octet PUBLISH, its payload too large to share
// the allocation of the struct.
var benchPublishLarge = func() []byte {
	p := &mqttsn.Publish{TopicID: 5, Data: make([]byte, 291)}
	b, err := p.AppendTo(nil)
	if err != nil {
		panic(err)
	}
	return b
}()

// TestAllocs holds the allocation budget of the hot paths.
func TestAllocs(t *testing.T) {
	var ps mqttsn.Parser
	_, err := ps.Parse(benchPublish)
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = ps.Parse(benchPublish) }), "Parser.Parse PUBLISH")
	assert.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _, _ = mqttsn.Parse(benchPublish) }), "Parse PUBLISH")
	assert.Equal(t, 2.0, testing.AllocsPerRun(100, func() { _, _ = mqttsn.Parse(benchPublishLarge) }), "Parse 300-octet PUBLISH")
	p := &mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 5, MsgID: 2, Data: []byte("21.5")}
	buf := make([]byte, 0, 64)
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = p.AppendTo(buf[:0]) }), "Publish.AppendTo")
}

func BenchmarkParsePublish(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPublish)))
	for b.Loop() {
		if _, err := mqttsn.Parse(benchPublish); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePublish300(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPublishLarge)))
	for b.Loop() {
		if _, err := mqttsn.Parse(benchPublishLarge); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParserParsePublish(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPublish)))
	var ps mqttsn.Parser
	for b.Loop() {
		if _, err := ps.Parse(benchPublish); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendPublish(b *testing.B) {
	b.ReportAllocs()
	p := &mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 5, MsgID: 2, Data: []byte("21.5")}
	buf := make([]byte, 0, 64)
	for b.Loop() {
		var err error
		if buf, err = p.AppendTo(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseConnect(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mqttsn.Parse(benchConnect); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParserParseConnect(b *testing.B) {
	b.ReportAllocs()
	var ps mqttsn.Parser
	for b.Loop() {
		if _, err := ps.Parse(benchConnect); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendConnect(b *testing.B) {
	b.ReportAllocs()
	p := &mqttsn.Connect{Will: true, CleanSession: true, Duration: 60, ClientID: "client-1"}
	buf := make([]byte, 0, 64)
	for b.Loop() {
		var err error
		if buf, err = p.AppendTo(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRegister(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mqttsn.Parse(benchReg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendRegister(b *testing.B) {
	b.ReportAllocs()
	p := &mqttsn.Register{TopicID: 5, MsgID: 1, TopicName: "sensors/temp"}
	buf := make([]byte, 0, 64)
	for b.Loop() {
		var err error
		if buf, err = p.AppendTo(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseMalformed(b *testing.B) {
	b.ReportAllocs()
	bad := []byte{0x05, 0x0c, 0x20, 0x00, 0x05}
	for b.Loop() {
		if _, err := mqttsn.Parse(bad); err == nil {
			b.Fatal("no error")
		}
	}
}
