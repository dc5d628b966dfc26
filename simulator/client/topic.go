package client

import (
	"fmt"
	"strings"

	"github.com/snwgw/snwgw/mqttsn"
)

// Topic names a topic in one of the three ways of MQTT-SN 1.2 (§3, §6.7).
type Topic struct {
	// Kind says which field identifies the topic: TopicNormal uses Name
	// (or, when Name is empty, a topic id already registered), and
	// TopicPredefined uses ID, TopicShort uses Name.
	Kind mqttsn.TopicIDType
	// Name is the topic name (a topic filter in Subscribe) for
	// TopicNormal, or the two characters of a short topic name.
	Name string
	// ID is the pre-defined topic id, or for TopicNormal the registered
	// topic id (set on received messages).
	ID uint16
}

// TopicName returns the Topic for a topic name, registered with the
// gateway before its first PUBLISH. In Subscribe and Unsubscribe it may be
// a topic filter with wildcards.
func TopicName(name string) Topic { return Topic{Kind: mqttsn.TopicNormal, Name: name} }

// Predefined returns the Topic for a pre-defined topic id, known to the
// client and the gateway in advance (§6.6).
func Predefined(id uint16) Topic { return Topic{Kind: mqttsn.TopicPredefined, ID: id} }

// Short returns the Topic for a short topic name, which must be exactly
// two octets (§6.6).
func Short(name string) Topic { return Topic{Kind: mqttsn.TopicShort, Name: name} }

// String returns the topic as it is usually written: the name, or
// "predefined:N", or "id:N" for a registered id whose name is unknown.
func (t Topic) String() string {
	switch {
	case t.Kind == mqttsn.TopicPredefined:
		return fmt.Sprintf("predefined:%d", t.ID)
	case t.Name != "":
		return t.Name
	}
	return fmt.Sprintf("id:%d", t.ID)
}

// Message is an application message, received from the gateway or given
// to Publish.
type Message struct {
	Topic   Topic
	Payload []byte
	// QoS is the quality of service: -1, 0, 1 or 2.
	QoS    mqttsn.QoS
	Retain bool
	// Duplicate reports the DUP flag of a received PUBLISH; Publish
	// ignores it.
	Duplicate bool
}

// isWildcard reports whether name is a topic filter rather than a topic
// name.
func isWildcard(name string) bool { return strings.ContainsAny(name, "+#") }

// validTopicID reports whether id may name a topic: 0x0000 and 0xFFFF are
// reserved (§5.3.11).
func validTopicID(id uint16) bool { return id != 0x0000 && id != 0xFFFF }

// registry maps topic ids to names and back for the normal topic ids of
// the session (§6.5): the ones the client registered, the ones the gateway
// announced with REGISTER and the ones returned in SUBACK. Guarded by
// Client.mu.
type registry struct {
	byID   map[uint16]string
	byName map[string]uint16
	max    int
}

func newRegistry(max int) registry {
	return registry{byID: make(map[uint16]string), byName: make(map[string]uint16), max: max}
}

// add records id ↔ name, replacing any older mapping of either.
func (r *registry) add(id uint16, name string) error {
	if old, ok := r.byID[id]; ok {
		delete(r.byName, old)
	} else if len(r.byID) >= r.max {
		if _, ok := r.byName[name]; !ok {
			return fmt.Errorf("%w: %d ids", ErrTopicTableFull, r.max)
		}
	}
	if old, ok := r.byName[name]; ok {
		delete(r.byID, old)
	}
	r.byID[id] = name
	r.byName[name] = id
	return nil
}

// forget drops the mapping of id, after the gateway called it invalid.
func (r *registry) forget(id uint16) {
	if name, ok := r.byID[id]; ok {
		delete(r.byID, id)
		delete(r.byName, name)
	}
}

func (r *registry) clear() {
	clear(r.byID)
	clear(r.byName)
}
