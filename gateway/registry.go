package gateway

// maxTopicID is the largest topic id the gateway assigns; 0x0000 and 0xFFFF
// are reserved (MQTT-SN 1.2 §5.3.11, spec-interpretation #26).
const maxTopicID = 0xFFFE

// registry is one client's table of normal topic ids (MQTT-SN 1.2 §6.5),
// the per-client id space §7.3 recommends. Ids come from the client's
// REGISTER, from the gateway's own REGISTER before a delivery, and from
// SUBACK for a plain topic name. Two maps keep both directions O(1).
//
// It is owned by its session's shard goroutine, like the rest of the
// session; maps are allocated on first use so an idle client that never
// registered costs nothing here.
type registry struct {
	byID   map[uint16]regEntry
	byName map[string]uint16
	next   uint16 // where the search for a free id starts
	// refused holds names whose gateway REGISTER the client rejected: it
	// does not want them (§6.10) until it registers or subscribes again.
	refused map[string]struct{}
}

type regEntry struct {
	name string
	// known is set when the client holds the id: it registered it, or
	// accepted the gateway's REGISTER, or got it in a SUBACK. A resumed
	// session clears it, so the gateway registers again before publishing.
	known bool
}

// lookup returns the name registered under id.
func (r *registry) lookup(id uint16) (string, bool) {
	e, ok := r.byID[id]
	return e.name, ok
}

// idFor returns the id registered for name and whether the client knows it.
func (r *registry) idFor(name string) (id uint16, known, ok bool) {
	id, ok = r.byName[name]
	if !ok {
		return 0, false, false
	}
	return id, r.byID[id].known, true
}

// assign returns the id of name, registering it if needed; ok is false when
// the client already holds limit ids.
func (r *registry) assign(name string, known bool, limit int) (id uint16, ok bool) {
	if id, exists := r.byName[name]; exists {
		if known {
			r.byID[id] = regEntry{name: name, known: true}
		}
		return id, true
	}
	if len(r.byID) >= limit {
		return 0, false
	}
	if r.byID == nil {
		r.byID = make(map[uint16]regEntry)
		r.byName = make(map[string]uint16)
	}
	// The table holds at most limit ≤ maxTopicID entries, so a free id
	// exists; searching from the last assignment keeps this O(1) until ids
	// wrap around.
	for {
		r.next++
		if r.next == 0 || r.next > maxTopicID {
			r.next = 1
		}
		if _, used := r.byID[r.next]; !used {
			break
		}
	}
	r.byID[r.next] = regEntry{name: name, known: known}
	r.byName[name] = r.next
	return r.next, true
}

// markKnown records that the client accepted the gateway's REGISTER of id.
func (r *registry) markKnown(id uint16) {
	if e, ok := r.byID[id]; ok {
		e.known = true
		r.byID[id] = e
	}
}

// forget removes id, after the client rejected it.
func (r *registry) forget(id uint16) {
	if e, ok := r.byID[id]; ok {
		delete(r.byName, e.name)
		delete(r.byID, id)
	}
}

// refuse remembers that the client does not want name.
func (r *registry) refuse(name string) {
	if r.refused == nil {
		r.refused = make(map[string]struct{})
	}
	r.refused[name] = struct{}{}
}

// isRefused reports whether the client rejected name.
func (r *registry) isRefused(name string) bool {
	_, ok := r.refused[name]
	return ok
}

// accept lifts a refusal: the client asked for the name itself.
func (r *registry) accept(name string) {
	delete(r.refused, name)
}

// unconfirmAll marks every id as unknown to the client, for a resumed
// session whose client may have lost its table.
func (r *registry) unconfirmAll() {
	for id, e := range r.byID {
		if e.known {
			e.known = false
			r.byID[id] = e
		}
	}
}

// reset empties the table, for CleanSession=1.
func (r *registry) reset() { *r = registry{} }

// len returns the number of registered ids.
func (r *registry) len() int { return len(r.byID) }
