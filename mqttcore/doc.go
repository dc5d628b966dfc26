// Package mqttcore is the broker core of snwgw: topic validation and a
// subscription trie with '+' and '#', retained messages, sessions (clean
// start, session expiry, takeover, offline queueing), the QoS 0/1/2 engine
// with in-flight windows and redelivery, wills with will delay, shared
// subscriptions, an authorization hook, $SYS statistics and a Store
// interface behind which the state that outlives connections is kept. It
// knows nothing of MQTT-SN; the wire codec for MQTT 3.1.1 and 5.0 lives in
// mqttcore/packet.
//
// # Connections
//
// Every connection, in-process or over the network, is a Session obtained
// from Broker.Connect. The owner of the connection implements Consumer, a
// two-method interface the engine calls without blocking when deliveries
// are available or when the broker ends the connection. The owner then
// pulls deliveries with Session.Next and acknowledges them with Ack (QoS 1)
// or Received and Complete (QoS 2); it publishes with Publish, or with
// PublishQoS2 and Release when a transport must map PUBREC and PUBREL.
// Nothing runs per session: an idle session with one subscription costs
// well under a kilobyte, trie entry included (BenchmarkIdleSessions), so
// 100,000 in-process sessions fit a small board. A slow or sleeping consumer simply stops pulling; its queue fills
// to Options.MaxQueued (QoS 0 dropped first) and every drop is counted.
//
// Keep-alive, topic aliases, receive maximum of the client towards the
// server, maximum packet size and the closing of sockets are the concerns of
// the connection's owner, not of the engine.
//
// # MQTT 3.1.1
//
// The engine speaks MQTT 5 semantics. A 3.1.1 clean session 1 is CleanStart
// with SessionExpiry 0; clean session 0 is a resumed session with
// SessionExpiryNever (capped by Options.MaxSessionExpiry). 3.1.1 has no
// reason codes: a listener sends 0x80 for every failing SUBACK code.
//
// # Time
//
// Session expiry, will delay, message expiry and the $SYS interval use the
// standard library's time package only (time.Now, time.AfterFunc,
// time.NewTicker), so tests drive them with testing/synctest.
//
// # Locking
//
// Broker.mu guards the session table and the lifecycle of sessions;
// session.mu guards one session's queue, window and subscription list; the
// trie, the retained tree and the store each have their own lock. Locks are
// taken in the order Broker.mu, session.mu, then one of trie / retained /
// store, and consumer callbacks run with none held. LOCKING.md has the
// details.
package mqttcore
