// Package client is an MQTT-SN 1.2 client: the one the sensor simulator
// and the command-line tools share, and the test client of the gateway's
// end-to-end tests.
//
// It speaks MQTT-SN on the wire only, so it works against any MQTT-SN 1.2
// gateway. A Client runs over a net.PacketConn, so a UDP socket
// (net.ListenUDP) and a serial link (transport.OpenSerial, or DialSerial)
// are used the same way.
//
// # Using it
//
// Dial binds a Client to a link and a gateway address; Connect opens the
// session (running the Will exchange when Options.Will is set); Register,
// Publish, Subscribe and Unsubscribe do what their names say;
// UpdateWillTopic and UpdateWillMessage change the Will during the
// session; Sleep, Wake and Ping drive the sleeping-client cycle of §6.14;
// Disconnect ends the session and Close releases the link. A QoS -1
// PUBLISH needs no session: Dial and Publish are enough. SearchGateway and
// ListenAdvertise find gateways (§6.1).
//
// Topics are named by a Topic: TopicName for a topic name (registered on
// first use and cached), Predefined for a pre-defined topic id and Short
// for a two-character short topic name.
//
// # Protocol rules the client keeps
//
//   - Only one REGISTER, one QoS 1 or 2 PUBLISH and one SUBSCRIBE or
//     UNSUBSCRIBE are outstanding at a time (§6.5, §6.6, §6.9): concurrent
//     callers wait their turn.
//   - Every message that expects a reply is retransmitted after
//     Options.RetryInterval (T_retry), with DUP set on PUBLISH and
//     SUBSCRIBE, at most Options.RetryCount (N_retry) times; then the call
//     fails with an error wrapping ErrTimeout (§6.13).
//   - A rejection (CONNACK, REGACK, PUBACK, SUBACK, WILLTOPICRESP,
//     WILLMSGRESP) is returned as an error wrapping the mqttsn.ReturnCode,
//     so errors.Is(err, mqttsn.RejectedCongestion) works. After
//     "congestion" the specification asks the client to wait T_WAIT (more
//     than 5 minutes) before trying again; that wait is the caller's.
//   - A PINGREQ is sent when nothing was sent for the keep-alive period;
//     if it goes unanswered the session is lost: State becomes StateLost
//     and Options.OnConnectionLost is called with an error wrapping
//     ErrTimeout.
//   - Incoming PUBLISHes are acknowledged (PUBACK at QoS 1, PUBREC and
//     PUBCOMP at QoS 2) and handed to Options.Handler exactly once; a
//     PUBLISH for an unknown topic id is answered with PUBACK "invalid
//     topic ID" and not delivered. REGISTERs from the gateway are recorded
//     and acknowledged, PINGREQs from the gateway answered.
//   - An unsolicited DISCONNECT from the gateway ends the session: State
//     becomes StateDisconnected, calls in progress fail with an error
//     wrapping ErrDisconnected, and Options.OnConnectionLost is called.
//
// # Goroutines
//
// Each Client runs three goroutines, started through one function that
// counts them before they start, and waited for by Close: the read loop,
// which alone reads the link, parses datagrams, answers the gateway and
// wakes waiting callers; the dispatcher, which alone calls
// Options.Handler and Options.OnConnectionLost, so a slow handler never
// stalls the protocol; and the keep-alive loop. Shared state (session
// state, topic registry, waiters, QoS 2 receive state) is guarded by
// one mutex, which is never held while sending or calling user code.
// Close waits for a handler call in progress, so the handler must not
// call Close (nor Wake, which waits for the handler). The delivery queue
// is bounded; when it is full a QoS 0 message is dropped and a QoS 1 or 2
// message is left unacknowledged, so the gateway retransmits it, and both
// are counted in Stats.
package client
