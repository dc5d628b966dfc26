package mqttcore

import (
	"strings"
	"testing"
	"time"
)

// referenceMatch is the MQTT 5 §4.7 matching rule written as plainly as
// possible, as an oracle for the trie and the retained tree.
func referenceMatch(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	f, tp := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, level := range f {
		if level == "#" {
			return true
		}
		if i >= len(tp) {
			return false
		}
		if level != "+" && level != tp[i] {
			return false
		}
	}
	return len(f) == len(tp)
}

func TestReferenceMatch(t *testing.T) {
	for _, tt := range matchTable {
		if tt.topic != "" && referenceMatch(tt.filter, tt.topic) != tt.match {
			t.Errorf("oracle disagrees with the table: filter %q topic %q", tt.filter, tt.topic)
		}
	}
}

// FuzzMatch checks the subscription trie and the retained tree against the
// oracle for any valid filter and topic, and that no input panics.
func FuzzMatch(f *testing.F) {
	for _, tt := range matchTable {
		f.Add(tt.filter, tt.topic)
	}
	f.Fuzz(func(t *testing.T, filter, topic string) {
		group, inner, ferr := ParseShared(filter)
		terr := ValidateTopic(topic)
		if ferr != nil || terr != nil {
			return
		}
		want := referenceMatch(inner, topic)

		var tr trie
		s := &session{id: "s"}
		tr.subscribe(group, inner, subscriber{s: s})
		m := tr.match(topic, nil)
		got := len(m.targets) == 1
		m.release()
		if got != want {
			t.Fatalf("trie: filter %q topic %q matched %v, want %v", filter, topic, got, want)
		}
		if !tr.unsubscribe(group, inner, s) || !tr.root.empty() {
			t.Fatalf("trie: filter %q not removed cleanly", filter)
		}

		var r retainedTree
		r.set(&message{topic: topic, payload: []byte{1}})
		n := 0
		r.match(inner, time.Time{}, func(*message) { n++ })
		if (n == 1) != want || n > 1 {
			t.Fatalf("retained: filter %q topic %q matched %d times, want %v", inner, topic, n, want)
		}
		r.set(&message{topic: topic})
		if r.len() != 0 || len(r.root.children) != 0 {
			t.Fatalf("retained: topic %q not removed cleanly", topic)
		}
	})
}

// FuzzValidate checks that validation never panics and agrees with itself:
// a valid topic name outside the $share/ namespace is a valid filter that
// matches itself.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{"a/b", "#", "+/+", "a/#", "$share/g/a/+", "$share//a", "a\x00", "\xff", "a/b#", "$SYS/x", "//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		terr := ValidateTopic(s)
		group, inner, ferr := ParseShared(s)
		if ferr == nil && group != "" && (inner == "" || strings.Contains(group, "/")) {
			t.Fatalf("%q: bad split %q %q", s, group, inner)
		}
		if terr == nil && !strings.HasPrefix(s, sharePrefix) {
			if ferr != nil {
				t.Fatalf("%q: valid topic but invalid filter: %v", s, ferr)
			}
			if !referenceMatch(s, s) {
				t.Fatalf("%q: a topic name used as a filter must match itself", s)
			}
		}
	})
}
