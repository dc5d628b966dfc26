package mqttcore

// ClientInfo identifies the client an authorization decision is about.
type ClientInfo struct {
	ClientID string
	Username string
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

// Authorizer decides who may connect, publish and subscribe. The engine
// calls it on every request, so it must be fast and safe for concurrent use;
// it is called without engine locks held.
type Authorizer interface {
	// AllowConnect decides a connection attempt; a refusal makes Connect fail
	// with ErrNotAuthorized (v5 CONNACK 0x87).
	AllowConnect(c ClientInfo, password []byte) bool
	// AllowPublish decides a publish (and a will when it fires); a refused
	// message is dropped, counted and reported as ErrNotAuthorized.
	AllowPublish(c ClientInfo, topic string) bool
	// AllowSubscribe decides one subscription (filter as requested, shared
	// form included); a refusal yields ReasonNotAuthorized in its place.
	AllowSubscribe(c ClientInfo, filter string) bool
}

// AllowAll is the default Authorizer: everything is permitted.
type AllowAll struct{}

// AllowConnect implements Authorizer.
func (AllowAll) AllowConnect(ClientInfo, []byte) bool { return true }

// AllowPublish implements Authorizer.
func (AllowAll) AllowPublish(ClientInfo, string) bool { return true }

// AllowSubscribe implements Authorizer.
func (AllowAll) AllowSubscribe(ClientInfo, string) bool { return true }
