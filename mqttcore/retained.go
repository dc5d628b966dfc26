package mqttcore

import (
	"strings"
	"sync"
	"time"
)

// rnode is one level of the retained message tree.
type rnode struct {
	parent   *rnode
	key      string
	children map[string]*rnode
	msg      *message
}

// retainedTree holds the retained message of each topic, indexed by level so
// a subscription finds its retained messages without scanning them all.
// Its lock is a leaf: nothing else is locked while it is held.
type retainedTree struct {
	mu    sync.RWMutex
	root  rnode
	count int
}

// set stores msg as the retained message of its topic, replacing any
// other, or deletes the topic's retained message when msg has an empty
// payload (MQTT 5 §3.3.1.3). It reports whether the set changed.
func (r *retainedTree) set(msg *message) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(msg.payload) == 0 {
		return r.deleteLocked(msg.topic)
	}
	n := &r.root
	forLevels(msg.topic, func(level string) {
		c := n.children[level]
		if c == nil {
			if n.children == nil {
				n.children = make(map[string]*rnode, 1)
			}
			c = &rnode{parent: n, key: level}
			n.children[level] = c
		}
		n = c
	})
	if n.msg == nil {
		r.count++
	}
	n.msg = msg
	return true
}

func (r *retainedTree) deleteLocked(topic string) bool {
	n := &r.root
	forLevels(topic, func(level string) {
		if n != nil {
			n = n.children[level]
		}
	})
	if n == nil || n.msg == nil {
		return false
	}
	n.msg = nil
	r.count--
	for n.parent != nil && n.msg == nil && len(n.children) == 0 {
		delete(n.parent.children, n.key)
		n = n.parent
	}
	return true
}

// len returns the number of retained messages.
func (r *retainedTree) len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.count
}

// match calls fn for each unexpired retained message whose topic matches
// filter (validated, not shared).
func (r *retainedTree) match(filter string, now time.Time, fn func(*message)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	collect(&r.root, filter, true, now, fn)
}

func collect(n *rnode, filter string, first bool, now time.Time, fn func(*message)) {
	level, rest, last := filter, "", true
	if i := strings.IndexByte(filter, '/'); i >= 0 {
		level, rest, last = filter[:i], filter[i+1:], false
	}
	switch level {
	case "#":
		// "a/#" also matches "a" itself (MQTT 5 §4.7.1.2).
		if !first {
			emit(n.msg, now, fn)
		}
		for key, c := range n.children {
			if !first || !strings.HasPrefix(key, "$") {
				walkAll(c, now, fn)
			}
		}
	case "+":
		for key, c := range n.children {
			if first && strings.HasPrefix(key, "$") {
				continue
			}
			descend(c, rest, last, now, fn)
		}
	default:
		if c := n.children[level]; c != nil {
			descend(c, rest, last, now, fn)
		}
	}
}

func descend(c *rnode, rest string, last bool, now time.Time, fn func(*message)) {
	if last {
		emit(c.msg, now, fn)
		return
	}
	collect(c, rest, false, now, fn)
}

func walkAll(n *rnode, now time.Time, fn func(*message)) {
	emit(n.msg, now, fn)
	for _, c := range n.children {
		walkAll(c, now, fn)
	}
}

func emit(m *message, now time.Time, fn func(*message)) {
	if m != nil && !m.expired(now) {
		fn(m)
	}
}

// purgeExpired deletes retained messages whose lifetime has passed and
// returns the topics it deleted, so the store can follow.
func (r *retainedTree) purgeExpired(now time.Time) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var topics []string
	var walk func(n *rnode)
	walk = func(n *rnode) {
		if n.msg != nil && n.msg.expired(now) {
			topics = append(topics, n.msg.topic)
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(&r.root)
	for _, t := range topics {
		r.deleteLocked(t)
	}
	return topics
}
