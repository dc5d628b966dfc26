package auth

import (
	"github.com/snwgw/snwgw/mqttcore"
)

// Anonymous is the policy for clients that connect without a user name.
type Anonymous uint8

// Anonymous policies.
const (
	// AnonymousDefault refuses anonymous clients when a password file is
	// set and allows them otherwise, so that setting up passwords closes
	// the door without a second setting.
	AnonymousDefault Anonymous = iota
	AnonymousAllow
	AnonymousDeny
)

// Options configure an Authorizer.
type Options struct {
	// Passwords, when set, authenticates clients that give a user name.
	Passwords *Passwords
	// Anonymous decides about clients without a user name.
	Anonymous Anonymous
	// ACL, when set, decides publishes and subscriptions; without it every
	// connected client may publish and subscribe to anything.
	ACL *ACL
	// Identify, if set, maps what the broker knows of a client onto a
	// Client; without it the ClientInfo's own fields are used (client id,
	// user name, link, identity, and Authenticated as Preauthenticated),
	// which the MQTT-SN gateway and the listeners fill in.
	Identify func(mqttcore.ClientInfo) Client
}

// Authorizer implements mqttcore.Authorizer with a password file and an
// ACL. It is safe for concurrent use.
type Authorizer struct {
	opts Options
}

var _ mqttcore.Authorizer = (*Authorizer)(nil)

// NewAuthorizer returns an Authorizer configured by opts.
func NewAuthorizer(opts Options) *Authorizer { return &Authorizer{opts: opts} }

func (a *Authorizer) client(ci mqttcore.ClientInfo) Client {
	if a.opts.Identify != nil {
		return a.opts.Identify(ci)
	}
	return Client{ClientID: ci.ClientID, Username: ci.Username, Link: ci.Link,
		Identity: ci.Identity, Preauthenticated: ci.Authenticated}
}

// anonymousAllowed applies the Anonymous policy.
func (a *Authorizer) anonymousAllowed() bool {
	switch a.opts.Anonymous {
	case AnonymousAllow:
		return true
	case AnonymousDeny:
		return false
	}
	return a.opts.Passwords == nil
}

// AllowConnect implements mqttcore.Authorizer. A client the link has
// authenticated is let in; a client with a user name must give its
// password; a client without one is let in if anonymous clients are. A
// user name without a password file is refused: nothing could verify it,
// and the ACL would trust it.
func (a *Authorizer) AllowConnect(ci mqttcore.ClientInfo, password []byte) bool {
	c := a.client(ci)
	switch {
	case c.Preauthenticated:
		return true
	case c.Username == "":
		return a.anonymousAllowed()
	case a.opts.Passwords == nil:
		return false
	}
	return a.opts.Passwords.Check(c.Username, password)
}

// AllowPublish implements mqttcore.Authorizer with ACL.AllowPublish.
func (a *Authorizer) AllowPublish(ci mqttcore.ClientInfo, topic string) bool {
	if a.opts.ACL == nil {
		return true
	}
	return a.opts.ACL.AllowPublish(a.client(ci), topic)
}

// AllowSubscribe implements mqttcore.Authorizer with ACL.AllowSubscribe:
// a filter is refused only if the ACL could never let a message through
// it; AllowRead judges each message.
func (a *Authorizer) AllowSubscribe(ci mqttcore.ClientInfo, filter string) bool {
	if a.opts.ACL == nil {
		return true
	}
	return a.opts.ACL.AllowSubscribe(a.client(ci), filter)
}

// AllowRead implements mqttcore.Authorizer with ACL.AllowRead.
func (a *Authorizer) AllowRead(ci mqttcore.ClientInfo, topic string) bool {
	if a.opts.ACL == nil {
		return true
	}
	return a.opts.ACL.AllowRead(a.client(ci), topic)
}
