package mqttsn

import "fmt"

// Disconnect closes a connection, or with a Duration puts a client to
// sleep (MQTT-SN 1.2 §5.4.21).
//
//	Length (1) | MsgType 0x18 (1)                    without Duration
//	Length (1) | MsgType 0x18 (1) | Duration (2)     sleep request
//
// The gateway's acknowledgement never carries a Duration.
type Disconnect struct {
	Duration    uint16 // sleep duration in seconds; only with HasDuration
	HasDuration bool
}

// Type returns TypeDisconnect.
func (*Disconnect) Type() MsgType { return TypeDisconnect }

// AppendTo appends the encoded message to b. A non-zero Duration needs
// HasDuration.
func (p *Disconnect) AppendTo(b []byte) ([]byte, error) {
	if !p.HasDuration {
		if p.Duration != 0 {
			return b, &FieldError{Type: TypeDisconnect, Field: "duration", Err: fmt.Errorf("%w: duration %d without HasDuration", ErrInvalidField, p.Duration)}
		}
		return appendHeader(b, TypeDisconnect, 0)
	}
	b, err := appendHeader(b, TypeDisconnect, 2)
	if err != nil {
		return b, err
	}
	return appendUint16(b, p.Duration), nil
}

func (p *Disconnect) decode(r reader) reader {
	*p = Disconnect{}
	if r.len() > 0 {
		*p = Disconnect{Duration: r.u16("duration"), HasDuration: true}
	}
	return r
}
