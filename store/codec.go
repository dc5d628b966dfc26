package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/snwgw/snwgw/mqttcore"
)

// codecVersion is the first byte of every encoded message; a reader meets
// a newer one only in a file written by a newer snwgw.
const codecVersion = 1

// errCorrupt reports a value that cannot be decoded: the file is damaged.
var errCorrupt = errors.New("store: damaged value")

// Property presence bits of an encoded message.
const (
	propPayloadFormat = 1 << iota
	propContentType
	propResponseTopic
	propCorrelation
	propUser
)

// appendMessage encodes a stored message:
//
//	version(1) flags(1: QoS in bits 0-1, RETAIN in bit 2)
//	expires(varint, Unix nanoseconds, 0: none)
//	topic(uvarint length + bytes) payload(uvarint length + bytes)
//	properties(1: presence bits) then each present property in bit order:
//	payload format(1), strings and bytes as uvarint length + bytes,
//	user properties as uvarint count + key/value pairs.
func appendMessage(b []byte, m *mqttcore.StoredMessage) []byte {
	flags := m.QoS & 3
	if m.Retain {
		flags |= 4
	}
	b = append(b, codecVersion, flags)
	var exp int64
	if !m.Expires.IsZero() {
		exp = m.Expires.UnixNano()
	}
	b = binary.AppendVarint(b, exp)
	b = appendBytes(b, m.Topic)
	b = appendBytes(b, m.Payload)
	p := &m.Properties
	var mask byte
	if p.PayloadFormat != nil {
		mask |= propPayloadFormat
	}
	if p.ContentType != "" {
		mask |= propContentType
	}
	if p.ResponseTopic != "" {
		mask |= propResponseTopic
	}
	if p.CorrelationData != nil {
		mask |= propCorrelation
	}
	if len(p.User) > 0 {
		mask |= propUser
	}
	b = append(b, mask)
	if p.PayloadFormat != nil {
		b = append(b, *p.PayloadFormat)
	}
	if p.ContentType != "" {
		b = appendBytes(b, p.ContentType)
	}
	if p.ResponseTopic != "" {
		b = appendBytes(b, p.ResponseTopic)
	}
	if p.CorrelationData != nil {
		b = appendBytes(b, p.CorrelationData)
	}
	if len(p.User) > 0 {
		b = binary.AppendUvarint(b, uint64(len(p.User)))
		for _, u := range p.User {
			b = appendBytes(b, u.Key)
			b = appendBytes(b, u.Value)
		}
	}
	return b
}

func appendBytes[T string | []byte](b []byte, s T) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads an encoded value through one bounds-checked cursor; the
// first failure sticks, so callers check err once at the end. Nothing it
// allocates is larger than the input.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) byte(what string) byte {
	if len(d.b) < 1 {
		d.fail(what)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns a copy: bbolt's values are valid only in their transaction.
func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what)
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	v := make([]byte, n)
	copy(v, d.b)
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(what string) string {
	n := d.uvarint(what)
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail(what)
		return ""
	}
	v := string(d.b[:n])
	d.b = d.b[n:]
	return v
}

// count reads an item count; every item takes at least min bytes, so a
// count the input cannot hold is refused before anything is allocated.
func (d *decoder) count(what string, min int) int {
	n := d.uvarint(what)
	if d.err != nil || n > uint64(len(d.b)/min) {
		d.fail(what)
		return 0
	}
	return int(n)
}

func (d *decoder) message(m *mqttcore.StoredMessage) {
	if v := d.byte("version"); d.err == nil && v != codecVersion {
		d.err = fmt.Errorf("%w: format version %d (written by a newer snwgw?)", errCorrupt, v)
		return
	}
	flags := d.byte("flags")
	if flags&3 == 3 || flags > 7 {
		d.fail("flags")
	}
	m.QoS, m.Retain = flags&3, flags&4 != 0
	if exp := d.varint("expiry"); exp != 0 {
		m.Expires = time.Unix(0, exp)
	}
	m.Topic = d.string("topic")
	m.Payload = d.bytes("payload")
	mask := d.byte("properties")
	if mask >= propUser<<1 {
		d.fail("properties")
	}
	p := &m.Properties
	if mask&propPayloadFormat != 0 {
		f := d.byte("payload format")
		p.PayloadFormat = &f
	}
	if mask&propContentType != 0 {
		p.ContentType = d.string("content type")
	}
	if mask&propResponseTopic != 0 {
		p.ResponseTopic = d.string("response topic")
	}
	if mask&propCorrelation != 0 {
		p.CorrelationData = d.bytes("correlation data")
	}
	if mask&propUser != 0 {
		n := d.count("user properties", 2)
		p.User = make([]mqttcore.UserProperty, 0, n)
		for range n {
			p.User = append(p.User, mqttcore.UserProperty{Key: d.string("user property"), Value: d.string("user property")})
		}
	}
}

func decodeMessage(b []byte) (mqttcore.StoredMessage, error) {
	d := decoder{b: b}
	var m mqttcore.StoredMessage
	d.message(&m)
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return m, d.err
}

// appendQueued encodes a queued message: its delivery QoS(1), delivery
// RETAIN(1), subscription ids (uvarint count + uvarints), then the message.
// The in-flight state is stored apart, so sending a message does not
// rewrite it.
func appendQueued(b []byte, q *mqttcore.QueuedMessage) []byte {
	r := byte(0)
	if q.Retain {
		r = 1
	}
	b = append(b, q.QoS, r)
	b = binary.AppendUvarint(b, uint64(len(q.SubscriptionIDs)))
	for _, id := range q.SubscriptionIDs {
		b = binary.AppendUvarint(b, uint64(id))
	}
	return appendMessage(b, &q.Message)
}

func decodeQueued(seq uint64, b []byte) (mqttcore.QueuedMessage, error) {
	d := decoder{b: b}
	q := mqttcore.QueuedMessage{Seq: seq}
	q.QoS = d.byte("qos")
	r := d.byte("retain")
	if q.QoS > 2 || r > 1 {
		d.fail("delivery flags")
	}
	q.Retain = r == 1
	if n := d.count("subscription ids", 1); n > 0 {
		q.SubscriptionIDs = make([]uint32, 0, n)
		for range n {
			id := d.uvarint("subscription id")
			if id > mqttcore.MaxSubscriptionID {
				d.fail("subscription id")
			}
			q.SubscriptionIDs = append(q.SubscriptionIDs, uint32(id))
		}
	}
	d.message(&q.Message)
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return q, d.err
}
