package bridge

import "strings"

// remoteFilter is the rule's filter upstream: the local filter with
// LocalPrefix replaced by RemotePrefix.
func (r *Rule) remoteFilter() string {
	return r.RemotePrefix + strings.TrimPrefix(r.LocalFilter, r.LocalPrefix)
}

func (r *Rule) out() bool { return r.Direction == DirectionOut || r.Direction == DirectionBoth }
func (r *Rule) in() bool  { return r.Direction == DirectionIn || r.Direction == DirectionBoth }

// toRemote rewrites a local topic that matched the rule's local filter.
func (r *Rule) toRemote(topic string) string {
	return r.RemotePrefix + strings.TrimPrefix(topic, r.LocalPrefix)
}

// toLocal rewrites a remote topic that matched the rule's remote filter.
func (r *Rule) toLocal(topic string) string {
	return r.LocalPrefix + strings.TrimPrefix(topic, r.RemotePrefix)
}

// match reports whether topic matches filter (MQTT 5 §4.7): '+' is one
// level, a final '#' is the parent level and everything below, and a
// wildcard in the first level does not match a topic starting with '$'.
func match(filter, topic string) bool {
	if topic != "" && topic[0] == '$' && filter != "" && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		if f == "#" {
			return true
		}
		t, trest, tmore := strings.Cut(topic, "/")
		if f != "+" && f != t {
			return false
		}
		if !fmore || !tmore {
			// One side ends here: they match if both end, or if the filter
			// goes on with just "#" ("a/#" matches "a").
			return fmore == tmore || (fmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}
