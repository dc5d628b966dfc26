package packet

import "fmt"

// ConnectPacket is CONNECT, the first packet a client sends (3.1.1 §3.1,
// 5.0 §3.1).
//
//	Fixed header: 0x10, remaining length
//	Protocol Name: UTF-8 string "MQTT" ("MQIsdp" for 3.1)
//	Protocol Level: 1 byte, 3, 4 or 5
//	Connect Flags: 1 byte, bit 7 user name, 6 password, 5 will retain,
//	    4-3 will QoS, 2 will flag, 1 clean start, 0 reserved (must be 0)
//	Keep Alive: 2 bytes, seconds
//	Properties (5.0 only)
//	Payload: Client Identifier; if will flag: will properties (5.0 only),
//	    Will Topic, Will Payload (binary); if flagged: User Name, Password
//	    (binary)
type ConnectPacket struct {
	// Version is the protocol level. When writing, 0 means the version
	// passed to Append.
	Version Version
	// ProtocolName is the name read from the wire. When writing, "" means
	// the name of the version, and any other name must be that name.
	ProtocolName string
	CleanStart   bool // "clean session" in 3.1.1
	KeepAlive    uint16
	ClientID     string
	Username     *string // nil when the user name flag is clear
	Password     []byte  // nil when the password flag is clear
	Will         *Will   // nil when the will flag is clear
	Properties   Properties
}

// Will is the will message of a CONNECT (3.1.1 §3.1.3.2, 5.0 §3.1.3.2).
type Will struct {
	Topic      string
	Payload    []byte // nil when empty
	QoS        byte   // 0, 1 or 2
	Retain     bool
	Properties Properties // will properties, 5.0 only
}

// Type returns Connect.
func (*ConnectPacket) Type() Type { return Connect }

func (*ConnectPacket) flags() byte { return 0 }

// Connect flag bits (3.1.1 §3.1.2.3, 5.0 §3.1.2.3).
const (
	connectReserved   = 0x01
	connectCleanStart = 0x02
	connectWill       = 0x04
	connectWillQoS    = 0x18
	connectWillRetain = 0x20
	connectPassword   = 0x40
	connectUsername   = 0x80
)

func decodeConnect(c *cursor) (*ConnectPacket, error) {
	p := &ConnectPacket{}
	var err error
	if p.ProtocolName, err = c.readString("CONNECT protocol name"); err != nil {
		return nil, err
	}
	level, err := c.readByte("CONNECT protocol level")
	if err != nil {
		return nil, err
	}
	p.Version = Version(level)
	if !p.Version.valid() || p.ProtocolName != p.Version.ProtocolName() {
		return nil, fmt.Errorf("CONNECT protocol %q level %d: %w", p.ProtocolName, level, ErrUnsupportedVersion)
	}
	flags, err := c.readByte("CONNECT flags")
	if err != nil {
		return nil, err
	}
	if err := checkConnectFlags(flags, p.Version); err != nil {
		return nil, err
	}
	p.CleanStart = flags&connectCleanStart != 0
	if p.KeepAlive, err = c.readUint16("CONNECT keep alive"); err != nil {
		return nil, err
	}
	v5 := p.Version == V5
	if v5 {
		if err := p.Properties.decode(c, ctxConnect); err != nil {
			return nil, err
		}
	}
	if p.ClientID, err = c.readString("CONNECT client identifier"); err != nil {
		return nil, err
	}
	if flags&connectWill != 0 {
		w := &Will{QoS: flags & connectWillQoS >> 3, Retain: flags&connectWillRetain != 0}
		if v5 {
			if err := w.Properties.decode(c, ctxWill); err != nil {
				return nil, err
			}
		}
		if w.Topic, err = c.readString("CONNECT will topic"); err != nil {
			return nil, err
		}
		if w.Payload, err = c.readBinary("CONNECT will payload"); err != nil {
			return nil, err
		}
		if len(w.Payload) == 0 {
			w.Payload = nil
		}
		p.Will = w
	}
	if flags&connectUsername != 0 {
		u, err := c.readString("CONNECT user name")
		if err != nil {
			return nil, err
		}
		p.Username = &u
	}
	if flags&connectPassword != 0 {
		if p.Password, err = c.readBinary("CONNECT password"); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// checkConnectFlags applies the rules on the flags byte of 3.1.1 §3.1.2.3
// and 5.0 §3.1.2.3; all of them make the packet malformed.
func checkConnectFlags(f byte, v Version) error {
	switch qos := f & connectWillQoS >> 3; {
	case f&connectReserved != 0: // [MQTT-3.1.2-3]
		return fmt.Errorf("CONNECT flags: %w: reserved bit set", ErrMalformed)
	case qos == 3: // [MQTT-3.1.2-14]
		return fmt.Errorf("CONNECT flags: %w: will QoS 3", ErrMalformed)
	case f&connectWill == 0 && (qos != 0 || f&connectWillRetain != 0): // [MQTT-3.1.2-13], [MQTT-3.1.2-15]
		return fmt.Errorf("CONNECT flags: %w: will QoS or retain without will flag", ErrMalformed)
	case v != V5 && f&connectPassword != 0 && f&connectUsername == 0: // 3.1.1 [MQTT-3.1.2-22]
		return fmt.Errorf("CONNECT flags: %w: password without user name in MQTT %s", ErrMalformed, v)
	}
	return nil
}

func (p *ConnectPacket) size(v Version) (int, error) {
	if p.Version != 0 && p.Version != v {
		return 0, fmt.Errorf("CONNECT of version %s written as %s: %w", p.Version, v, ErrNotInVersion)
	}
	if p.ProtocolName != "" && p.ProtocolName != v.ProtocolName() {
		return 0, fmt.Errorf("CONNECT protocol name %q for %s: %w", p.ProtocolName, v, ErrUnsupportedVersion)
	}
	if err := validString("CONNECT client identifier", p.ClientID); err != nil {
		return 0, err
	}
	n := 2 + len(v.ProtocolName()) + 1 + 1 + 2 + 2 + len(p.ClientID)
	if v == V5 {
		if err := p.Properties.validate(ctxConnect); err != nil {
			return 0, err
		}
		n += p.Properties.blockSize()
	}
	if w := p.Will; w != nil {
		if w.QoS > 2 {
			return 0, fmt.Errorf("CONNECT will: %w: QoS %d", ErrMalformed, w.QoS)
		}
		if err := validString("CONNECT will topic", w.Topic); err != nil {
			return 0, err
		}
		if err := validBinary("CONNECT will payload", w.Payload); err != nil {
			return 0, err
		}
		n += 2 + len(w.Topic) + 2 + len(w.Payload)
		if v == V5 {
			if err := w.Properties.validate(ctxWill); err != nil {
				return 0, err
			}
			n += w.Properties.blockSize()
		}
	}
	if p.Username != nil {
		if err := validString("CONNECT user name", *p.Username); err != nil {
			return 0, err
		}
		n += 2 + len(*p.Username)
	}
	if p.Password != nil {
		if v != V5 && p.Username == nil {
			return 0, fmt.Errorf("CONNECT password without user name in MQTT %s: %w", v, ErrNotInVersion)
		}
		if err := validBinary("CONNECT password", p.Password); err != nil {
			return 0, err
		}
		n += 2 + len(p.Password)
	}
	return n, nil
}

func (p *ConnectPacket) appendBody(b []byte, v Version) []byte {
	b = appendString(b, v.ProtocolName())
	var flags byte
	if p.CleanStart {
		flags |= connectCleanStart
	}
	if w := p.Will; w != nil {
		flags |= connectWill | w.QoS<<3
		if w.Retain {
			flags |= connectWillRetain
		}
	}
	if p.Password != nil {
		flags |= connectPassword
	}
	if p.Username != nil {
		flags |= connectUsername
	}
	b = append(b, byte(v), flags)
	b = appendUint16(b, p.KeepAlive)
	if v == V5 {
		b = p.Properties.appendTo(b)
	}
	b = appendString(b, p.ClientID)
	if w := p.Will; w != nil {
		if v == V5 {
			b = w.Properties.appendTo(b)
		}
		b = appendString(b, w.Topic)
		b = appendBinary(b, w.Payload)
	}
	if p.Username != nil {
		b = appendString(b, *p.Username)
	}
	if p.Password != nil {
		b = appendBinary(b, p.Password)
	}
	return b
}
