// Package memconn is an in-memory datagram network for tests: every Conn
// is a net.PacketConn built on channels, so tests that drive timers with
// testing/synctest can run a gateway and its clients without sockets (the
// fake clock only advances while every goroutine is blocked on channels or
// timers, which socket I/O is not).
//
// Delivery follows UDP: a datagram to an address nobody listens on, or to
// a Conn whose queue is full, is dropped and counted. A Conn may also join
// groups, names that stand for a broadcast or multicast address: a
// datagram sent to a group reaches every member. Read deadlines behave as
// a socket's do, including for a ReadFrom already blocked when the
// deadline changes.
package memconn
