package mqttcore

import (
	"errors"
	"fmt"
)

// ReasonCode is an MQTT 5 reason code (MQTT 5 §2.4). The engine reports
// outcomes with it so a listener can put it on the wire unchanged (the
// numbering is the same as the packet codec's); for MQTT 3.1.1 a listener
// maps every code of 0x80 or above to the 3.1.1 failure value.
type ReasonCode byte

// Reason codes used by the engine (MQTT 5 §2.4, table 2-6).
const (
	ReasonSuccess                ReasonCode = 0x00 // also Normal disconnection, Granted QoS 0
	ReasonGrantedQoS1            ReasonCode = 0x01
	ReasonGrantedQoS2            ReasonCode = 0x02
	ReasonDisconnectWithWill     ReasonCode = 0x04
	ReasonNoMatchingSubscribers  ReasonCode = 0x10
	ReasonNoSubscriptionExisted  ReasonCode = 0x11
	ReasonUnspecifiedError       ReasonCode = 0x80
	ReasonProtocolError          ReasonCode = 0x82
	ReasonClientIDNotValid       ReasonCode = 0x85
	ReasonNotAuthorized          ReasonCode = 0x87
	ReasonServerShuttingDown     ReasonCode = 0x8B
	ReasonSessionTakenOver       ReasonCode = 0x8E
	ReasonTopicFilterInvalid     ReasonCode = 0x8F
	ReasonTopicNameInvalid       ReasonCode = 0x90
	ReasonPacketIDNotFound       ReasonCode = 0x92
	ReasonReceiveMaximumExceeded ReasonCode = 0x93
	ReasonQuotaExceeded          ReasonCode = 0x97
)

var reasonNames = map[ReasonCode]string{
	ReasonSuccess:                "success",
	ReasonGrantedQoS1:            "granted QoS 1",
	ReasonGrantedQoS2:            "granted QoS 2",
	ReasonDisconnectWithWill:     "disconnect with will message",
	ReasonNoMatchingSubscribers:  "no matching subscribers",
	ReasonNoSubscriptionExisted:  "no subscription existed",
	ReasonUnspecifiedError:       "unspecified error",
	ReasonProtocolError:          "protocol error",
	ReasonClientIDNotValid:       "client identifier not valid",
	ReasonNotAuthorized:          "not authorized",
	ReasonServerShuttingDown:     "server shutting down",
	ReasonSessionTakenOver:       "session taken over",
	ReasonTopicFilterInvalid:     "topic filter invalid",
	ReasonTopicNameInvalid:       "topic name invalid",
	ReasonPacketIDNotFound:       "packet identifier not found",
	ReasonReceiveMaximumExceeded: "receive maximum exceeded",
	ReasonQuotaExceeded:          "quota exceeded",
}

// String returns the specification's name of the code.
func (c ReasonCode) String() string {
	if s, ok := reasonNames[c]; ok {
		return s
	}
	return fmt.Sprintf("reason code 0x%02x", byte(c))
}

// Error makes a failing reason code usable as an error.
func (c ReasonCode) Error() string { return "mqttcore: " + c.String() }

// Sentinel errors. Those that have a reason code match it with errors.Is
// as well as themselves, so a caller may test an error against either
// vocabulary: errors.Is(err, ReasonNotAuthorized) holds for an error
// wrapping ErrNotAuthorized, and ReasonFor maps it onto the wire.
var (
	// ErrClosed is returned once the broker has been closed; reconnecting is
	// pointless.
	ErrClosed error = &reasonError{"mqttcore: broker closed", ReasonServerShuttingDown}
	// ErrNotStarted is returned by Connect before Start; call Start first.
	ErrNotStarted = errors.New("mqttcore: broker not started")
	// ErrSessionClosed is returned by a Session whose connection has ended
	// (disconnected, taken over or expired); connect again.
	ErrSessionClosed = errors.New("mqttcore: session connection closed")
	// ErrInvalidTopic reports a topic name that breaks MQTT 5 §4.7; the
	// PUBLISH is refused (v5 reason 0x90).
	ErrInvalidTopic error = &reasonError{"mqttcore: invalid topic name", ReasonTopicNameInvalid}
	// ErrInvalidFilter reports a topic filter that breaks MQTT 5 §4.7 or the
	// shared subscription rules of §4.8.2.
	ErrInvalidFilter error = &reasonError{"mqttcore: invalid topic filter", ReasonTopicFilterInvalid}
	// ErrInvalidClientID reports a client identifier the broker cannot use
	// (v5 CONNACK 0x85).
	ErrInvalidClientID error = &reasonError{"mqttcore: invalid client identifier", ReasonClientIDNotValid}
	// ErrNotAuthorized is returned when the Authorizer refuses a connect or a
	// publish (v5 reason 0x87). A refused publish is dropped and counted.
	ErrNotAuthorized error = &reasonError{"mqttcore: not authorized", ReasonNotAuthorized}
	// ErrProtocol reports a request the protocol forbids (v5 reason 0x82); a
	// listener disconnects the client.
	ErrProtocol error = &reasonError{"mqttcore: protocol error", ReasonProtocolError}
	// ErrPacketIDNotFound reports an acknowledgement for a packet identifier
	// that is not in flight (v5 reason 0x92).
	ErrPacketIDNotFound error = &reasonError{"mqttcore: packet identifier not found", ReasonPacketIDNotFound}
	// ErrReceiveMaximumExceeded reports more unreleased inbound QoS 2
	// messages than Options.MaxInboundInflight (v5 DISCONNECT 0x93).
	ErrReceiveMaximumExceeded error = &reasonError{"mqttcore: receive maximum exceeded", ReasonReceiveMaximumExceeded}
	// ErrInvalidOptions reports Options or ConnectOptions that cannot work.
	ErrInvalidOptions = errors.New("mqttcore: invalid options")
)

// reasonError is a sentinel with a reason code. It stays a distinct value,
// so errors.Is(err, ErrNotAuthorized) still tells it from any other error
// with the same code, while errors.Is(err, ReasonNotAuthorized) matches it
// too: callers that think in reason codes and callers that think in
// sentinels cannot drift apart.
type reasonError struct {
	msg  string
	code ReasonCode
}

func (e *reasonError) Error() string { return e.msg }

// Is matches the error's own reason code.
func (e *reasonError) Is(target error) bool {
	rc, ok := target.(ReasonCode)
	return ok && rc == e.code
}

// ReasonFor maps an error returned by the engine to the MQTT 5 reason code a
// listener should send. Unknown errors map to 0x80 (unspecified error) and
// nil to success.
func ReasonFor(err error) ReasonCode {
	var (
		rc ReasonCode
		re *reasonError
	)
	switch {
	case err == nil:
		return ReasonSuccess
	case errors.As(err, &rc):
		return rc
	case errors.As(err, &re):
		return re.code
	}
	return ReasonUnspecifiedError
}
