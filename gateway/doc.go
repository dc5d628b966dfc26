// Package gateway implements the gateway side of MQTT-SN 1.2: it keeps the
// sessions of wireless sensors that reach it over any number of links (each
// a net.PacketConn from the transport package) and translates their traffic
// onto the in-process client API of the mqttcore broker, one broker session
// per MQTT-SN client.
//
// # Goroutines and ownership
//
//   - One read loop per link reads datagrams, finds the sender's session in
//     the address table and hands the datagram to the shard that owns the
//     session. Traffic that needs no session — SEARCHGW, QoS -1 PUBLISH,
//     the DISCONNECT answer to an unknown sender — is handled in the read
//     loop itself.
//   - A fixed set of shard goroutines owns the sessions: a session belongs to
//     the shard its ClientId hashes to, for its whole life, so a client that
//     moves to a new address (NAT rebinding, a node that changed address)
//     stays with its owner. Every field of a session, its topic registry,
//     its in-flight message and its timers are touched only by that shard.
//     Timers are one deadline per session in the shard's heap, so 100,000
//     sessions cost 100,000 heap entries, not 100,000 runtime timers.
//   - The broker tells a session that deliveries are waiting through
//     mqttcore.Consumer.Notify, from any goroutine; Notify only queues the
//     session on its shard's wake list.
//   - The address table (link and sender address → session) is the only
//     state shared between read loops and shards. Shards write it, read
//     loops read it, under a read-write lock.
//   - With a durable broker store, acknowledgements of a client's PUBLISH
//     and PUBREL wait for the store's commit: the store's goroutine hands
//     them to the shard's list beside the wake list, and the shard sends
//     them in commit order.
//
// Every goroutine is started through Gateway.goFunc, which adds to the
// WaitGroup before starting it; Close stops the read loops, then the shards,
// and waits for all of them.
//
// # Restarts
//
// With Options.Store each session's state is written to a SessionStore
// when it changes (never per message) and Gateway.Restore brings every
// session back on its link and address before the links read. Messages
// are not in the gateway's record: they stay in the broker session, which
// the broker's store keeps (spec-interpretation #31, #32).
//
// The choices this package makes where MQTT-SN 1.2 is silent or ambiguous
// are listed, numbered, in docs/spec-interpretation.md.
package gateway
