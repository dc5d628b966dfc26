package gateway

// maxTopicID is the largest topic id the gateway assigns; 0x0000 and 0xFFFF
// are reserved (MQTT-SN 1.2 §5.3.11, spec-interpretation #26).
const maxTopicID = 0xFFFE

// smallRegistry is how many ids a client may hold in the registry's inline
// list before it moves to maps. Most sensors register a handful of topics;
// a list of that size is as fast as a map to search and costs a tenth of
// two maps' memory, which matters with 100,000 clients.
const smallRegistry = 8

// registry is one client's table of normal topic ids (MQTT-SN 1.2 §6.5),
// the per-client id space §7.3 recommends. Ids come from the client's
// REGISTER, from the gateway's own REGISTER before a delivery, and from
// SUBACK for a plain topic name.
//
// It is owned by its session's shard goroutine, like the rest of the
// session. Up to smallRegistry ids live in a list; beyond that two maps
// keep both directions O(1).
type registry struct {
	small  []regItem
	byID   map[uint16]regEntry
	byName map[string]uint16
	next   uint16 // where the search for a free id starts
	// refused holds names whose gateway REGISTER the client rejected: it
	// does not want them (§6.10) until it registers or subscribes again.
	refused map[string]struct{}
	// dirty marks a change the SessionStore has not seen yet.
	dirty bool
	// bytes is the length of every registered name, which the gateway
	// bounds per client and in total: a count alone let one client hold
	// 10,000 names of 60 KB.
	bytes int
}

type regEntry struct {
	name string
	// known is set when the client holds the id: it registered it, or
	// accepted the gateway's REGISTER, or got it in a SUBACK. A resumed
	// session clears it, so the gateway registers again before publishing.
	known bool
}

type regItem struct {
	id uint16
	regEntry
}

func (r *registry) big() bool { return r.byID != nil }

func (r *registry) findID(id uint16) int {
	for i := range r.small {
		if r.small[i].id == id {
			return i
		}
	}
	return -1
}

func (r *registry) findName(name string) int {
	for i := range r.small {
		if r.small[i].name == name {
			return i
		}
	}
	return -1
}

// lookup returns the name registered under id.
func (r *registry) lookup(id uint16) (string, bool) {
	if r.big() {
		e, ok := r.byID[id]
		return e.name, ok
	}
	if i := r.findID(id); i >= 0 {
		return r.small[i].name, true
	}
	return "", false
}

// idFor returns the id registered for name and whether the client knows it.
func (r *registry) idFor(name string) (id uint16, known, ok bool) {
	if r.big() {
		id, ok = r.byName[name]
		return id, ok && r.byID[id].known, ok
	}
	if i := r.findName(name); i >= 0 {
		return r.small[i].id, r.small[i].known, true
	}
	return 0, false, false
}

func (r *registry) used(id uint16) bool {
	if r.big() {
		_, ok := r.byID[id]
		return ok
	}
	return r.findID(id) >= 0
}

// assign returns the id of name, registering it if needed; ok is false when
// the client already holds limit ids.
func (r *registry) assign(name string, known bool, limit int) (id uint16, ok bool) {
	if id, wasKnown, exists := r.idFor(name); exists {
		if known && !wasKnown {
			r.markKnown(id)
		}
		return id, true
	}
	if r.len() >= limit {
		return 0, false
	}
	// The table holds at most limit ≤ maxTopicID entries, so a free id
	// exists; searching from the last assignment keeps this O(1) until ids
	// wrap around.
	for {
		r.next++
		if r.next == 0 || r.next > maxTopicID {
			r.next = 1
		}
		if !r.used(r.next) {
			break
		}
	}
	r.put(r.next, name, known)
	return r.next, true
}

// put adds name under id, which must be free.
func (r *registry) put(id uint16, name string, known bool) {
	r.dirty = true
	r.bytes += len(name)
	e := regEntry{name: name, known: known}
	if !r.big() && len(r.small) < smallRegistry {
		r.small = append(r.small, regItem{id: id, regEntry: e})
		return
	}
	if !r.big() {
		r.byID = make(map[uint16]regEntry, 2*smallRegistry)
		r.byName = make(map[string]uint16, 2*smallRegistry)
		for _, it := range r.small {
			r.byID[it.id] = it.regEntry
			r.byName[it.name] = it.id
		}
		r.small = nil
	}
	r.byID[id] = e
	r.byName[name] = id
}

// each calls fn for every registered id, in no particular order.
func (r *registry) each(fn func(id uint16, e regEntry)) {
	for _, it := range r.small {
		fn(it.id, it.regEntry)
	}
	for id, e := range r.byID {
		fn(id, e)
	}
}

// markKnown records that the client holds id.
func (r *registry) markKnown(id uint16) {
	r.dirty = true
	if r.big() {
		if e, ok := r.byID[id]; ok {
			e.known = true
			r.byID[id] = e
		}
		return
	}
	if i := r.findID(id); i >= 0 {
		r.small[i].known = true
	}
}

// forget removes id, after the client rejected it.
func (r *registry) forget(id uint16) {
	r.dirty = true
	if r.big() {
		if e, ok := r.byID[id]; ok {
			r.bytes -= len(e.name)
			delete(r.byName, e.name)
			delete(r.byID, id)
		}
		return
	}
	if i := r.findID(id); i >= 0 {
		r.bytes -= len(r.small[i].name)
		r.small = append(r.small[:i], r.small[i+1:]...)
	}
}

// refuse remembers that the client does not want name.
func (r *registry) refuse(name string) {
	if r.refused == nil {
		r.refused = make(map[string]struct{})
	}
	r.refused[name] = struct{}{}
	r.dirty = true
}

// isRefused reports whether the client rejected name.
func (r *registry) isRefused(name string) bool {
	_, ok := r.refused[name]
	return ok
}

// accept lifts a refusal: the client asked for the name itself.
func (r *registry) accept(name string) {
	if _, ok := r.refused[name]; ok {
		delete(r.refused, name)
		r.dirty = true
	}
}

// unconfirmAll marks every id as unknown to the client, for a resumed
// session whose client may have lost its table.
func (r *registry) unconfirmAll() {
	for id, e := range r.byID {
		if e.known {
			e.known = false
			r.byID[id] = e
			r.dirty = true
		}
	}
	for i := range r.small {
		if r.small[i].known {
			r.small[i].known = false
			r.dirty = true
		}
	}
}

// reset empties the table, for CleanSession=1.
func (r *registry) reset() { *r = registry{dirty: true} }

// len returns the number of registered ids.
func (r *registry) len() int { return len(r.small) + len(r.byID) }
