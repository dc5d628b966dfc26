package mqttsn

import "fmt"

// maxLength is the largest value of the 3-octet Length field (§5.2.1).
const maxLength = 0xFFFF

// appendHeader appends the Length and MsgType fields of a message of type t
// whose body is n octets, in the shortest form: 1 octet when the whole
// message is at most 255 octets, else 0x01 and 2 octets (§5.2.1).
func appendHeader(b []byte, t MsgType, n int) ([]byte, error) {
	if total := n + 2; total <= 0xFF {
		return append(b, byte(total), byte(t)), nil
	}
	total := n + 4
	if total > maxLength {
		return b, &FieldError{Type: t, Err: fmt.Errorf("%w: %d octets", ErrTooLarge, total)}
	}
	return append(b, 0x01, byte(total>>8), byte(total), byte(t)), nil
}

func appendUint16(b []byte, v uint16) []byte {
	return append(b, byte(v>>8), byte(v))
}
