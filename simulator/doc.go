// Package simulator runs fleets of virtual MQTT-SN sensors and actuators
// against a gateway, for tests, demonstrations and load.
//
// It is a black box: devices speak MQTT-SN 1.2 on the wire through the
// simulator/client package and see nothing of the gateway they talk to, so a
// fleet runs as well against any other MQTT-SN gateway.
//
// # Pieces
//
//   - Fleet describes the devices: groups of one Profile each (a periodic
//     environment sensor, an event sensor, a sleepy battery sensor, a colour
//     bulb in the style of zigbee2mqtt), their names and topics, QoS,
//     intervals, link and Impairment. LoadFleet reads one from a TOML file.
//   - Sim runs a Fleet, exposes live Progress and returns a Report: per
//     profile sent, acknowledged, delivered, lost and duplicated messages and
//     latency percentiles. When a checker subscribes on the far side (an
//     MQTT-SN subscriber through the same gateway, or an MQTT subscriber on
//     the broker), the Report says whether QoS 1 lost a message or QoS 2 lost
//     or duplicated one.
//   - ImpairedConn wraps any net.PacketConn with loss, duplication,
//     reordering and delay with jitter in both directions, from a seeded
//     random source so a run can be repeated.
//   - Histogram records latencies in bounded, logarithmic buckets.
//
// # Payloads
//
// Every message a device publishes is a JSON object carrying, beside its
// readings, "seq" (the device's message counter, from 1) and "ts" (the send
// time in Unix nanoseconds). The checker uses them to find lost and
// duplicated messages and to measure latency; other consumers can ignore
// them.
//
// # Goroutines
//
// Every goroutine is started through one function that adds to a WaitGroup
// before it starts; Sim.Run and ImpairedConn.Close wait for them. Queues are
// bounded and what overflows them is counted.
package simulator
