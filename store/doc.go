// Package store keeps snwgw's state on disk, so that a restart — a clean
// one or a power cut — loses nothing that was acknowledged: the broker
// core's persistent sessions with their subscriptions, queued and in-flight
// messages and unreleased QoS 2 ids, retained messages, and the gateway's
// MQTT-SN sessions (as opaque records the gateway encodes).
//
// The file is a bbolt database (go.etcd.io/bbolt): one file, copy-on-write
// pages, crash-safe commits, and it runs on 32-bit ARM. The engines call
// the store with their locks held, so no call waits for the disk: each
// change is put into a pending batch, and one writer goroutine commits the
// batch in one transaction while the next one fills (a group commit). A
// change that is undone before it is committed — a message queued and
// acknowledged within one batch — never reaches the disk, which keeps the
// writes per message low on SD cards.
//
// With SyncAlways every commit is flushed to the device before the
// acknowledgements that wait on it (DurableStore.AfterCommit) go out. With
// SyncInterval acknowledgements go out at once and a batch is committed
// every interval: a crash loses at most the last interval's changes, as
// with Mosquitto's autosave_interval, in exchange for far fewer writes.
//
// Layout (bucket → key → value):
//
//	meta     "format"            → "snwgw-store 1"
//	clients  <client id>         → bucket:
//	           "r"               → SessionRecord (JSON)
//	           'q' seq(8, BE)    → queued message (binary, see codec.go)
//	           'f' seq(8, BE)    → in-flight state: packet id(2, BE), released(1)
//	           'i' packet id(2)  → "" (inbound QoS 2 id not yet released)
//	retained <topic>             → message (binary)
//	gateway  <client id>         → the gateway's session record (opaque)
package store
