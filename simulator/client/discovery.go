package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
)

// Discovery timing (MQTT-SN 1.2 §6.1, §7.2). SEARCHGW is repeated with
// exponentially growing intervals while no gateway answers.
const (
	// SearchInterval is the first interval between SEARCHGWs, T_SEARCHGW.
	SearchInterval = 5 * time.Second
	// MaxSearchInterval caps the interval between SEARCHGWs.
	MaxSearchInterval = 5 * time.Minute
)

// GatewayInfo describes a gateway found by SearchGateway or
// ListenAdvertise.
type GatewayInfo struct {
	// GatewayID is the GwId of the GWINFO or ADVERTISE.
	GatewayID uint8
	// Addr is where the GWINFO or ADVERTISE came from: the gateway, or
	// for a GWINFO with GatewayAddr, the client that answered for it.
	Addr net.Addr
	// GatewayAddr is the GwAdd of a GWINFO sent by a client on behalf of
	// a gateway it knows (§6.1): raw, network-specific address octets.
	// Nil when the gateway answered itself.
	GatewayAddr []byte
	// Advertised is set for an ADVERTISE, whose Duration says when the
	// next one is due (T_ADV).
	Advertised bool
	Duration   time.Duration
}

// SearchGateway broadcasts SEARCHGW with the given radius to broadcastAddr
// (a broadcast or multicast address, or the gateway's own on a serial
// line) and returns the first gateway that answers with GWINFO, or
// announces itself with ADVERTISE (§6.1). While none does, SEARCHGW is
// repeated after SearchInterval, doubling up to MaxSearchInterval, until
// ctx ends.
//
// SearchGateway reads from conn, so nothing else may read it meanwhile;
// use it before Dial. It controls conn's read deadline and clears it when
// it returns. It does not wait the random delay of §6.1 before the first
// SEARCHGW: a program starting many clients at once should stagger them.
func SearchGateway(ctx context.Context, conn net.PacketConn, broadcastAddr net.Addr, radius uint8) (GatewayInfo, error) {
	search, err := (&mqttsn.SearchGW{Radius: radius}).AppendTo(nil)
	if err != nil {
		return GatewayInfo{}, fmt.Errorf("client: search gateway: %w", err)
	}
	interval := SearchInterval
	tick := func() (time.Time, error) {
		if _, err := conn.WriteTo(search, broadcastAddr); err != nil {
			return time.Time{}, fmt.Errorf("client: search gateway: %w", err)
		}
		next := time.Now().Add(interval)
		interval = min(2*interval, MaxSearchInterval)
		return next, nil
	}
	return readGateway(ctx, conn, tick, func(p mqttsn.Packet) bool {
		t := p.Type()
		return t == mqttsn.TypeGWInfo || t == mqttsn.TypeAdvertise
	})
}

// ListenAdvertise returns the next ADVERTISE received on conn (§6.1), or
// ctx's error. Like SearchGateway it must be the only reader of conn and
// it controls conn's read deadline while it runs.
func ListenAdvertise(ctx context.Context, conn net.PacketConn) (GatewayInfo, error) {
	never := func() (time.Time, error) { return time.Time{}, nil }
	return readGateway(ctx, conn, never, func(p mqttsn.Packet) bool {
		return p.Type() == mqttsn.TypeAdvertise
	})
}

// longAgo is a deadline in the past, which unblocks a pending read.
var longAgo = time.Unix(1, 0)

// readGateway reads conn until a datagram passes accept, calling tick
// first and again whenever the read deadline it returned passes (a zero
// time means no deadline).
func readGateway(ctx context.Context, conn net.PacketConn, tick func() (time.Time, error), accept func(mqttsn.Packet) bool) (GatewayInfo, error) {
	// Cancelling ctx moves the read deadline into the past. Deadlines
	// are set under mu, and cancelled (guarded by mu) keeps a later tick
	// from undoing a cancellation.
	var mu sync.Mutex
	cancelled := false
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		mu.Lock()
		defer mu.Unlock()
		cancelled = true
		_ = conn.SetReadDeadline(longAgo)
	})
	defer func() {
		if !stop() {
			<-fired
		}
		_ = conn.SetReadDeadline(time.Time{})
	}()

	buf := make([]byte, maxDatagram)
	for {
		deadline, err := tick()
		if err != nil {
			return GatewayInfo{}, err
		}
		mu.Lock()
		if !cancelled {
			err = conn.SetReadDeadline(deadline)
		}
		mu.Unlock()
		if err != nil {
			return GatewayInfo{}, fmt.Errorf("client: set read deadline: %w", err)
		}
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				if ctx.Err() != nil {
					return GatewayInfo{}, ctx.Err()
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break // time for the next tick
				}
				return GatewayInfo{}, fmt.Errorf("client: read: %w", err)
			}
			p, err := mqttsn.Parse(buf[:n])
			if err != nil || !accept(p) {
				continue
			}
			switch p := p.(type) {
			case *mqttsn.GWInfo:
				return GatewayInfo{GatewayID: p.GatewayID, Addr: from, GatewayAddr: p.GatewayAddr}, nil
			case *mqttsn.Advertise:
				return GatewayInfo{
					GatewayID:  p.GatewayID,
					Addr:       from,
					Advertised: true,
					Duration:   time.Duration(p.Duration) * time.Second,
				}, nil
			}
		}
	}
}
