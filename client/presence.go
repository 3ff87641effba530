package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"sync"
)

// PresenceMeta is one meta of a presence entry: typically one connection
// of the key (user). Its phx_ref identifies it.
type PresenceMeta struct {
	// Ref is the meta's phx_ref.
	Ref string
	// JSON is the whole meta object.
	JSON json.RawMessage
}

// Decode unmarshals the meta into v.
func (m PresenceMeta) Decode(v any) error { return json.Unmarshal(m.JSON, v) }

// PresenceEntry is the presence of one key: its metas, and any other fields
// the server's fetch callback added.
type PresenceEntry struct {
	Metas []PresenceMeta
	// Fields holds the entry's fields other than "metas".
	Fields map[string]json.RawMessage
}

// Clone returns a copy of e that shares no slice or map with it.
func (e *PresenceEntry) Clone() *PresenceEntry {
	if e == nil {
		return nil
	}
	c := &PresenceEntry{Metas: append([]PresenceMeta(nil), e.Metas...)}
	if e.Fields != nil {
		c.Fields = make(map[string]json.RawMessage, len(e.Fields))
		for k, v := range e.Fields {
			c.Fields[k] = v
		}
	}
	return c
}

// MarshalJSON encodes the entry as the server sends it:
// {"metas":[...], ...fields}.
func (e *PresenceEntry) MarshalJSON() ([]byte, error) {
	b := []byte(`{"metas":[`)
	for i, m := range e.Metas {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m.JSON...)
	}
	b = append(b, ']')
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		kb, _ := json.Marshal(k)
		b = append(b, ',')
		b = append(b, kb...)
		b = append(b, ':')
		b = append(b, e.Fields[k]...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON decodes {"metas":[...], ...}.
func (e *PresenceEntry) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if raw == nil {
		return errors.New("client: presence entry is not an object")
	}
	var metas []json.RawMessage
	if m, ok := raw["metas"]; ok {
		if err := json.Unmarshal(m, &metas); err != nil {
			return err
		}
		delete(raw, "metas")
	}
	*e = PresenceEntry{Metas: make([]PresenceMeta, 0, len(metas))}
	for _, m := range metas {
		var ref struct {
			PhxRef json.RawMessage `json:"phx_ref"`
		}
		if err := json.Unmarshal(m, &ref); err != nil {
			return err
		}
		e.Metas = append(e.Metas, PresenceMeta{Ref: refString(ref.PhxRef), JSON: m})
	}
	if len(raw) > 0 {
		e.Fields = raw
	}
	return nil
}

// refString turns a raw phx_ref into the string it compares as: a string's
// value, any other JSON text as is, and "" when absent.
func refString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// PresenceState is a presence list, key → entry, iterated in the order of a
// JavaScript object's properties, as phoenix.js's list is: keys that are
// array indexes ("0", "42") first in numeric order, then the others in
// insertion order. The zero value is an empty state.
type PresenceState struct {
	keys []slot
	idx  map[string]int
	m    map[string]*PresenceEntry
	dead int
}

type slot struct {
	key  string
	live bool
}

// ParsePresenceState decodes a presence_state payload, or the joins or
// leaves of a presence_diff, keeping the order of its keys.
func ParsePresenceState(data []byte) (*PresenceState, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, errors.New("client: presence state is not an object")
	}
	s := &PresenceState{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string)
		var e PresenceEntry
		if err := dec.Decode(&e); err != nil {
			return nil, err
		}
		s.Set(key, &e)
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return s, nil
}

// Len returns the number of keys.
func (s *PresenceState) Len() int { return len(s.m) }

// Get returns the entry of key.
func (s *PresenceState) Get(key string) (*PresenceEntry, bool) {
	e, ok := s.m[key]
	return e, ok
}

// Set stores the entry of key; a new key goes last among the non-index
// keys, an existing one keeps its place.
func (s *PresenceState) Set(key string, e *PresenceEntry) {
	if s.m == nil {
		s.m = make(map[string]*PresenceEntry)
		s.idx = make(map[string]int)
	}
	if _, ok := s.m[key]; !ok {
		s.idx[key] = len(s.keys)
		s.keys = append(s.keys, slot{key, true})
	}
	s.m[key] = e
}

// Delete removes key.
func (s *PresenceState) Delete(key string) {
	i, ok := s.idx[key]
	if !ok {
		return
	}
	delete(s.m, key)
	delete(s.idx, key)
	s.keys[i] = slot{}
	s.dead++
	if s.dead > 32 && s.dead > len(s.keys)/2 {
		live := s.keys[:0]
		for _, k := range s.keys {
			if k.live {
				s.idx[k.key] = len(live)
				live = append(live, k)
			}
		}
		clear(s.keys[len(live):])
		s.keys = live
		s.dead = 0
	}
}

// Keys returns the keys in JavaScript property order.
func (s *PresenceState) Keys() []string {
	var index, other []string
	for _, k := range s.keys {
		if !k.live {
			continue
		}
		if isArrayIndex(k.key) {
			index = append(index, k.key)
		} else {
			other = append(other, k.key)
		}
	}
	if len(index) > 1 {
		sort.Slice(index, func(i, j int) bool {
			a, b := index[i], index[j]
			if len(a) != len(b) {
				return len(a) < len(b)
			}
			return a < b
		})
	}
	return append(index, other...)
}

// isArrayIndex reports whether k is a canonical integer below 2^32-1, the
// keys JavaScript orders first.
func isArrayIndex(k string) bool {
	if k == "" || len(k) > 10 || (len(k) > 1 && k[0] == '0') {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < '0' || k[i] > '9' {
			return false
		}
	}
	n, err := strconv.ParseUint(k, 10, 64)
	return err == nil && n < 1<<32-1
}

// Clone returns a deep copy of s.
func (s *PresenceState) Clone() *PresenceState {
	c := &PresenceState{}
	if s == nil {
		return c
	}
	for _, k := range s.keys {
		if k.live {
			c.Set(k.key, s.m[k.key].Clone())
		}
	}
	return c
}

// MarshalJSON encodes the state as an object, keys in property order.
func (s *PresenceState) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, k := range s.Keys() {
		if i > 0 {
			b = append(b, ',')
		}
		kb, _ := json.Marshal(k)
		b = append(b, kb...)
		b = append(b, ':')
		eb, err := s.m[k].MarshalJSON()
		if err != nil {
			return nil, err
		}
		b = append(b, eb...)
	}
	return append(b, '}'), nil
}

// PresenceDiff is a presence_diff payload.
type PresenceDiff struct {
	Joins  *PresenceState
	Leaves *PresenceState
}

// ParsePresenceDiff decodes a presence_diff payload,
// {"joins": {...}, "leaves": {...}}.
func ParsePresenceDiff(data []byte) (PresenceDiff, error) {
	var raw struct {
		Joins  json.RawMessage `json:"joins"`
		Leaves json.RawMessage `json:"leaves"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return PresenceDiff{}, err
	}
	d := PresenceDiff{Joins: &PresenceState{}, Leaves: &PresenceState{}}
	var err error
	if len(raw.Joins) > 0 && string(raw.Joins) != "null" {
		if d.Joins, err = ParsePresenceState(raw.Joins); err != nil {
			return PresenceDiff{}, err
		}
	}
	if len(raw.Leaves) > 0 && string(raw.Leaves) != "null" {
		if d.Leaves, err = ParsePresenceState(raw.Leaves); err != nil {
			return PresenceDiff{}, err
		}
	}
	return d, nil
}

// JoinFunc is called for each key that joined: current is the key's entry
// before the join (nil if the key is new), joined the entry from the diff.
type JoinFunc func(key string, current, joined *PresenceEntry)

// LeaveFunc is called for each key that left: current is the key's entry
// after removing the metas that left (no metas when the key is gone), left
// the entry from the diff.
type LeaveFunc func(key string, current, left *PresenceEntry)

// SyncState merges a full presence_state into state, exactly as phoenix.js's
// Presence.syncState: keys missing from newState leave with all their metas;
// keys present in both join the metas whose phx_ref is new and leave the
// metas whose phx_ref vanished; new keys join. It returns the new state and
// does not modify its arguments. onJoin and onLeave may be nil.
func SyncState(state, newState *PresenceState, onJoin JoinFunc, onLeave LeaveFunc) *PresenceState {
	state = state.Clone()
	newState = newState.Clone()
	joins, leaves := &PresenceState{}, &PresenceState{}
	for _, key := range state.Keys() {
		if _, ok := newState.Get(key); !ok {
			p, _ := state.Get(key)
			leaves.Set(key, p)
		}
	}
	for _, key := range newState.Keys() {
		newP, _ := newState.Get(key)
		cur, ok := state.Get(key)
		if !ok {
			joins.Set(key, newP)
			continue
		}
		newRefs, curRefs := metaRefs(newP), metaRefs(cur)
		joined := filterMetas(newP.Metas, curRefs)
		left := filterMetas(cur.Metas, newRefs)
		if len(joined) > 0 {
			newP.Metas = joined
			joins.Set(key, newP)
		}
		if len(left) > 0 {
			l := cur.Clone()
			l.Metas = left
			leaves.Set(key, l)
		}
	}
	return SyncDiff(state, PresenceDiff{Joins: joins, Leaves: leaves}, onJoin, onLeave)
}

// SyncDiff applies a presence_diff to state, exactly as phoenix.js's
// Presence.syncDiff: joins first, each key's entry becoming the joined one
// with the metas it had before (and that did not rejoin) in front; then
// leaves, removing the metas whose phx_ref left and deleting keys left with
// none. It modifies state in place and returns it (a nil state starts
// empty). onJoin and onLeave may be nil.
func SyncDiff(state *PresenceState, diff PresenceDiff, onJoin JoinFunc, onLeave LeaveFunc) *PresenceState {
	if state == nil {
		state = &PresenceState{}
	}
	joins, leaves := diff.Joins.Clone(), diff.Leaves.Clone()
	for _, key := range joins.Keys() {
		newP, _ := joins.Get(key)
		cur, had := state.Get(key)
		next := newP.Clone()
		if had {
			joinedRefs := metaRefs(next)
			keep := filterMetas(cur.Metas, joinedRefs)
			next.Metas = append(keep, next.Metas...)
		}
		state.Set(key, next)
		if onJoin != nil {
			onJoin(key, cur, newP)
		}
	}
	for _, key := range leaves.Keys() {
		left, _ := leaves.Get(key)
		cur, ok := state.Get(key)
		if !ok {
			continue
		}
		cur.Metas = filterMetas(cur.Metas, metaRefs(left))
		if onLeave != nil {
			onLeave(key, cur.Clone(), left)
		}
		if len(cur.Metas) == 0 {
			state.Delete(key)
		}
	}
	return state
}

func metaRefs(e *PresenceEntry) map[string]bool {
	refs := make(map[string]bool, len(e.Metas))
	for _, m := range e.Metas {
		refs[m.Ref] = true
	}
	return refs
}

// filterMetas returns the metas whose ref is not in drop, in a new slice.
func filterMetas(metas []PresenceMeta, drop map[string]bool) []PresenceMeta {
	out := make([]PresenceMeta, 0, len(metas))
	for _, m := range metas {
		if !drop[m.Ref] {
			out = append(out, m)
		}
	}
	return out
}

// PresenceOptions names the events a [Presence] listens to; the zero value
// is phoenix.js's "presence_state" and "presence_diff".
type PresenceOptions struct {
	StateEvent string
	DiffEvent  string
}

// Presence keeps a channel's presence list in sync, as phoenix.js's
// Presence does: a presence_state replaces the list (as joins and leaves),
// diffs are applied as they come, and diffs that arrive before the first
// state, or after a rejoin before the new join's state, wait for it.
//
// Its callbacks run on the socket's callback goroutine, in order with the
// channel's handlers. List and Get may be called from any goroutine.
type Presence struct {
	ch   *Channel
	refs [2]Ref

	mu      sync.Mutex
	state   *PresenceState
	pending []PresenceDiff
	joinRef string
	onJoin  JoinFunc
	onLeave LeaveFunc
	onSync  func()
}

// NewPresence tracks the presence of ch. opts may be nil.
func NewPresence(ch *Channel, opts *PresenceOptions) *Presence {
	stateEv, diffEv := "presence_state", "presence_diff"
	if opts != nil && opts.StateEvent != "" {
		stateEv = opts.StateEvent
	}
	if opts != nil && opts.DiffEvent != "" {
		diffEv = opts.DiffEvent
	}
	p := &Presence{ch: ch, state: &PresenceState{}}
	p.refs[0] = ch.On(stateEv, p.handleState)
	p.refs[1] = ch.On(diffEv, p.handleDiff)
	return p
}

// OnJoin sets the callback for joins.
func (p *Presence) OnJoin(f JoinFunc) { p.mu.Lock(); p.onJoin = f; p.mu.Unlock() }

// OnLeave sets the callback for leaves.
func (p *Presence) OnLeave(f LeaveFunc) { p.mu.Lock(); p.onLeave = f; p.mu.Unlock() }

// OnSync sets the callback run after each state or diff is applied.
func (p *Presence) OnSync(f func()) { p.mu.Lock(); p.onSync = f; p.mu.Unlock() }

// Stop removes the Presence's handlers from its channel.
func (p *Presence) Stop() {
	p.ch.Off(p.refs[0])
	p.ch.Off(p.refs[1])
}

// List returns copies of the entries in property order (phoenix.js's list
// without a chooser).
func (p *Presence) List() []*PresenceEntry {
	return ListBy(p, func(_ string, e *PresenceEntry) *PresenceEntry { return e })
}

// Keys returns the keys in property order.
func (p *Presence) Keys() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state.Keys()
}

// Get returns a copy of the entry of key.
func (p *Presence) Get(key string) (*PresenceEntry, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.state.Get(key)
	return e.Clone(), ok
}

// State returns a copy of the presence list.
func (p *Presence) State() *PresenceState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state.Clone()
}

// ListBy maps the entries of p, in property order, through chooser
// (phoenix.js's list with a chooser). Entries are copies.
func ListBy[T any](p *Presence, chooser func(key string, e *PresenceEntry) T) []T {
	p.mu.Lock()
	keys := p.state.Keys()
	entries := make([]*PresenceEntry, len(keys))
	for i, k := range keys {
		e, _ := p.state.Get(k)
		entries[i] = e.Clone()
	}
	p.mu.Unlock()
	out := make([]T, len(keys))
	for i, k := range keys {
		out[i] = chooser(k, entries[i])
	}
	return out
}

// The handlers below run on the socket's callback goroutine, the only one
// that changes the state. They hold p.mu while they do, except around user
// callbacks, which may call List.

func (p *Presence) handleState(m Message) {
	if m.Binary {
		return
	}
	newState, err := ParsePresenceState(m.Payload)
	if err != nil {
		p.ch.s.log.Warn("dropping malformed presence state", "topic", m.Topic, "err", err)
		return
	}
	p.mu.Lock()
	onJoin, onLeave, onSync := p.callbacks()
	p.joinRef = m.JoinRef
	state := SyncState(p.state, newState, onJoin, onLeave)
	for _, d := range p.pending {
		state = SyncDiff(state, d, onJoin, onLeave)
	}
	p.pending = nil
	p.state = state
	p.mu.Unlock()
	if onSync != nil {
		onSync()
	}
}

func (p *Presence) handleDiff(m Message) {
	if m.Binary {
		return
	}
	diff, err := ParsePresenceDiff(m.Payload)
	if err != nil {
		p.ch.s.log.Warn("dropping malformed presence diff", "topic", m.Topic, "err", err)
		return
	}
	p.mu.Lock()
	// Waiting for a state: none came yet, or the channel rejoined since.
	if p.joinRef == "" || p.joinRef != m.JoinRef {
		p.pending = append(p.pending, diff)
		p.mu.Unlock()
		return
	}
	onJoin, onLeave, onSync := p.callbacks()
	p.state = SyncDiff(p.state, diff, onJoin, onLeave)
	p.mu.Unlock()
	if onSync != nil {
		onSync()
	}
}

// callbacks returns the user callbacks wrapped to run without p.mu.
func (p *Presence) callbacks() (JoinFunc, LeaveFunc, func()) {
	var onJoin JoinFunc
	var onLeave LeaveFunc
	if f := p.onJoin; f != nil {
		onJoin = func(key string, cur, joined *PresenceEntry) {
			p.mu.Unlock()
			defer p.mu.Lock()
			f(key, cur, joined)
		}
	}
	if f := p.onLeave; f != nil {
		onLeave = func(key string, cur, left *PresenceEntry) {
			p.mu.Unlock()
			defer p.mu.Lock()
			f(key, cur, left)
		}
	}
	return onJoin, onLeave, p.onSync
}
