package mqttcore

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// matchTable is shared by the subscription trie and the retained tree: a
// filter matches a topic in both or in neither.
var matchTable = []struct {
	filter, topic string
	match         bool
}{
	{"a/b", "a/b", true},
	{"a/b", "a/c", false},
	{"a/b", "a/b/c", false},
	{"a/b/c", "a/b", false},
	{"#", "a", true},
	{"#", "a/b/c", true},
	{"#", "/", true},
	{"#", "$SYS/broker/uptime", false}, // MQTT 5 §4.7.2
	{"#", "$share", false},
	{"+/#", "$SYS/x", false},
	{"+", "$SYS", false},
	{"+/broker/uptime", "$SYS/broker/uptime", false},
	{"$SYS/#", "$SYS/broker/uptime", true},
	{"$SYS/#", "$SYS", true},
	{"$SYS/+/uptime", "$SYS/broker/uptime", true},
	{"a/$x/+", "a/$x/y", true}, // '$' matters at the first level only
	{"a/+", "a/$x", true},
	{"sport/#", "sport", true}, // MQTT 5 §4.7.1.2: '#' includes the parent
	{"sport/#", "sport/", true},
	{"sport/#", "sport/tennis/player1", true},
	{"sport/#", "sports", false},
	{"sport/+", "sport", false},
	{"sport/+", "sport/", true}, // '+' matches an empty level
	{"sport/+/player1", "sport/tennis/player1", true},
	{"sport/+/player1", "sport/tennis/player2", false},
	{"+/+", "/finance", true},
	{"/+", "/finance", true},
	{"+", "/finance", false},
	{"+", "a", true},
	{"+/+/+", "a//b", true},
	{"a//b", "a//b", true},
	{"a//b", "a/b", false},
	{"/", "/", true},
	{"+", "", false}, // no empty topic is ever published; kept for the fuzzer's oracle
	{"A", "a", false},
}

func TestTrieMatch(t *testing.T) {
	for _, tt := range matchTable {
		if tt.topic == "" {
			continue
		}
		var tr trie
		s := &session{id: "s"}
		tr.subscribe("", tt.filter, subscriber{s: s, qos: 1})
		m := tr.match(tt.topic, nil)
		assert.Equal(t, tt.match, len(m.targets) == 1, "filter %q topic %q", tt.filter, tt.topic)
		m.release()
	}
}

func TestRetainedMatch(t *testing.T) {
	now := time.Now()
	for _, tt := range matchTable {
		if tt.topic == "" {
			continue
		}
		var r retainedTree
		r.set(&message{topic: tt.topic, payload: []byte("x")})
		var got []string
		r.match(tt.filter, now, func(m *message) { got = append(got, m.topic) })
		if tt.match {
			assert.Equal(t, []string{tt.topic}, got, "filter %q topic %q", tt.filter, tt.topic)
		} else {
			assert.Empty(t, got, "filter %q topic %q", tt.filter, tt.topic)
		}
	}
}

func TestTrieOverlapAndPrune(t *testing.T) {
	var tr trie
	a, b := &session{id: "a"}, &session{id: "b"}
	assert.True(t, tr.subscribe("", "x/+", subscriber{s: a, qos: 0, id: 1}))
	assert.True(t, tr.subscribe("", "x/#", subscriber{s: a, qos: 2, id: 2}))
	assert.True(t, tr.subscribe("", "x/y", subscriber{s: a, qos: 1, id: 3}))
	assert.True(t, tr.subscribe("", "x/y", subscriber{s: b, qos: 1, noLocal: true}))
	assert.False(t, tr.subscribe("", "x/y", subscriber{s: b, qos: 0, noLocal: true}), "replacing is not adding")
	assert.EqualValues(t, 4, tr.count.Load())

	m := tr.match("x/y", b)
	require.Len(t, m.targets, 1, "b's own message is not sent back (No Local)")
	assert.Equal(t, a, m.targets[0].s)
	assert.EqualValues(t, 2, m.targets[0].qos, "highest QoS")
	assert.ElementsMatch(t, []uint32{1, 2, 3}, m.targets[0].ids)
	m.release()

	assert.True(t, tr.unsubscribe("", "x/+", a))
	assert.True(t, tr.unsubscribe("", "x/#", a))
	assert.True(t, tr.unsubscribe("", "x/y", a))
	assert.True(t, tr.unsubscribe("", "x/y", b))
	assert.False(t, tr.unsubscribe("", "x/y", b))
	assert.False(t, tr.unsubscribe("", "nothing/here", b))
	assert.EqualValues(t, 0, tr.count.Load())
	assert.True(t, tr.root.empty(), "empty nodes are pruned")
}

func TestTrieShareGroups(t *testing.T) {
	var tr trie
	members := []*session{{id: "a"}, {id: "b"}, {id: "c"}}
	for _, s := range members {
		s.online.Store(true)
		tr.subscribe("g", "jobs/+", subscriber{s: s, qos: 1})
	}
	members[2].online.Store(false) // offline members are skipped while others are online
	counts := map[string]int{}
	for range 10 {
		m := tr.match("jobs/1", nil)
		require.Len(t, m.targets, 1)
		counts[m.targets[0].s.id]++
		m.release()
	}
	assert.Equal(t, map[string]int{"a": 5, "b": 5}, counts)
	for _, s := range members {
		assert.True(t, tr.unsubscribe("g", "jobs/+", s))
	}
	assert.True(t, tr.root.empty())
}

func TestSubscriberSetIndex(t *testing.T) {
	var ss subscriberSet
	sessions := make([]*session, 3*indexAt)
	for i := range sessions {
		sessions[i] = &session{id: fmt.Sprint(i)}
		assert.True(t, ss.put(subscriber{s: sessions[i]}))
	}
	require.NotNil(t, ss.index)
	for i, s := range sessions {
		if i%2 == 0 {
			assert.True(t, ss.remove(s))
		}
	}
	for i, s := range sessions {
		assert.Equal(t, i%2 == 1, ss.find(s) >= 0, "session %d", i)
		if i%2 == 1 {
			assert.Equal(t, s, ss.list[ss.find(s)].s)
		}
	}
	for i, s := range sessions {
		if i%2 == 1 {
			assert.True(t, ss.remove(s))
		}
	}
	assert.Nil(t, ss.index)
	assert.Empty(t, ss.list)
}

func TestRetainedSetReplaceDelete(t *testing.T) {
	var r retainedTree
	now := time.Now()
	assert.True(t, r.set(&message{topic: "a/b", payload: []byte("1")}))
	assert.True(t, r.set(&message{topic: "a/b", payload: []byte("2")}))
	assert.Equal(t, 1, r.len())
	var got []string
	r.match("a/#", now, func(m *message) { got = append(got, string(m.payload)) })
	assert.Equal(t, []string{"2"}, got)
	assert.True(t, r.set(&message{topic: "a/b"}), "empty payload deletes")
	assert.False(t, r.set(&message{topic: "a/b"}), "nothing left to delete")
	assert.Equal(t, 0, r.len())
	assert.Empty(t, r.root.children, "empty nodes are pruned")

	r.set(&message{topic: "x", payload: []byte("x"), expires: now.Add(time.Second)})
	r.set(&message{topic: "y", payload: []byte("y")})
	got = nil
	r.match("#", now.Add(time.Second), func(m *message) { got = append(got, m.topic) })
	assert.Equal(t, []string{"y"}, got, "expired messages are not matched")
	assert.Equal(t, []string{"x"}, r.purgeExpired(now.Add(time.Second)))
	assert.Equal(t, 1, r.len())
}
