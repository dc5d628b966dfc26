package gateway

import (
	"container/heap"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
)

// eventKind says what an event carries to a shard.
type eventKind uint8

const (
	evPacket  eventKind = iota // a datagram for sess
	evConnect                  // a CONNECT from an address with no session
	evWake                     // a PINGREQ with ClientId from an address with no session
	evPending                  // a datagram from an address whose CONNECT this shard has
	evRun                      // fn to run on the shard (Restore)
)

// event is the unit of work a read loop hands to a shard.
type event struct {
	kind eventKind
	sess *session
	key  addrKey  // evConnect, evWake: where the datagram came from
	addr net.Addr // evConnect, evWake: the address to answer
	node []byte   // evConnect, evWake: forwarder Wireless Node Id
	data []byte   // the datagram, owned by the event
	fn   func(*shard)
}

// shardInbox bounds the events waiting for a shard. A full inbox blocks the
// read loop, which leaves datagrams in the socket's receive buffer (sized
// for bursts by the transport) instead of dropping them here.
const shardInbox = 4096

// shard owns a share of the sessions: their state, their timers, and the
// clients' ClientId index.
type shard struct {
	g      *Gateway
	in     chan event
	wakeCh chan struct{} // capacity 1: there are sessions on woken

	wakeMu sync.Mutex
	woken  []*session // sessions the broker notified; guarded by wakeMu
	acks   []heldAck  // acknowledgements the store committed; guarded by wakeMu
	// acksHeld counts acknowledgements registered with the store and not
	// yet sent, to bound them (maxHeldAcks).
	acksHeld atomic.Int64

	// Everything below is owned by the shard goroutine.
	byID   map[string]*session
	timers timerHeap
	parser mqttsn.Parser
	out    []byte // encoding buffer
	spare  []*session
	spareA []heldAck
}

func newShard(g *Gateway) *shard {
	return &shard{
		g:      g,
		in:     make(chan event, shardInbox),
		wakeCh: make(chan struct{}, 1),
		byID:   make(map[string]*session),
	}
}

// post hands ev to the shard, waiting while its inbox is full unless the
// gateway is closing.
func (sh *shard) post(ev event) {
	select {
	case sh.in <- ev:
	case <-sh.g.closing:
	}
}

// tryPost hands ev to the shard if its inbox has room, and otherwise drops
// it and counts it: a shard uses it to reach another shard, where waiting
// could deadlock. The client repeats what was lost, as over a lossy link.
func (sh *shard) tryPost(ev event) {
	select {
	case sh.in <- ev:
	default:
		sh.g.stats.shardDropped.Add(1)
	}
}

// wake queues s for a look at its broker deliveries. It never blocks: it is
// called by the broker from any goroutine.
func (sh *shard) wake(s *session) {
	sh.wakeMu.Lock()
	sh.woken = append(sh.woken, s)
	sh.wakeMu.Unlock()
	select {
	case sh.wakeCh <- struct{}{}:
	default:
	}
}

func (sh *shard) run() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := time.Time{}
	defer func() {
		timer.Stop()
		for _, s := range sh.byID {
			s.shutdown()
		}
	}()
	for {
		// Keep one runtime timer for the earliest session deadline.
		if len(sh.timers) > 0 {
			if next := sh.timers[0].when; !next.Equal(armed) {
				timer.Reset(time.Until(next))
				armed = next
			}
		} else if !armed.IsZero() {
			timer.Stop()
			armed = time.Time{}
		}
		select {
		case ev := <-sh.in:
			sh.handle(ev)
			sh.drainInbox()
		case <-sh.wakeCh:
			sh.wakeMu.Lock()
			list := sh.woken
			sh.woken = sh.spare[:0]
			acks := sh.acks
			sh.acks = sh.spareA[:0]
			sh.wakeMu.Unlock()
			if len(acks) > 0 {
				sh.sendHeld(acks)
			}
			sh.spareA = acks
			for i, s := range list {
				s.onNotify()
				list[i] = nil
			}
			sh.spare = list
		case <-timer.C:
			armed = time.Time{}
			sh.fireTimers(time.Now())
		case <-sh.g.closing:
			return
		}
	}
}

// inboxBatch bounds the events a shard takes from its inbox in one go,
// so that timers and broker wake-ups still get their turn under load.
const inboxBatch = 64

// drainInbox handles the events already waiting, up to inboxBatch: under
// load the inbox is rarely empty, and a plain receive per datagram costs
// less than the four-way select of run, whose locking of every channel
// showed in the profile of BenchmarkPublishQoS0Clients; taking the backlog
// this way saves 15–25 % of the CPU per QoS 0 PUBLISH there.
func (sh *shard) drainInbox() {
	for range inboxBatch - 1 {
		select {
		case ev := <-sh.in:
			sh.handle(ev)
		default:
			return
		}
	}
}

func (sh *shard) handle(ev event) {
	switch ev.kind {
	case evPacket:
		if ev.sess.gone {
			return // removed while the datagram was queued
		}
		ev.sess.onDatagram(ev.data)
	case evConnect:
		sh.onConnect(ev)
	case evWake:
		sh.onWakeFromNewAddress(ev)
	case evRun:
		ev.fn(sh)
	case evPending:
		// Handled after the CONNECT it followed: by now the address is
		// bound, unless the CONNECT was refused.
		if s := sh.g.lookup(ev.key); s != nil && s.sh == sh && !s.gone {
			s.onDatagram(ev.data)
			return
		}
		sh.g.unknownSender(ev.key.link, ev.key, ev.addr, ev.node, ev.data, &sh.parser, &sh.out, (*shard).tryPost)
	}
}

// fireTimers runs every session deadline that has passed.
func (sh *shard) fireTimers(now time.Time) {
	for len(sh.timers) > 0 && !sh.timers[0].when.After(now) {
		s := heap.Pop(&sh.timers).(*session)
		s.when = time.Time{}
		s.onTimer(now)
		s.save()
	}
}

// schedule sets s's single deadline; a zero time cancels it.
func (sh *shard) schedule(s *session, when time.Time) {
	switch {
	case when.IsZero() && s.heapIdx >= 0:
		heap.Remove(&sh.timers, s.heapIdx)
		s.when = time.Time{}
	case when.IsZero():
	case s.heapIdx >= 0:
		s.when = when
		heap.Fix(&sh.timers, s.heapIdx)
	default:
		s.when = when
		heap.Push(&sh.timers, s)
	}
}

// timerHeap orders sessions by deadline (container/heap).
type timerHeap []*session

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when.Before(h[j].when) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *timerHeap) Push(x any) {
	s := x.(*session)
	s.heapIdx = len(*h)
	*h = append(*h, s)
}
func (h *timerHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	s.heapIdx = -1
	*h = old[:len(old)-1]
	return s
}
