package mqttcore

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// subscriber is one subscription of one session at a trie node.
type subscriber struct {
	s       *session
	id      uint32 // subscription identifier, 0 for none
	qos     byte
	noLocal bool
	rap     bool // retain as published
}

// subscriberSet holds the subscribers of one node or share group. Most sets
// are tiny, so a slice serves; once a set grows past indexAt (a filter many
// sessions share) an index keeps subscribe and unsubscribe O(1).
type subscriberSet struct {
	list  []subscriber
	index map[*session]int
}

const indexAt = 16

func (ss *subscriberSet) find(s *session) int {
	if ss.index != nil {
		if i, ok := ss.index[s]; ok {
			return i
		}
		return -1
	}
	for i := range ss.list {
		if ss.list[i].s == s {
			return i
		}
	}
	return -1
}

// put adds or replaces the entry of sub.s and reports whether it was new.
func (ss *subscriberSet) put(sub subscriber) bool {
	if i := ss.find(sub.s); i >= 0 {
		ss.list[i] = sub
		return false
	}
	ss.list = append(ss.list, sub)
	if ss.index != nil {
		ss.index[sub.s] = len(ss.list) - 1
	} else if len(ss.list) > indexAt {
		ss.index = make(map[*session]int, len(ss.list))
		for i := range ss.list {
			ss.index[ss.list[i].s] = i
		}
	}
	return true
}

// remove deletes the entry of s, moving the last entry into its place.
func (ss *subscriberSet) remove(s *session) bool {
	i := ss.find(s)
	if i < 0 {
		return false
	}
	last := len(ss.list) - 1
	ss.list[i] = ss.list[last]
	ss.list[last] = subscriber{}
	ss.list = ss.list[:last]
	if ss.index != nil {
		delete(ss.index, s)
		if i < last {
			ss.index[ss.list[i].s] = i
		}
		if len(ss.list) == 0 {
			ss.index = nil
		}
	}
	if len(ss.list) == 0 {
		ss.list = nil
	}
	return true
}

// shareGroup is a shared subscription $share/{group}/{filter}: each message
// goes to one member, chosen round-robin among the connected members.
type shareGroup struct {
	members subscriberSet
	next    atomic.Uint32 // advanced under the trie's read lock
}

// node is one level of the subscription trie. Children, subscribers and
// share groups are allocated only when used, so that the leaves of 100,000
// single-subscription sessions stay small.
type node struct {
	parent   *node
	key      string
	children children
	subs     subscriberSet
	shared   map[string]*shareGroup
}

func (n *node) empty() bool {
	return n.children.len() == 0 && len(n.subs.list) == 0 && len(n.shared) == 0
}

// children maps a level to the child node. Most nodes have one or two
// children, for which a short slice is both smaller and faster than a map;
// past smallChildren a map takes over.
type children struct {
	few  []*node
	many map[string]*node
}

const smallChildren = 8

func (c *children) len() int { return len(c.few) + len(c.many) }

func (c *children) get(key string) *node {
	if c.many != nil {
		return c.many[key]
	}
	for _, n := range c.few {
		if n.key == key {
			return n
		}
	}
	return nil
}

func (c *children) add(n *node) {
	switch {
	case c.many != nil:
		c.many[n.key] = n
	case len(c.few) < smallChildren:
		c.few = append(c.few, n)
	default:
		c.many = make(map[string]*node, 2*smallChildren)
		for _, x := range c.few {
			c.many[x.key] = x
		}
		c.many[n.key] = n
		c.few = nil
	}
}

func (c *children) remove(key string) {
	if c.many != nil {
		delete(c.many, key)
		return
	}
	for i, n := range c.few {
		if n.key == key {
			c.few = slices.Delete(c.few, i, i+1)
			if len(c.few) == 0 {
				c.few = nil
			}
			return
		}
	}
}

// trie indexes subscriptions by filter level (mochi-mqtt's topics.go is
// the model). Its lock is taken after a session's lock, never before, and
// it never calls into a session while locked.
type trie struct {
	mu    sync.RWMutex
	root  node
	count atomic.Int64 // subscriptions, shared ones included
}

// subscribe adds or replaces the subscription of s to filter (already
// validated and split by ParseShared) and reports whether it is new.
func (t *trie) subscribe(group, filter string, sub subscriber) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := &t.root
	forLevels(filter, func(level string) {
		c := n.children.get(level)
		if c == nil {
			c = &node{parent: n, key: level}
			n.children.add(c)
		}
		n = c
	})
	var added bool
	if group == "" {
		added = n.subs.put(sub)
	} else {
		g := n.shared[group]
		if g == nil {
			if n.shared == nil {
				n.shared = make(map[string]*shareGroup, 1)
			}
			g = &shareGroup{}
			n.shared[group] = g
		}
		added = g.members.put(sub)
	}
	if added {
		t.count.Add(1)
	}
	return added
}

// removeSubscriber removes s from the node's subscribers or from the share
// group, dropping a group that is left empty.
func (n *node) removeSubscriber(group string, s *session) bool {
	if group == "" {
		return n.subs.remove(s)
	}
	g := n.shared[group]
	if g == nil || !g.members.remove(s) {
		return false
	}
	if len(g.members.list) == 0 {
		delete(n.shared, group)
	}
	return true
}

// unsubscribe removes the subscription of s to filter and reports whether
// there was one. Nodes left empty are pruned.
func (t *trie) unsubscribe(group, filter string, s *session) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := &t.root
	forLevels(filter, func(level string) {
		if n != nil {
			n = n.children.get(level)
		}
	})
	if n == nil || !n.removeSubscriber(group, s) {
		return false
	}
	t.count.Add(-1)
	for n.parent != nil && n.empty() {
		n.parent.children.remove(n.key)
		n = n.parent
	}
	return true
}

// forLevels calls fn with each level of a topic or filter, empty levels
// included, without allocating.
func forLevels(s string, fn func(level string)) {
	for {
		i := strings.IndexByte(s, '/')
		if i < 0 {
			fn(s)
			return
		}
		fn(s[:i])
		s = s[i+1:]
	}
}

// target is the one copy of a message a session receives: the highest QoS
// of its matching subscriptions and every subscription identifier.
type target struct {
	s   *session
	qos byte
	rap bool
	ids []uint32
}

// matcher collects the targets of one topic. It is reused through a pool
// because fan-out is the hot path.
type matcher struct {
	origin  *session // the publisher, for No Local
	dollar  bool     // topic starts with '$': no wildcard at the first level
	targets []target
	sources int              // node subscriber sets and share picks that contributed
	seen    map[*session]int // reused by dedupe
}

var matcherPool = sync.Pool{New: func() any { return new(matcher) }}

func (m *matcher) release() {
	clear(m.targets)
	m.targets = m.targets[:0]
	m.origin = nil
	m.sources = 0
	clear(m.seen)
	matcherPool.Put(m)
}

// match finds every session subscribed to topic, one target per session.
// The caller hands the matcher back with release.
func (t *trie) match(topic string, origin *session) *matcher {
	m := matcherPool.Get().(*matcher)
	m.origin = origin
	m.dollar = strings.HasPrefix(topic, "$")
	t.mu.RLock()
	m.walk(&t.root, topic, 0, true)
	t.mu.RUnlock()
	m.dedupe()
	return m
}

// walk matches topic[start:] against the children of n. start is -1 once
// every level has been consumed, which lets "a/#" match "a" (MQTT 5
// §4.7.1.2) and tells "a/" (one empty level left) from "a".
func (m *matcher) walk(n *node, topic string, start int, first bool) {
	wild := !first || !m.dollar // MQTT 5 §4.7.2: no wildcard matches a leading '$'
	if wild {
		if c := n.children.get("#"); c != nil {
			m.add(c)
		}
	}
	if start < 0 {
		m.add(n)
		return
	}
	if n.children.len() == 0 {
		return
	}
	level, next := topic[start:], -1
	if i := strings.IndexByte(level, '/'); i >= 0 {
		level, next = level[:i], start+i+1
	}
	if c := n.children.get(level); c != nil {
		m.walk(c, topic, next, false)
	}
	if wild {
		if c := n.children.get("+"); c != nil {
			m.walk(c, topic, next, false)
		}
	}
}

// add takes the subscribers of one matching node, and one member of each of
// its share groups.
func (m *matcher) add(n *node) {
	if len(n.subs.list) > 0 {
		m.sources++
		for i := range n.subs.list {
			if sub := &n.subs.list[i]; !sub.noLocal || sub.s != m.origin {
				m.appendSub(sub)
			}
		}
	}
	for _, g := range n.shared {
		if sub := g.pick(); sub != nil {
			m.sources++
			m.appendSub(sub)
		}
	}
}

func (m *matcher) appendSub(sub *subscriber) {
	t := target{s: sub.s, qos: sub.qos, rap: sub.rap}
	if sub.id != 0 {
		t.ids = []uint32{sub.id}
	}
	m.targets = append(m.targets, t)
}

// pick chooses the next member round-robin, preferring connected members so
// that a sleeping member does not hold back the group. Skipped members
// advance the cursor too, so the online members share evenly.
func (g *shareGroup) pick() *subscriber {
	list := g.members.list
	n := uint32(len(list))
	if n == 0 {
		return nil
	}
	start := g.next.Add(1) - 1
	for i := range n {
		if sub := &list[(start+i)%n]; sub.s.online.Load() {
			g.next.Add(i)
			return sub
		}
	}
	return &list[start%n]
}

// dedupe folds overlapping subscriptions of one session into a single
// target with the highest QoS and every subscription identifier (MQTT 5
// §3.3.4). One source cannot hold a session twice, so the common case skips
// the map.
func (m *matcher) dedupe() {
	if m.sources < 2 {
		return
	}
	if m.seen == nil {
		m.seen = make(map[*session]int, len(m.targets))
	}
	out := m.targets[:0]
	for _, t := range m.targets {
		if i, ok := m.seen[t.s]; ok {
			o := &out[i]
			o.qos = max(o.qos, t.qos)
			o.rap = o.rap || t.rap
			o.ids = append(o.ids, t.ids...)
			continue
		}
		m.seen[t.s] = len(out)
		out = append(out, t)
	}
	clear(m.targets[len(out):])
	m.targets = out
}
