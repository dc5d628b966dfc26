package gateway

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
)

// maxConnecting bounds the addresses a read loop remembers as "CONNECT
// under way"; a burst beyond it starts the table afresh, which at worst
// lets a datagram that chases its CONNECT be answered as unknown.
const maxConnecting = 1 << 16

// readLoop reads l until it is closed. It owns buf, parser, out and
// connecting; the datagram of a known session is copied before it crosses
// to the shard.
func (g *Gateway) readLoop(l *link) {
	buf := make([]byte, 65536)
	var (
		parser mqttsn.Parser
		out    []byte
	)
	// connecting maps the addresses whose CONNECT was handed to a shard but
	// that are not bound yet to that shard, so their next datagrams (a
	// REGISTER sent right behind the CONNECT) follow it in order instead of
	// being answered as from an unknown sender.
	connecting := make(map[addrKey]*shard)
	select {
	case <-g.ready:
	case <-g.closing:
		return
	}
	for {
		n, addr, ap, err := g.read(l, buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-g.closing:
				return
			default:
			}
			g.stats.readErrors.Add(1)
			g.logProtocol("gateway: read failed", "link", l.Name, "err", err)
			continue
		}
		g.stats.received.Add(1)
		data := buf[:n]
		key := addrKey{link: l, ap: ap}
		if !ap.IsValid() {
			key.str = addr.String()
		}
		var node []byte
		if n >= 2 && data[1] == byte(mqttsn.TypeEncapsulated) || n >= 4 && data[0] == 1 && data[3] == byte(mqttsn.TypeEncapsulated) {
			p, err := parser.Parse(data)
			if err != nil {
				g.malformed(l, addr, err)
				continue
			}
			enc := p.(*mqttsn.Encapsulated)
			node = append([]byte(nil), enc.NodeID...)
			key.node = string(node)
			data = enc.Message
		}
		if s := g.lookup(key); s != nil {
			if len(connecting) > 0 {
				delete(connecting, key)
			}
			s.sh.post(event{kind: evPacket, sess: s, data: copyBytes(data)})
			continue
		}
		if sh, ok := connecting[key]; ok {
			sh.post(event{kind: evPending, key: key, addr: netAddr(key, addr), node: node, data: copyBytes(data)})
			continue
		}
		if sh := g.unknownSender(l, key, addr, node, data, &parser, &out, (*shard).post); sh != nil {
			if len(connecting) >= maxConnecting {
				clear(connecting)
			}
			connecting[key] = sh
		}
	}
}

// read reads one datagram; for UDP links it avoids allocating an address
// for every packet.
func (g *Gateway) read(l *link, buf []byte) (int, net.Addr, netip.AddrPort, error) {
	if l.udp != nil {
		n, ap, err := l.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return 0, nil, ap, err
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		return n, nil, ap, nil
	}
	n, addr, err := l.Conn.ReadFrom(buf)
	return n, addr, netip.AddrPort{}, err
}

// netAddr returns the address to write to for key, building it for UDP
// senders whose read carried no net.Addr.
func netAddr(key addrKey, addr net.Addr) net.Addr {
	if addr != nil {
		return addr
	}
	return net.UDPAddrFromAddrPort(key.ap)
}

func copyBytes(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }

// malformed counts a datagram the codec rejected and logs it, rate-limited.
func (g *Gateway) malformed(l *link, addr net.Addr, err error) {
	g.stats.malformed.Add(1)
	g.logProtocol("gateway: malformed datagram dropped", "link", l.Name, "addr", addr, "err", err)
}

// unknownSender handles a datagram from an address with no session: the
// messages that need none, the ones that create or find a session by
// ClientId, and a DISCONNECT for everything else (MQTT-SN 1.2 §5.4.21), so
// the node knows to connect. It returns the shard it handed a CONNECT to.
//
// post hands an event to another shard: the read loop waits while the
// shard's inbox is full, a shard must not (two shards could wait on each
// other), so it passes (*shard).tryPost.
func (g *Gateway) unknownSender(l *link, key addrKey, addr net.Addr, node, data []byte, parser *mqttsn.Parser, out *[]byte, post func(*shard, event)) *shard {
	if admit := g.opts.AdmitUnknown; admit != nil {
		addr = netAddr(key, addr)
		if !admit(Sender{Link: l.Name, Addr: addr, Node: node}) {
			g.stats.unknownLimited.Add(1)
			return nil
		}
	}
	p, err := parser.Parse(data)
	if err != nil {
		if errors.Is(err, mqttsn.ErrUnsupportedProtocol) {
			g.encodeTo(out, l, netAddr(key, addr), node, &mqttsn.ConnAck{ReturnCode: mqttsn.RejectedNotSupported})
			g.stats.refused.Add(1)
			return nil
		}
		g.malformed(l, netAddr(key, addr), err)
		return nil
	}
	switch p := p.(type) {
	case *mqttsn.Connect:
		ev := event{kind: evConnect, key: key, addr: netAddr(key, addr), node: node, data: copyBytes(data)}
		sh := g.shardFor(p.ClientID)
		post(sh, ev)
		return sh
	case *mqttsn.PingReq:
		if p.ClientID == "" {
			g.sendDisconnect(l, key, addr, node, out)
			return nil
		}
		ev := event{kind: evWake, key: key, addr: netAddr(key, addr), node: node, data: copyBytes(data)}
		post(g.shardFor(p.ClientID), ev)
	case *mqttsn.SearchGW:
		// Answered to the sender, which is listening on the socket it
		// searched from; a broadcast answer would miss clients that bound
		// an ephemeral port (spec-interpretation #28).
		g.encodeTo(out, l, netAddr(key, addr), node, &mqttsn.GWInfo{GatewayID: g.opts.GatewayID})
	case *mqttsn.Publish:
		if p.QoS == mqttsn.QoSMinus1 {
			g.publishQoSMinus1(p)
			return nil
		}
		g.sendDisconnect(l, key, addr, node, out)
	case *mqttsn.Advertise, *mqttsn.GWInfo, *mqttsn.Disconnect:
		// Another gateway's announcements, and a DISCONNECT, need no answer:
		// answering a DISCONNECT with one could loop between two gateways.
	default:
		g.sendDisconnect(l, key, addr, node, out)
	}
	return nil
}

func (g *Gateway) sendDisconnect(l *link, key addrKey, addr net.Addr, node []byte, out *[]byte) {
	g.stats.unknownSender.Add(1)
	if g.unknownLimit.allow(time.Now()) {
		g.encodeTo(out, l, netAddr(key, addr), node, &mqttsn.Disconnect{})
	}
}

// publishQoSMinus1 publishes a QoS -1 message (MQTT-SN 1.2 §6.8): it needs
// no connection, so there is nobody to tell about an error; it is counted
// and dropped (spec-interpretation #7).
func (g *Gateway) publishQoSMinus1(p *mqttsn.Publish) {
	var topic string
	switch p.TopicIDType {
	case mqttsn.TopicPredefined:
		topic = g.opts.Predefined[p.TopicID]
	case mqttsn.TopicShort:
		topic = mqttsn.ShortTopicName(p.TopicID)
	case mqttsn.TopicNormal:
		if g.opts.QoSMinusOneTopicNames {
			topic = p.TopicName
		}
	}
	if topic == "" || validTopicName(topic) != nil {
		g.stats.qosMinus1Dropped.Add(1)
		return
	}
	err := g.qosM1.Publish(mqttcore.Message{Topic: topic, Payload: copyBytes(p.Data), Retain: p.Retain})
	if err != nil {
		g.stats.qosMinus1Dropped.Add(1)
		g.logProtocol("gateway: QoS -1 publish refused", "topic", topic, "err", err)
		return
	}
	g.stats.published.Add(1)
}

// advertiseLoop sends ADVERTISE to l's broadcast address every
// AdvertiseInterval, with the interval as its Duration (MQTT-SN 1.2 §6.1).
// The first goes out at once, so clients learn of a restarted gateway.
func (g *Gateway) advertiseLoop(l *link) {
	secs := min(g.opts.AdvertiseInterval/time.Second, 0xFFFF)
	adv := &mqttsn.Advertise{GatewayID: g.opts.GatewayID, Duration: uint16(secs)}
	var buf []byte
	select {
	case <-g.ready:
	case <-g.closing:
		return
	}
	t := time.NewTicker(g.opts.AdvertiseInterval)
	defer t.Stop()
	for {
		g.encodeTo(&buf, l, l.Broadcast, nil, adv)
		select {
		case <-t.C:
		case <-g.closing:
			return
		}
	}
}
