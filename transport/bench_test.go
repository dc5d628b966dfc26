package transport

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/ipv4"
)

// benchPackets is a stream of typical MQTT-SN traffic: PUBLISH packets of
// 10 to 60 octets of payload.
func benchPackets() [][]byte {
	var pkts [][]byte
	for i := range 256 {
		n := 7 + 10 + i%51
		p := make([]byte, n)
		p[0], p[1] = byte(n), 0x0C
		for k := 7; k < n; k++ {
			p[k] = byte(i + k) // includes the values XBee mode 2 escapes
		}
		pkts = append(pkts, p)
	}
	return pkts
}

// benchDecode decodes stream in reads of 4096 octets, as the link does.
func benchDecode(b *testing.B, fr Framer, stream []byte, want int) {
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		frames := 0
		for p := stream; len(p) > 0; {
			chunk := p[:min(len(p), serialReadSize)]
			p = p[len(chunk):]
			for {
				n, _, ok := fr.Decode(chunk)
				chunk = chunk[n:]
				if !ok {
					break
				}
				frames++
			}
		}
		if frames != want {
			b.Fatalf("decoded %d frames, want %d", frames, want)
		}
	}
}

func BenchmarkRawDecode(b *testing.B) {
	pkts := benchPackets()
	fr, err := NewRawFramer(0)
	require.NoError(b, err)
	benchDecode(b, fr, bytes.Join(pkts, nil), len(pkts))
}

func BenchmarkXBeeDecode(b *testing.B) {
	for _, escaped := range []bool{false, true} {
		b.Run(map[bool]string{false: "mode1", true: "mode2"}[escaped], func(b *testing.B) {
			pkts := benchPackets()
			var stream []byte
			for i, p := range pkts {
				// Eight nodes, as on a small sensor network.
				stream = appendRxFrame(stream, XBeeAddr{Addr64: 0x0013A20040A1B2C0 + uint64(i%8), Addr16: uint16(i % 8)}, p, escaped)
			}
			fr, err := NewXBeeFramer(XBeeOptions{Escaped: escaped})
			require.NoError(b, err)
			benchDecode(b, fr, stream, len(pkts))
		})
	}
}

func BenchmarkXBeeEncode(b *testing.B) {
	for _, escaped := range []bool{false, true} {
		b.Run(map[bool]string{false: "mode1", true: "mode2"}[escaped], func(b *testing.B) {
			pkts := benchPackets()
			fr, err := NewXBeeFramer(XBeeOptions{Escaped: escaped})
			require.NoError(b, err)
			buf := make([]byte, 0, 1024)
			var dst net.Addr = node // as the gateway holds it, from ReadFrom
			total := 0
			for _, p := range pkts {
				total += len(p)
			}
			b.ReportAllocs()
			b.SetBytes(int64(total))
			for b.Loop() {
				for _, p := range pkts {
					if buf, err = fr.AppendFrame(buf[:0], p, dst); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// benchUDP measures packets per second through a gateway-style read loop
// on UDPConn.ReadFrom: read a datagram, copy it out of the reused buffer,
// hand it to a consumer goroutine over a bounded channel. The sender keeps
// at most window datagrams unconsumed, so none are lost and the figure is
// the read path's.
func benchUDP(b *testing.B, batch int) {
	srv, err := ListenUDP(context.Background(), UDPOptions{Addr: "127.0.0.1:0", ReadBatch: batch})
	require.NoError(b, err)
	defer srv.Close()
	cl, err := net.DialUDP("udp4", nil, srv.LocalAddr().(*net.UDPAddr))
	require.NoError(b, err)
	defer cl.Close()

	const window, sendBatch = 512, 64
	credits := make(chan struct{}, window)
	queue := make(chan []byte, 1024)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // consumer
		defer wg.Done()
		for range queue {
			<-credits
		}
	}()
	go func() { // read loop
		defer wg.Done()
		defer close(queue)
		buf := make([]byte, 1500)
		for {
			n, _, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			queue <- append([]byte(nil), buf[:n]...)
		}
	}()

	pkt := make([]byte, 32)
	pkt[0], pkt[1] = 32, 0x0C
	// The sender batches too, so that it is not what limits the rate.
	out := ipv4.NewPacketConn(cl)
	msgs := make([]ipv4.Message, sendBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{pkt}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		n := min(sendBatch, b.N-sent)
		for range n {
			credits <- struct{}{}
		}
		for k := 0; k < n; {
			m, err := out.WriteBatch(msgs[k:n], 0)
			if err != nil {
				b.Fatal(err)
			}
			k += m
		}
		sent += n
	}
	// Wait until the consumer has taken every packet.
	for range window {
		credits <- struct{}{}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
	_ = srv.Close()
	wg.Wait()
}

func BenchmarkUDPReadLoop(b *testing.B) {
	b.Run("single", func(b *testing.B) { benchUDP(b, 1) })
	b.Run("batch8", func(b *testing.B) { benchUDP(b, 8) })
	b.Run("batch32", func(b *testing.B) { benchUDP(b, 32) })
	b.Run("batch64", func(b *testing.B) { benchUDP(b, 64) })
}

// BenchmarkUDPDrain isolates the receive path: the socket is filled with a
// burst of queued datagrams (untimed), then ReadFrom drains it (timed).
func BenchmarkUDPDrain(b *testing.B) {
	for _, batch := range []int{1, 8, 64} {
		b.Run("batch"+strconv.Itoa(batch), func(b *testing.B) {
			srv, err := ListenUDP(context.Background(), UDPOptions{Addr: "127.0.0.1:0", ReadBatch: batch})
			require.NoError(b, err)
			defer srv.Close()
			cl, err := net.DialUDP("udp4", nil, srv.LocalAddr().(*net.UDPAddr))
			require.NoError(b, err)
			defer cl.Close()
			const burst = 1024
			out := ipv4.NewPacketConn(cl)
			pkt := make([]byte, 32)
			msgs := make([]ipv4.Message, 64)
			for i := range msgs {
				msgs[i].Buffers = [][]byte{pkt}
			}
			buf := make([]byte, 1500)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for sent := 0; sent < burst; {
					n, err := out.WriteBatch(msgs, 0)
					if err != nil {
						b.Fatal(err)
					}
					sent += n
				}
				b.StartTimer()
				for range burst {
					if _, _, err := srv.ReadFrom(buf); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*burst)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}
