package gateway

import "sync/atomic"

// counters are updated from every goroutine of the gateway.
type counters struct {
	received, sent                 atomic.Uint64
	malformed, readErrors          atomic.Uint64
	writeErrors, encodeErrors      atomic.Uint64
	tooLarge                       atomic.Uint64
	unknownSender, refused         atomic.Uint64
	published, qosMinus1Dropped    atomic.Uint64
	unknownTopic, publishRefused   atomic.Uint64
	delivered, deliveryDropped     atomic.Uint64
	connects, disconnects, lost    atomic.Uint64
	sleeps, wakes, retransmissions atomic.Uint64
	ignoredMsgID, unexpected       atomic.Uint64
	shardDropped                   atomic.Uint64
	duplicates                     atomic.Uint64
	notAdmitted, connectLimited    atomic.Uint64
	unknownLimited                 atomic.Uint64
	storeErrors, ackBacklog        atomic.Uint64

	topicBytesLimited atomic.Uint64
	ipLimited         atomic.Uint64
}

// Stats is a snapshot of the gateway's counters since it started.
type Stats struct {
	Sessions         int64  // sessions held now
	Received         uint64 // datagrams read from links
	Sent             uint64 // datagrams written to links
	Malformed        uint64 // datagrams the codec rejected
	ReadErrors       uint64
	WriteErrors      uint64
	EncodeErrors     uint64
	TooLarge         uint64 // messages dropped as larger than their link carries
	UnknownSender    uint64 // datagrams from addresses with no session, answered DISCONNECT
	Refused          uint64 // CONNECTs refused
	Published        uint64 // messages clients published to the broker
	QoSMinus1Dropped uint64 // QoS -1 messages with no usable topic, or refused
	UnknownTopic     uint64 // PUBLISHes naming a topic id the client never got
	PublishRefused   uint64 // PUBLISHes the broker refused (authorisation, invalid topic)
	Delivered        uint64 // messages sent to clients
	DeliveryDropped  uint64 // messages for clients dropped: topic refused, too large, id space full
	Connects         uint64
	Disconnects      uint64
	Lost             uint64 // clients lost by keep-alive, sleep or retransmission timeout
	Sleeps           uint64
	Wakes            uint64
	Retransmissions  uint64
	IgnoredMsgID     uint64 // QoS 0 / -1 PUBLISHes with a non-zero MsgId (spec-interpretation #8)
	Unexpected       uint64 // messages that made no sense in the session's state
	ShardDropped     uint64 // datagrams handed between shards and dropped because the target was full
	Duplicates       uint64 // late copies of QoS 2 PUBLISHes already released, acknowledged and not published
	NotAdmitted      uint64 // CONNECTs and wake-ups AdmitConnect refused as not allowed (also in Refused)
	ConnectLimited   uint64 // CONNECTs and wake-ups AdmitConnect refused as too frequent (also in Refused)
	UnknownLimited   uint64 // datagrams from unknown senders AdmitUnknown dropped
	StoreErrors      uint64 // SessionStore calls that failed (logged, rate-limited)
	AckBacklog       uint64 // QoS 1/2 PUBLISHes left unanswered while too many acknowledgements waited for the broker's store

	TopicBytes        int64  // bytes of topic names registered now, across clients
	TopicBytesLimited uint64 // registrations refused by MaxTopicBytesPerClient or MaxTopicBytes
	IPLimited         uint64 // CONNECTs refused by MaxSessionsPerIP (also in Refused)
}

// Stats returns the gateway's counters.
func (g *Gateway) Stats() Stats {
	c := &g.stats
	return Stats{
		Sessions:         g.sessions.Load(),
		Received:         c.received.Load(),
		Sent:             c.sent.Load(),
		Malformed:        c.malformed.Load(),
		ReadErrors:       c.readErrors.Load(),
		WriteErrors:      c.writeErrors.Load(),
		EncodeErrors:     c.encodeErrors.Load(),
		TooLarge:         c.tooLarge.Load(),
		UnknownSender:    c.unknownSender.Load(),
		Refused:          c.refused.Load(),
		Published:        c.published.Load(),
		QoSMinus1Dropped: c.qosMinus1Dropped.Load(),
		UnknownTopic:     c.unknownTopic.Load(),
		PublishRefused:   c.publishRefused.Load(),
		Delivered:        c.delivered.Load(),
		DeliveryDropped:  c.deliveryDropped.Load(),
		Connects:         c.connects.Load(),
		Disconnects:      c.disconnects.Load(),
		Lost:             c.lost.Load(),
		Sleeps:           c.sleeps.Load(),
		Wakes:            c.wakes.Load(),
		Retransmissions:  c.retransmissions.Load(),
		IgnoredMsgID:     c.ignoredMsgID.Load(),
		Unexpected:       c.unexpected.Load(),
		ShardDropped:     c.shardDropped.Load(),
		NotAdmitted:      c.notAdmitted.Load(),
		ConnectLimited:   c.connectLimited.Load(),
		UnknownLimited:   c.unknownLimited.Load(),
		Duplicates:       c.duplicates.Load(),
		StoreErrors:      c.storeErrors.Load(),
		AckBacklog:       c.ackBacklog.Load(),

		TopicBytes:        g.topicBytes.Load(),
		TopicBytesLimited: c.topicBytesLimited.Load(),
		IPLimited:         c.ipLimited.Load(),
	}
}
