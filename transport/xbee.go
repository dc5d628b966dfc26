package transport

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
)

// XBee API framing (Digi XBee API, "API frame format"):
//
//	Start delimiter 0x7E (1)
//	Length (2, big endian) – counts the frame data only
//	Frame data (Length)    – API identifier (1) + identifier-specific fields
//	Checksum (1)           – 0xFF minus the low byte of the sum of the frame data
//
// API mode 2 (AP=2) escapes every byte after the start delimiter, length and
// checksum included, that is 0x7E, 0x7D, 0x11 or 0x13: it is sent as 0x7D
// followed by the byte XOR 0x20. The checksum is computed on unescaped data.
const (
	xbeeStart   = 0x7E
	xbeeEscape  = 0x7D
	xbeeXON     = 0x11
	xbeeXOFF    = 0x13
	xbeeEscXOR  = 0x20
	xbeeHeader  = 3 // start delimiter + length
	xbeeTrailer = 1 // checksum

	xbeeTransmitRequest = 0x10
	xbeeModemStatus     = 0x8A
	xbeeTransmitStatus  = 0x8B
	xbeeReceivePacket   = 0x90

	// 0x10 Transmit Request: API id (1), frame id (1), 64-bit destination (8),
	// 16-bit destination (2), broadcast radius (1), options (1), RF data.
	xbeeTxHeader = 14
	// 0x90 Receive Packet: API id (1), 64-bit source (8), 16-bit source (2),
	// receive options (1), RF data.
	xbeeRxHeader = 12
	// 0x8B Transmit Status: API id (1), frame id (1), 16-bit destination (2),
	// transmit retry count (1), delivery status (1), discovery status (1).
	xbeeTxStatusLen = 7
	// 0x8A Modem Status: API id (1), status (1).
	xbeeModemStatusLen = 2

	// Room in accepted frame data beyond the RF payload, enough for the
	// longest header of the API frames a module sends on its own.
	xbeeFrameSlack = 32

	// DefaultXBeeMaxPayload is the default largest RF payload. Modules carry
	// less (an XBee Zigbee module about 84 octets unencrypted): set
	// XBeeOptions.MaxPayload to the module's NP value.
	DefaultXBeeMaxPayload = 255
	// maxXBeePayload keeps a frame within the 16-bit length field.
	maxXBeePayload = 0xFFFF - xbeeTxHeader - xbeeFrameSlack

	// addrCacheLimit bounds the cache of boxed source addresses.
	addrCacheLimit = 1024
)

// XBeeAddr is the address of an XBee node: its 64-bit IEEE address and its
// 16-bit network address (0xFFFE when unknown).
type XBeeAddr struct {
	Addr64 uint64
	Addr16 uint16
}

// XBeeBroadcast is the XBee broadcast address, for ADVERTISE and GWINFO.
var XBeeBroadcast = XBeeAddr{Addr64: 0x000000000000FFFF, Addr16: 0xFFFE}

// Network implements net.Addr.
func (XBeeAddr) Network() string { return "xbee" }

// String returns the address as "0013a20040a1b2c3/fffe".
func (a XBeeAddr) String() string {
	return fmt.Sprintf("%016x/%04x", a.Addr64, a.Addr16)
}

// ParseXBeeAddr parses an address in the form String returns; the
// "/16-bit" part may be left out, meaning 0xFFFE (unknown).
func ParseXBeeAddr(s string) (XBeeAddr, error) {
	a64, a16, found := strings.Cut(s, "/")
	if a64 == "" || len(a64) > 16 {
		return XBeeAddr{}, fmt.Errorf("%w: xbee address %q: 64-bit part must be 1 to 16 hex digits", ErrInvalidOptions, s)
	}
	v64, err := strconv.ParseUint(a64, 16, 64)
	if err != nil {
		return XBeeAddr{}, fmt.Errorf("%w: xbee address %q: %w", ErrInvalidOptions, s, err)
	}
	v16 := uint64(0xFFFE)
	if found {
		if a16 == "" || len(a16) > 4 {
			return XBeeAddr{}, fmt.Errorf("%w: xbee address %q: 16-bit part must be 1 to 4 hex digits", ErrInvalidOptions, s)
		}
		if v16, err = strconv.ParseUint(a16, 16, 16); err != nil {
			return XBeeAddr{}, fmt.Errorf("%w: xbee address %q: %w", ErrInvalidOptions, s, err)
		}
	}
	return XBeeAddr{Addr64: v64, Addr16: uint16(v16)}, nil
}

// XBeeOptions configures an XBeeFramer.
type XBeeOptions struct {
	// Escaped selects API mode 2 (AP=2); false is API mode 1 (AP=1).
	Escaped bool
	// MaxPayload is the largest RF payload sent in one transmit request;
	// 0 means DefaultXBeeMaxPayload. Incoming frames up to
	// max(MaxPayload, DefaultXBeeMaxPayload) plus header are accepted.
	MaxPayload int
	// Radius is the broadcast radius of transmit requests (0: network maximum).
	Radius byte
	// TxOptions is the options byte of transmit requests (0: module default).
	TxOptions byte
	// NoTxStatus sends frame id 0, so the module sends no transmit status.
	NoTxStatus bool
	// Logger receives modem status and delivery failure reports; nil
	// discards them.
	Logger *slog.Logger
}

// XBeeFramer encodes 0x10 Transmit Requests and decodes 0x90 Receive
// Packets of Digi XBee modules in API mode 1 or 2. Transmit Status (0x8B)
// and Modem Status (0x8A) frames are consumed and counted; other API
// frames are counted and ignored. A bad checksum is counted and decoding
// resumes at the next start delimiter.
type XBeeFramer struct {
	escaped    bool
	maxPayload int
	maxData    int // largest accepted frame data (Length field)
	radius     byte
	txOptions  byte
	noTxStatus bool
	log        *slog.Logger

	// decoding side
	sb    streamBuf
	fbuf  []byte                // unescaped frame data in API mode 2
	addrs map[XBeeAddr]net.Addr // boxed source addresses, so decoding does not allocate per frame

	// encoding side
	frameID byte

	c framerCounters
}

// NewXBeeFramer returns an XBee framer configured by opts.
func NewXBeeFramer(opts XBeeOptions) (*XBeeFramer, error) {
	if opts.MaxPayload == 0 {
		opts.MaxPayload = DefaultXBeeMaxPayload
	}
	if opts.MaxPayload < 1 || opts.MaxPayload > maxXBeePayload {
		return nil, fmt.Errorf("%w: xbee max payload %d outside 1..%d", ErrInvalidOptions, opts.MaxPayload, maxXBeePayload)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	maxData := max(opts.MaxPayload, DefaultXBeeMaxPayload) + xbeeTxHeader + xbeeFrameSlack
	// Worst case on the wire: every byte after the delimiter escaped.
	maxWire := 1 + 2*(2+maxData+xbeeTrailer)
	return &XBeeFramer{
		escaped:    opts.Escaped,
		maxPayload: opts.MaxPayload,
		maxData:    maxData,
		radius:     opts.Radius,
		txOptions:  opts.TxOptions,
		noTxStatus: opts.NoTxStatus,
		log:        log,
		sb:         newStreamBuf(max(2*maxWire, 4096)),
		fbuf:       make([]byte, maxData),
		addrs:      make(map[XBeeAddr]net.Addr),
	}, nil
}

// Decode implements Framer.
func (x *XBeeFramer) Decode(p []byte) (int, Frame, bool) {
	return decodeLoop(&x.sb, p, x.extract)
}

// Pending implements Framer.
func (x *XBeeFramer) Pending() bool { return x.sb.r < x.sb.w }

// Expire implements Framer.
func (x *XBeeFramer) Expire() {
	if x.sb.r < x.sb.w {
		x.c.timeouts.Add(1)
		x.sb.skip(1, &x.c)
	}
}

// Reset implements Framer.
func (x *XBeeFramer) Reset() { x.sb.reset() }

// MaxPayload implements Framer.
func (x *XBeeFramer) MaxPayload() int { return x.maxPayload }

// Stats implements Framer.
func (x *XBeeFramer) Stats() FramerStats { return x.c.snapshot() }

// Results of scanning one API frame.
const (
	scanShort = iota // more input needed
	scanOK
	scanBadLength
	scanBadChecksum
	scanTruncated // API mode 2: a start delimiter inside the frame
)

func (x *XBeeFramer) extract() (Frame, bool) {
	for {
		b := x.sb.pending()
		if len(b) == 0 {
			return Frame{}, false
		}
		if b[0] != xbeeStart {
			i := bytes.IndexByte(b, xbeeStart)
			if i < 0 {
				i = len(b)
			}
			x.sb.skip(i, &x.c)
			continue
		}
		res, size, data := x.scan(b)
		switch res {
		case scanShort:
			return Frame{}, false
		case scanBadChecksum:
			x.c.badChecksums.Add(1)
			x.sb.skip(1, &x.c)
		case scanBadLength:
			x.sb.skip(1, &x.c)
		case scanTruncated:
			x.sb.skip(size, &x.c)
		case scanOK:
			x.sb.take(size)
			if f, ok := x.handle(data); ok {
				x.c.framesIn.Add(1)
				return f, true
			}
		}
	}
}

// scan examines the API frame starting with the delimiter at b[0]. For
// scanOK it returns the frame's size on the wire and its unescaped frame
// data; for scanTruncated the offset of the delimiter that cut it short.
func (x *XBeeFramer) scan(b []byte) (res, size int, data []byte) {
	i := 1
	var hdr [2]byte
	for k := range hdr {
		c, r := x.next(b, &i)
		if r != scanOK {
			return r, i, nil
		}
		hdr[k] = c
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 || n > x.maxData {
		return scanBadLength, 0, nil
	}
	if !x.escaped {
		// Unescaped frame data can be handed out in place.
		if len(b) < xbeeHeader+n+xbeeTrailer {
			return scanShort, 0, nil
		}
		data = b[xbeeHeader : xbeeHeader+n]
		if checksum(data) != b[xbeeHeader+n] {
			return scanBadChecksum, 0, nil
		}
		return scanOK, xbeeHeader + n + xbeeTrailer, data
	}
	data = x.fbuf[:n]
	for k := range data {
		c, r := x.next(b, &i)
		if r != scanOK {
			return r, i, nil
		}
		data[k] = c
	}
	sum, r := x.next(b, &i)
	if r != scanOK {
		return r, i, nil
	}
	if checksum(data) != sum {
		return scanBadChecksum, 0, nil
	}
	return scanOK, i, data
}

// next reads the byte at b[*i], unescaping in API mode 2.
func (x *XBeeFramer) next(b []byte, i *int) (byte, int) {
	if *i >= len(b) {
		return 0, scanShort
	}
	c := b[*i]
	if !x.escaped {
		*i++
		return c, scanOK
	}
	switch c {
	case xbeeStart:
		return 0, scanTruncated
	case xbeeEscape:
		if *i+1 >= len(b) {
			return 0, scanShort
		}
		e := b[*i+1]
		if e == xbeeStart {
			*i++
			return 0, scanTruncated
		}
		*i += 2
		return e ^ xbeeEscXOR, scanOK
	}
	*i++
	return c, scanOK
}

func checksum(data []byte) byte {
	var sum byte
	for _, c := range data {
		sum += c
	}
	return 0xFF - sum
}

// handle acts on one checked API frame and reports whether it carried a
// packet for the gateway.
func (x *XBeeFramer) handle(d []byte) (Frame, bool) {
	switch d[0] {
	case xbeeReceivePacket:
		if len(d) < xbeeRxHeader {
			x.c.malformed.Add(1)
			return Frame{}, false
		}
		a := XBeeAddr{Addr64: binary.BigEndian.Uint64(d[1:9]), Addr16: binary.BigEndian.Uint16(d[9:11])}
		return Frame{Payload: d[xbeeRxHeader:len(d):len(d)], Source: x.boxed(a)}, true
	case xbeeTransmitStatus:
		if len(d) < xbeeTxStatusLen {
			x.c.malformed.Add(1)
			return Frame{}, false
		}
		if status := d[5]; status != 0 {
			x.c.txStatusFail.Add(1)
			x.log.Debug("xbee delivery failed", "frame_id", d[1], "addr16", fmt.Sprintf("%04x", binary.BigEndian.Uint16(d[2:4])),
				"retries", d[4], "status", fmt.Sprintf("0x%02x", status))
		} else {
			x.c.txStatusOK.Add(1)
		}
	case xbeeModemStatus:
		if len(d) < xbeeModemStatusLen {
			x.c.malformed.Add(1)
			return Frame{}, false
		}
		x.c.modemStatus.Add(1)
		x.log.Info("xbee modem status", "status", fmt.Sprintf("0x%02x", d[1]), "meaning", modemStatusText(d[1]))
	default:
		x.c.ignored.Add(1)
	}
	return Frame{}, false
}

func modemStatusText(s byte) string {
	switch s {
	case 0x00:
		return "hardware reset"
	case 0x01:
		return "watchdog timer reset"
	case 0x02:
		return "joined network"
	case 0x03:
		return "disassociated"
	case 0x06:
		return "coordinator started"
	case 0x07:
		return "network security key updated"
	case 0x0D:
		return "voltage supply limit exceeded"
	case 0x11:
		return "modem configuration changed while join in progress"
	}
	if s >= 0x80 {
		return "stack error"
	}
	return "unknown"
}

// boxed returns a as a net.Addr, reusing earlier conversions so that a
// steady stream from known nodes does not allocate.
func (x *XBeeFramer) boxed(a XBeeAddr) net.Addr {
	if v, ok := x.addrs[a]; ok {
		return v
	}
	if len(x.addrs) >= addrCacheLimit {
		clear(x.addrs)
	}
	v := net.Addr(a)
	x.addrs[a] = v
	return v
}

// AppendFrame implements Framer: it appends a 0x10 Transmit Request
// carrying payload to dst, which must be an XBeeAddr (XBeeBroadcast to
// broadcast).
func (x *XBeeFramer) AppendFrame(b, payload []byte, dst net.Addr) ([]byte, error) {
	var a XBeeAddr
	switch v := dst.(type) {
	case XBeeAddr:
		a = v
	case *XBeeAddr:
		if v == nil {
			return b, fmt.Errorf("%w: nil *XBeeAddr", ErrAddrType)
		}
		a = *v
	default:
		return b, fmt.Errorf("%w: xbee link cannot send to %T", ErrAddrType, dst)
	}
	if len(payload) > x.maxPayload {
		return b, fmt.Errorf("%w: %d octets, xbee maximum %d", ErrPayloadTooLarge, len(payload), x.maxPayload)
	}
	var id byte
	if !x.noTxStatus {
		x.frameID++
		if x.frameID == 0 { // 0 asks the module for no status
			x.frameID = 1
		}
		id = x.frameID
	}
	n := xbeeTxHeader + len(payload)
	w := xbeeWriter{b: append(b, xbeeStart), escaped: x.escaped}
	w.put(byte(n >> 8))
	w.put(byte(n))
	w.sum = 0
	w.put(xbeeTransmitRequest)
	w.put(id)
	for s := 56; s >= 0; s -= 8 {
		w.put(byte(a.Addr64 >> s))
	}
	w.put(byte(a.Addr16 >> 8))
	w.put(byte(a.Addr16))
	w.put(x.radius)
	w.put(x.txOptions)
	for _, c := range payload {
		w.put(c)
	}
	w.put(0xFF - w.sum)
	x.c.framesOut.Add(1)
	return w.b, nil
}

// xbeeWriter appends bytes after the start delimiter, escaping in API mode 2
// and summing what it writes.
type xbeeWriter struct {
	b       []byte
	sum     byte
	escaped bool
}

func (w *xbeeWriter) put(c byte) {
	w.sum += c
	if w.escaped && (c == xbeeStart || c == xbeeEscape || c == xbeeXON || c == xbeeXOFF) {
		w.b = append(w.b, xbeeEscape, c^xbeeEscXOR)
		return
	}
	w.b = append(w.b, c)
}
