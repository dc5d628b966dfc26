package mqttcore

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"
)

// counters are the broker's statistics, updated without locks.
type counters struct {
	connected     atomic.Int64
	received      atomic.Int64 // application messages accepted from clients
	sent          atomic.Int64 // PUBLISH deliveries handed to connections
	bytesReceived atomic.Int64 // fed by listeners
	bytesSent     atomic.Int64 // fed by listeners
	dropped       atomic.Int64 // queue overflow and QoS 0 for absent clients
	expired       atomic.Int64 // messages whose expiry passed before delivery
	refused       atomic.Int64 // connects, publishes, subscriptions the Authorizer refused
	storeErrors   atomic.Int64
}

// Stats is a snapshot of the broker's statistics.
type Stats struct {
	ClientsConnected int64 // connections attached to sessions
	Sessions         int64 // sessions, connected or not
	MessagesReceived int64
	MessagesSent     int64
	BytesReceived    int64
	BytesSent        int64
	MessagesDropped  int64
	MessagesExpired  int64
	Refused          int64
	StoreErrors      int64
	RetainedMessages int64
	Subscriptions    int64
	Uptime           time.Duration
}

// Stats returns the current statistics.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	sessions := int64(len(b.sessions))
	var uptime time.Duration
	if !b.started.IsZero() {
		uptime = time.Since(b.started)
	}
	b.mu.Unlock()
	return Stats{
		ClientsConnected: b.stats.connected.Load(),
		Sessions:         sessions,
		MessagesReceived: b.stats.received.Load(),
		MessagesSent:     b.stats.sent.Load(),
		BytesReceived:    b.stats.bytesReceived.Load(),
		BytesSent:        b.stats.bytesSent.Load(),
		MessagesDropped:  b.stats.dropped.Load(),
		MessagesExpired:  b.stats.expired.Load(),
		Refused:          b.stats.refused.Load(),
		StoreErrors:      b.stats.storeErrors.Load(),
		RetainedMessages: int64(b.retained.len()),
		Subscriptions:    b.subs.count.Load(),
		Uptime:           uptime,
	}
}

// CountBytes adds network traffic to the byte counters; listeners call it,
// in-process connections have no bytes to count.
func (b *Broker) CountBytes(received, sent int) {
	b.stats.bytesReceived.Add(int64(received))
	b.stats.bytesSent.Add(int64(sent))
}

// sysLoop publishes the statistics every SysInterval, and purges expired
// retained messages on the same beat.
func (b *Broker) sysLoop(ctx context.Context) {
	t := time.NewTicker(b.opts.SysInterval)
	defer t.Stop()
	b.publishSys()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, topic := range b.retained.purgeExpired(time.Now()) {
				b.storeErr(b.store.DeleteRetained(topic), "retained", topic)
			}
			b.publishSys()
		}
	}
}

// publishSys publishes the statistics as retained messages under the topic
// names Mosquitto uses, so existing dashboards work unchanged.
func (b *Broker) publishSys() {
	st := b.Stats()
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	values := [...]struct{ topic, value string }{
		{"$SYS/broker/version", b.opts.Version},
		{"$SYS/broker/uptime", strconv.FormatInt(int64(st.Uptime/time.Second), 10) + " seconds"},
		{"$SYS/broker/clients/connected", i(st.ClientsConnected)},
		{"$SYS/broker/clients/disconnected", i(st.Sessions - st.ClientsConnected)},
		{"$SYS/broker/clients/total", i(st.Sessions)},
		{"$SYS/broker/messages/received", i(st.MessagesReceived)},
		{"$SYS/broker/messages/sent", i(st.MessagesSent)},
		{"$SYS/broker/publish/messages/dropped", i(st.MessagesDropped)},
		{"$SYS/broker/bytes/received", i(st.BytesReceived)},
		{"$SYS/broker/bytes/sent", i(st.BytesSent)},
		{"$SYS/broker/retained messages/count", i(st.RetainedMessages)},
		{"$SYS/broker/subscriptions/count", i(st.Subscriptions)},
	}
	for _, v := range values {
		b.route(nil, &message{topic: v.topic, payload: []byte(v.value), retain: true})
	}
}
