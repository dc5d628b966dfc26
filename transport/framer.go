package transport

import (
	"net"
	"sync/atomic"
)

// Frame is one packet taken from a serial byte stream.
type Frame struct {
	// Payload is the MQTT-SN packet. It aliases the framer's buffer and is
	// valid only until the next call to Decode, Expire or Reset; copy it
	// before keeping it or handing it to another goroutine.
	Payload []byte
	// Source is the sender, or nil when the framing carries no addresses
	// (the link then reports its own SerialAddr).
	Source net.Addr
}

// Framer delimits packets on a serial byte stream. The decoding side
// (Decode, Expire, Pending, Reset) is used by one goroutine at a time, the
// encoding side (AppendFrame) by one goroutine at a time, and Stats by any.
//
// Decoding is resumable: partial frames are kept between calls, so input
// may be split at any byte boundary, and several frames may arrive in one
// call. In the steady state decoding allocates nothing.
type Framer interface {
	// Decode consumes input from p and returns how many bytes it took and,
	// if a frame was completed, that frame. When ok is false all of p has
	// been consumed. Callers loop until then:
	//
	//	for {
	//		n, f, ok := fr.Decode(p)
	//		p = p[n:]
	//		if !ok {
	//			break
	//		}
	//		use(f)
	//	}
	Decode(p []byte) (n int, f Frame, ok bool)

	// Pending reports whether an incomplete frame is buffered.
	Pending() bool

	// Expire gives up on the buffered incomplete frame, because no byte
	// arrived to finish it in time: it skips the candidate's first byte and
	// rescans the rest. Call Decode(nil) afterwards to collect any frames
	// the rescan finds.
	Expire()

	// Reset discards all buffered input, for example after the port was
	// reopened.
	Reset()

	// AppendFrame appends the wire form of payload, sent to dst, to b.
	AppendFrame(b, payload []byte, dst net.Addr) ([]byte, error)

	// MaxPayload is the largest payload AppendFrame accepts.
	MaxPayload() int

	// Stats returns a snapshot of the framer's counters.
	Stats() FramerStats
}

// FramerStats counts what a framer saw. All counters only grow.
type FramerStats struct {
	FramesIn     uint64 // packets decoded and handed out
	FramesOut    uint64 // packets encoded
	GarbageBytes uint64 // input bytes discarded while looking for a frame
	Resyncs      uint64 // times the decoder lost and searched for frame alignment
	Timeouts     uint64 // incomplete frames abandoned by Expire
	BadChecksums uint64 // XBee frames whose checksum did not match
	Malformed    uint64 // XBee frames too short for their API type
	Ignored      uint64 // XBee frames of API types the link does not use
	TxStatusOK   uint64 // XBee transmit status frames reporting delivery
	TxStatusFail uint64 // XBee transmit status frames reporting a delivery failure
	ModemStatus  uint64 // XBee modem status frames
}

// framerCounters is written by the decoding and encoding goroutines and read
// by Stats from any goroutine.
type framerCounters struct {
	framesIn, framesOut, garbage, resyncs, timeouts atomic.Uint64
	badChecksums, malformed, ignored                atomic.Uint64
	txStatusOK, txStatusFail, modemStatus           atomic.Uint64
}

func (c *framerCounters) snapshot() FramerStats {
	return FramerStats{
		FramesIn:     c.framesIn.Load(),
		FramesOut:    c.framesOut.Load(),
		GarbageBytes: c.garbage.Load(),
		Resyncs:      c.resyncs.Load(),
		Timeouts:     c.timeouts.Load(),
		BadChecksums: c.badChecksums.Load(),
		Malformed:    c.malformed.Load(),
		Ignored:      c.ignored.Load(),
		TxStatusOK:   c.txStatusOK.Load(),
		TxStatusFail: c.txStatusFail.Load(),
		ModemStatus:  c.modemStatus.Load(),
	}
}

// streamBuf holds undecoded input: buf[r:w] is pending. Input is copied in
// once; frames are handed out as slices of buf, so the buffer only moves
// (compacts) when no complete frame is left, that is when no handed-out
// slice can still be in use under the Frame contract.
type streamBuf struct {
	buf  []byte
	r, w int
	// inSync is true while the decoder is aligned on frame boundaries; the
	// first discarded byte after that counts as one resynchronisation.
	inSync bool
}

func newStreamBuf(size int) streamBuf {
	return streamBuf{buf: make([]byte, size), inSync: true}
}

// ingest copies as much of p as fits and returns how much it took.
func (s *streamBuf) ingest(p []byte) int {
	if s.r == s.w {
		s.r, s.w = 0, 0
	} else if s.w == len(s.buf) && s.r > 0 {
		s.w = copy(s.buf, s.buf[s.r:s.w])
		s.r = 0
	}
	n := copy(s.buf[s.w:], p)
	s.w += n
	return n
}

func (s *streamBuf) pending() []byte { return s.buf[s.r:s.w] }

// skip discards n bytes that are not part of any frame.
func (s *streamBuf) skip(n int, c *framerCounters) {
	if n <= 0 {
		return
	}
	s.r += n
	c.garbage.Add(uint64(n))
	if s.inSync {
		s.inSync = false
		c.resyncs.Add(1)
	}
}

// take hands out the n bytes at the read position as a frame.
func (s *streamBuf) take(n int) []byte {
	f := s.buf[s.r : s.r+n : s.r+n]
	s.r += n
	s.inSync = true
	return f
}

func (s *streamBuf) reset() {
	s.r, s.w = 0, 0
	s.inSync = true
}

// decodeLoop implements Framer.Decode for a framer whose extract method
// finds the next frame in its streamBuf.
func decodeLoop(s *streamBuf, p []byte, extract func() (Frame, bool)) (int, Frame, bool) {
	n := 0
	for {
		if f, ok := extract(); ok {
			return n, f, true
		}
		if n == len(p) {
			return n, Frame{}, false
		}
		m := s.ingest(p[n:])
		if m == 0 {
			// Unreachable while the buffer holds at least one maximum
			// frame, which every framer guarantees; dropping a byte keeps
			// a broken invariant from turning into an endless loop.
			s.r++
			continue
		}
		n += m
	}
}
