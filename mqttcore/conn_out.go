package mqttcore

import (
	"bufio"
	"errors"
	"net"
	"time"

	"github.com/snwgw/snwgw/mqttcore/packet"
)

// deliveryBatch is the number of deliveries written under one hold of wmu
// before the reader gets a turn to write its acknowledgements.
const deliveryBatch = 64

// writeLoop is the writer goroutine: it turns the engine's deliveries into
// PUBLISH and PUBREL packets, and carries out disconnects.
func (c *wireConn) writeLoop() {
	for {
		select {
		case <-c.done:
			return
		case <-c.kick:
			c.shut(packet.ReasonCode(c.kickReason.Load()-1), true)
			return
		case <-c.wake:
			if err := c.deliver(); err != nil {
				// The client does not take its data (WriteTimeout) or the
				// socket failed: it is lost, and the reader ends its session.
				c.log.Info("client disconnected: write failed", "client", c.sess.ClientID(), "err", err)
				c.shut(0, false)
				_ = c.nc.Close()
				return
			}
		}
	}
}

// deliver writes every delivery the session has now, flushing after each
// batch. It returns a write error; nothing is lost by one, since the engine
// keeps every QoS 1 and 2 message until it is acknowledged.
func (c *wireConn) deliver() error {
	for {
		c.wmu.Lock()
		if c.closing.Load() || c.sess == nil {
			c.wmu.Unlock()
			return nil
		}
		c.writeAcksLocked()
		n := 0
		for ; n < deliveryBatch && c.werr == nil; n++ {
			d, ok := c.sess.Next()
			if !ok {
				break
			}
			if c.holdLocked(d) {
				continue
			}
			c.writeDeliveryLocked(&d)
		}
		c.releaseHeldLocked()
		c.flushLocked()
		err := c.werr
		c.wmu.Unlock()
		if err != nil {
			return err
		}
		if n < deliveryBatch {
			return nil
		}
	}
}

// holdLocked keeps back a delivery until the store has committed what the
// engine recorded for it, and reports whether it did. With a durable store
// a QoS 2 PUBLISH may only go out once its packet id is on disk, and a
// PUBREL once the PUBREC state is: a restart that forgot either would send
// the message again under a new id, or send its PUBLISH after its PUBREL,
// and the subscriber would have it twice. Once one delivery is held, those
// after it wait too, to keep their order.
func (c *wireConn) holdLocked(d Delivery) bool {
	if !c.b.Durable() || len(c.held) == 0 && c.heldOut == 0 && d.QoS < 2 && !d.Release {
		return false
	}
	c.held = append(c.held, d)
	return true
}

// releaseHeldLocked asks the store to hand the held deliveries back for
// writing once their changes are committed.
func (c *wireConn) releaseHeldLocked() {
	if len(c.held) == 0 {
		return
	}
	held := c.held
	c.held = nil
	c.heldOut++
	c.b.WhenDurable(func() {
		c.wmu.Lock()
		c.ready = append(c.ready, held...)
		c.heldOut--
		c.wmu.Unlock()
		c.Notify()
	})
}

// writeDeliveryLocked writes one delivery. A PUBLISH the client's Maximum
// Packet Size does not admit is discarded and acknowledged to the engine,
// as if it had been sent and acknowledged (MQTT 5 §3.1.2.11.4).
func (c *wireConn) writeDeliveryLocked(d *Delivery) {
	if d.Release {
		_ = c.writeLocked(&packet.AckPacket{PacketType: packet.Pubrel, PacketID: d.PacketID})
		return
	}
	p := &c.pub
	*p = packet.PublishPacket{DUP: d.DUP, QoS: d.QoS, Retain: d.Retain, Topic: d.Topic, PacketID: d.PacketID, Payload: d.Payload}
	var newAlias uint16
	if c.version == packet.V5 {
		mp := &d.Properties
		pp := &p.Properties
		pp.PayloadFormat, pp.MessageExpiry, pp.ContentType = mp.PayloadFormat, mp.MessageExpiry, mp.ContentType
		pp.ResponseTopic, pp.CorrelationData = mp.ResponseTopic, mp.CorrelationData
		pp.SubscriptionIDs = d.SubscriptionIDs
		if len(mp.User) > 0 {
			pp.User = make([]packet.UserProperty, len(mp.User))
			for i, u := range mp.User {
				pp.User[i] = packet.UserProperty(u)
			}
		}
		// Topic aliases towards the client (MQTT 5 §3.3.2.3.4): a topic seen
		// before goes as its alias alone; new topics get the next alias
		// while the client's Topic Alias Maximum allows, then none.
		if c.aliasMax > 0 {
			if a, ok := c.outAliases[d.Topic]; ok {
				c.alias = a
				p.Topic = ""
				pp.TopicAlias = &c.alias
			} else if len(c.outAliases) < int(c.aliasMax) {
				newAlias = uint16(len(c.outAliases) + 1)
				c.alias = newAlias
				pp.TopicAlias = &c.alias
			}
		}
	}
	err := c.writeLocked(p)
	switch {
	case err == nil:
		if newAlias != 0 {
			if c.outAliases == nil {
				c.outAliases = make(map[string]uint16)
			}
			c.outAliases[d.Topic] = newAlias
		}
	case errors.Is(err, errTooLarge):
		c.log.Debug("message above the client's maximum packet size dropped", "client", c.sess.ClientID(), "topic", d.Topic)
		c.b.stats.dropped.Add(1)
		switch d.QoS {
		case 1:
			_ = c.sess.Ack(d.PacketID)
		case 2:
			_ = c.sess.Complete(d.PacketID)
		}
	}
	// Payload and properties belong to the engine's message: do not keep
	// them alive here.
	c.pub = packet.PublishPacket{}
}

// writeLocked encodes p into the output buffer, taking one from the pool
// (and arming the write deadline) if there is none. It returns errTooLarge,
// writing nothing, for a packet above the client's Maximum Packet Size.
func (c *wireConn) writeLocked(p packet.Packet) error {
	if c.werr != nil {
		return c.werr
	}
	if c.bw == nil {
		c.bw = writerPool.Get().(*bufio.Writer)
		c.bw.Reset(c.nc)
		if err := c.nc.SetWriteDeadline(time.Now().Add(c.ls.opts.WriteTimeout)); err != nil {
			c.werr = err
			return err
		}
	}
	buf, err := packet.Append(c.bw.AvailableBuffer(), p, c.version)
	if err != nil {
		// Every packet built here is valid; this is a bug, not input.
		c.log.Error("packet not encoded", "type", p.Type(), "err", err)
		return err
	}
	if c.clientMax != 0 && uint32(len(buf)) > c.clientMax {
		return errTooLarge
	}
	n, err := c.bw.Write(buf)
	c.unflushed += n
	if err != nil {
		c.werr = err
	}
	return err
}

// flushLocked writes the output buffer to the socket, counts the bytes and
// gives the buffer back to the pool.
func (c *wireConn) flushLocked() {
	if c.bw == nil {
		return
	}
	if c.werr == nil {
		if err := c.bw.Flush(); err != nil {
			c.werr = err
		}
	}
	c.b.CountBytes(0, c.unflushed)
	c.unflushed = 0
	c.bw.Reset(nil)
	writerPool.Put(c.bw)
	c.bw = nil
}

// shut starts the orderly end of the connection, once: a v5 DISCONNECT
// with rc if send is set (and the connection got as far as CONNACK), the
// pending output, then the write side is shut and the reader given
// CloseTimeout to see the client close. The writer stops.
func (c *wireConn) shut(rc packet.ReasonCode, send bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing.Load() {
		return
	}
	c.closing.Store(true)
	if send && c.connacked && c.version == packet.V5 {
		d := &packet.DisconnectPacket{ReasonCode: fitReason(&packet.DisconnectPacket{ReasonCode: rc}, rc, packet.UnspecifiedError)}
		if rc.IsError() {
			d.Properties.ReasonString = rc.String()
		}
		_ = c.replyLocked(d)
		c.log.Debug("client disconnected by the server", "client", c.sess.ClientID(), "reason", rc)
	}
	c.flushLocked()
	if c.werr == nil {
		c.werr = net.ErrClosed
	}
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(c.ls.opts.CloseTimeout))
	close(c.done)
}
