package mqttcore

import "net"

// ClientInfo identifies the client an authorization decision is about.
type ClientInfo struct {
	ClientID string
	Username string
	// Remote is the network peer of an MQTT client, as its listener
	// accepted it (for WebSocket, the TCP peer, never a forwarding
	// header); nil for in-process connections, such as the gateway's
	// sessions for MQTT-SN clients, whose owner judges addresses itself.
	Remote net.Addr
	// Link names the listener or link the client came through, as the
	// connection's owner names it.
	Link string
	// Identity is what the link proved about the client: a DTLS PSK
	// identity or the subject of a verified client certificate; empty when
	// it proved nothing.
	Identity string
	// Authenticated reports that the connection's owner has already
	// admitted the client by means of its own (an MQTT-SN gateway's
	// allowlist, a verified certificate), so no password is needed.
	Authenticated bool
}

// Authorizer decides who may connect, publish, subscribe and receive. The
// engine calls it on every request and every delivery, so it must be fast
// and safe for concurrent use. It must not call back into the Broker: it
// may be called with a session's lock held.
type Authorizer interface {
	// AllowConnect decides a connection attempt; a refusal makes Connect fail
	// with ErrNotAuthorized (v5 CONNACK 0x87).
	AllowConnect(c ClientInfo, password []byte) bool
	// AllowPublish decides a publish (and a will when it fires); a refused
	// message is dropped, counted and reported as ErrNotAuthorized.
	AllowPublish(c ClientInfo, topic string) bool
	// AllowSubscribe decides one subscription (filter as requested, shared
	// form included); a refusal yields ReasonNotAuthorized in its place.
	// Since every message is judged again by AllowRead, it need refuse only
	// a filter on which the client could never receive anything: a
	// subscription to "#" by a client that may read most topics but not
	// some is granted, and the topics it may not read never reach it.
	AllowSubscribe(c ClientInfo, filter string) bool
	// AllowRead decides whether a message on topic may reach the client,
	// whichever of its subscriptions matched (retained messages included).
	// c is the session's latest connection (or, for a session restored
	// from the Store and not yet resumed, what the Store kept of it). A
	// refused message is not queued for that client, and is counted as
	// refused. It runs once per delivery: keep it cheap.
	AllowRead(c ClientInfo, topic string) bool
}

// AllowAll is the default Authorizer: everything is permitted.
type AllowAll struct{}

// AllowConnect implements Authorizer.
func (AllowAll) AllowConnect(ClientInfo, []byte) bool { return true }

// AllowPublish implements Authorizer.
func (AllowAll) AllowPublish(ClientInfo, string) bool { return true }

// AllowSubscribe implements Authorizer.
func (AllowAll) AllowSubscribe(ClientInfo, string) bool { return true }

// AllowRead implements Authorizer. A broker with AllowAll skips the
// per-delivery call altogether.
func (AllowAll) AllowRead(ClientInfo, string) bool { return true }

// checkRead reports whether deliveries need the Authorizer's read check:
// an open broker's fan-out pays nothing for it.
func (b *Broker) checkRead() bool { return !isAllowAll(b.auth) }

func isAllowAll(a Authorizer) bool {
	switch a.(type) {
	case AllowAll, *AllowAll:
		return true
	}
	return false
}
