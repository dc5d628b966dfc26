package client

import "errors"

// Errors returned by the Client. Rejections by the gateway are not listed
// here: they wrap the mqttsn.ReturnCode the gateway sent.
var (
	// ErrTimeout: the gateway did not answer a message after it was
	// retransmitted Options.RetryCount times (§6.13). The client should
	// assume the gateway is gone: Connect again, or look for another.
	ErrTimeout = errors.New("client: no answer from the gateway")
	// ErrDisconnected: the session ended while the call was in progress,
	// because the gateway sent a DISCONNECT (or Disconnect or Connect
	// ended it). Connect again.
	ErrDisconnected = errors.New("client: disconnected by the gateway")
	// ErrNotConnected: the call needs an active session (Connect first),
	// or, for Wake, a sleeping one.
	ErrNotConnected = errors.New("client: not connected")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("client: closed")
	// ErrInvalidTopic: the Topic cannot be used for the call, for example a
	// wildcard in Register or Publish, or a topic name at QoS -1.
	ErrInvalidTopic = errors.New("client: invalid topic")
	// ErrInvalidOptions: Options or an argument holds a value the protocol
	// cannot carry.
	ErrInvalidOptions = errors.New("client: invalid options")
	// ErrProtocol: the gateway answered with a message MQTT-SN 1.2 does
	// not allow there, such as a reserved topic id in REGACK or a PUBACK
	// accepting a QoS 2 PUBLISH. The gateway is faulty.
	ErrProtocol = errors.New("client: protocol violation by the gateway")
	// ErrTopicTableFull: the client already knows Options.MaxTopics topic
	// ids.
	ErrTopicTableFull = errors.New("client: topic table full")
)
