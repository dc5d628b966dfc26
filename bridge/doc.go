// Package bridge forwards messages between the snwgw broker core and
// upstream MQTT 5 brokers (Mosquitto, EMQX, HiveMQ, cloud IoT hubs) with
// github.com/eclipse/paho.golang's autopaho.
//
// A Bridge is one upstream broker. It holds one in-process session on the
// mqttcore broker (client id "snwgw-bridge-<Name>") and one autopaho
// connection upstream, and it touches the broker only through the
// in-process Session API.
//
// # Directions
//
// Each Rule names a local topic filter and a direction. "out" subscribes the
// local session to the filter and publishes every delivery upstream under the
// rewritten topic; "in" subscribes upstream (again after every reconnect, from
// OnConnectionUp) and publishes into the broker through the local session;
// "both" does the two. A rule's QoS is the maximum: a message keeps the QoS
// it was published with, up to that maximum. Topics are rewritten by prefix:
// a local topic LocalPrefix+rest is RemotePrefix+rest upstream and back, so
// LocalFilter "sensors/#" with RemotePrefix "site-a/" is "site-a/sensors/#"
// upstream. When several rules match a message, the first in the list
// forwards it, once.
//
// # Loops
//
// Loops are impossible by construction, on both sides:
//
//   - Upstream subscriptions set MQTT 5 No Local, so the upstream broker never
//     returns what this bridge published. Every message the bridge publishes
//     upstream also carries the user property snwgw-bridge=<ClientID>, and the
//     in direction discards anything carrying it: retained messages, which
//     brokers send on subscribe whatever No Local says, cannot come back.
//   - Locally, the bridge's session subscribes with No Local, and every message
//     it publishes into the broker carries the user property
//     snwgw-bridge=<Name>; the out direction discards deliveries carrying its
//     own marker (retained ones included) and strips snwgw-bridge markers from
//     what it forwards, so no marker of one side leaks to the other.
//
// # Delivery guarantees and the queue
//
// Out, QoS 1 and 2 messages go through a bounded queue (Queue.Limit, with the
// policy "drop-oldest" or "reject-new"; every drop is counted) and are sent
// upstream one at a time, in order; the next is sent once the upstream broker
// has acknowledged the previous one (PUBACK, or PUBCOMP for QoS 2). While the
// upstream broker is unreachable the queue fills and is drained in order when
// the connection is back. A message interrupted by a lost connection is sent
// again, so upstream delivery is at least once. QoS 0 messages are published
// straight away while connected and dropped (and counted) while not.
//
// A broker delivery is acknowledged only once it is safe: with the memory
// queue, after the upstream broker acknowledged it (a message held in the
// queue is still in flight on the local session, so a bridge closed during
// an outage leaves it to the session); with the disk queue (Queue.Dir), as
// soon as it is written and synced to a file of its own, which survives a
// restart of the gateway and is removed once the upstream broker acknowledged
// it. The disk queue is this package's own rather than autopaho's queue/file:
// that queue is unbounded, has no drop policy, cannot be trimmed while its
// reader runs, and forgets a message as soon as it is written to the socket,
// before the upstream broker acknowledged it.
//
// # Availability
//
// The bridge keeps a retained state message upstream on StateTopic
// (default "snwgw/<ClientID>/state"): "online" once connected and subscribed,
// "offline" when it closes, and "offline" as its will, so the upstream broker
// publishes it when the gateway vanishes without a DISCONNECT.
//
// Close leaves offline as the retained state even when it races the setup
// after a (re)connection. It publishes offline only once the sender, which
// publishes online, has stopped, so an online already sent is ahead of it
// (on the connection, or sent again from paho's session in its original
// order). When the upstream broker does not acknowledge offline, Close ends
// the connection with DISCONNECT reason code 0x04, "Disconnect with Will
// Message" (MQTT 5 §3.14.2.1), instead of a normal DISCONNECT, which would
// discard the will; the broker then publishes the will after all that came
// before. The same DISCONNECT ends the connection when Start's context ends
// without Close.
//
// # MQTT 5 only
//
// autopaho speaks MQTT 5 only, so upstream brokers must support MQTT 5. A
// broker that answers the MQTT 5 CONNECT as an MQTT 3.1.1-only server is
// reported in the log as such, with the error ErrMQTT311.
//
// # Goroutines
//
// Start runs two goroutines of the bridge, each started through goFunc, which
// adds to the WaitGroup before it starts them: the pump, which alone pulls
// deliveries from the local session and queues or publishes them, and the
// sender, which alone sends the queue upstream, (re)subscribes upstream and
// publishes the state after each connection. Close, once those two have
// returned, runs a third through goFunc for as long as it waits for the
// acknowledgement of the offline state: it ends that wait when the link goes
// down. autopaho runs its own, which Close waits for through
// ConnectionManager.Done. The in direction runs on paho's receiving
// goroutine.
package bridge
