package presence

import (
	"encoding/json"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"time"

	"github.com/plumehq/plume/pubsub"
	"github.com/plumehq/plume/wire"
)

// rawDiff is a diff before it is grouped by key: entries that joined and
// entries that left, in order.
type rawDiff struct {
	joins  []*entry
	leaves []*entry
}

func diffOf(joins, leaves []*entry) *rawDiff { return &rawDiff{joins: joins, leaves: leaves} }

// coalescer merges diffs during a window. A meta is identified by its
// phx_ref: a leave of a meta whose join is still pending cancels both, and
// so does a join of a meta whose leave is pending (a replica that went down
// and came back up within the window).
type coalescer struct {
	joins      map[string]*entry
	leaves     map[string]*entry
	joinOrder  []*entry
	leaveOrder []*entry
}

func (c *coalescer) any() bool { return len(c.joins) > 0 || len(c.leaves) > 0 }

func (c *coalescer) merge(d *rawDiff) {
	if c.joins == nil {
		c.joins = make(map[string]*entry)
		c.leaves = make(map[string]*entry)
	}
	// Within one diff leaves apply to metas joined before it, so merge the
	// leaves first: an update's old meta may cancel an earlier join.
	for _, e := range d.leaves {
		if c.joins[e.ref] != nil {
			delete(c.joins, e.ref)
			continue
		}
		c.leaves[e.ref] = e
		c.leaveOrder = append(c.leaveOrder, e)
	}
	for _, e := range d.joins {
		if c.leaves[e.ref] != nil {
			delete(c.leaves, e.ref)
			continue
		}
		c.joins[e.ref] = e
		c.joinOrder = append(c.joinOrder, e)
	}
}

// take returns the merged diff, or nil if everything cancelled out, and
// resets the coalescer.
func (c *coalescer) take() *rawDiff {
	if !c.any() {
		*c = coalescer{}
		return nil
	}
	d := &rawDiff{}
	for _, e := range c.joinOrder {
		if c.joins[e.ref] == e {
			d.joins = append(d.joins, e)
			delete(c.joins, e.ref)
		}
	}
	for _, e := range c.leaveOrder {
		if c.leaves[e.ref] == e {
			d.leaves = append(d.leaves, e)
			delete(c.leaves, e.ref)
		}
	}
	*c = coalescer{}
	return d
}

// emitLocked queues a diff for t; t.mu is held.
func (tr *Tracker) emitLocked(t *topic, d *rawDiff) {
	if w := tr.opts.CoalesceWindow; w > 0 {
		t.pending.merge(d)
		if t.timer == nil {
			tr.bg.Add(1)
			t.timer = time.AfterFunc(w, func() { tr.flushTimer(t) })
		}
		return
	}
	t.queue = append(t.queue, d)
	tr.startLocked(t)
}

func (tr *Tracker) startLocked(t *topic) {
	if !t.running && len(t.queue) > 0 {
		t.running = true
		tr.bg.Add(1)
		go tr.drain(t)
	}
}

// flushTimer ends a coalescing window. Its goroutine is counted in bg and
// goes on to publish the diff itself when nobody else is.
func (tr *Tracker) flushTimer(t *topic) {
	t.mu.Lock()
	t.timer = nil
	if d := t.pending.take(); d != nil {
		t.queue = append(t.queue, d)
	}
	if t.running || len(t.queue) == 0 {
		idle := !t.running
		t.mu.Unlock()
		if idle {
			tr.dropIfIdle(t)
		}
		tr.bg.Done()
		return
	}
	t.running = true
	t.mu.Unlock()
	tr.drain(t)
}

// flushNow ends a coalescing window early (Close).
func (tr *Tracker) flushNow(t *topic) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timer == nil || !t.timer.Stop() {
		// No window, or its timer is already running flushTimer.
		return
	}
	t.timer = nil
	tr.bg.Done()
	if d := t.pending.take(); d != nil {
		t.queue = append(t.queue, d)
	}
	tr.startLocked(t)
}

// drain publishes t's queued diffs in order until there are none; it runs
// on its own goroutine, counted in bg.
func (tr *Tracker) drain(t *topic) {
	defer tr.bg.Done()
	for {
		t.mu.Lock()
		q := t.queue
		t.queue = nil
		if len(q) == 0 {
			t.running = false
			t.mu.Unlock()
			tr.dropIfIdle(t)
			return
		}
		t.mu.Unlock()
		for i, d := range q {
			tr.publish(t, d)
			q[i] = nil
		}
	}
}

// publish sends one diff: Fetch, broadcast, HandleMetas.
func (tr *Tracker) publish(t *topic, d *rawDiff) {
	hm := tr.opts.HandleMetas
	if hm == nil && tr.ps.Subscribers(t.name) == 0 {
		// Nobody to tell. A subscriber that arrives later lists the
		// presences after subscribing, which already include this change.
		return
	}
	var diff Diff
	var payload []byte
	var err error
	if tr.opts.Fetch == nil && hm == nil {
		payload, err = encodeRaw(d)
	} else {
		diff = Diff{Joins: group(d.joins), Leaves: group(d.leaves)}
		if tr.opts.Fetch != nil {
			diff.Joins = tr.safeFetch(t.name, diff.Joins)
			diff.Leaves = tr.safeFetch(t.name, diff.Leaves)
		}
		payload, err = diff.MarshalJSON()
	}
	if err != nil {
		tr.log.Error("presence: cannot encode diff", "topic", t.name, "err", err)
	} else {
		tr.ps.LocalBroadcast(&pubsub.Message{Topic: t.name, Event: DiffEvent, Payload: payload})
	}
	if hm != nil {
		if t.view == nil {
			t.view = make(map[string]Presence)
		}
		applyDiff(t.view, diff)
		tr.guard("HandleMetas", t.name, func() { hm(t.name, diff, t.view) })
	}
}

// group turns entries into presences by key, in order.
func group(es []*entry) map[string]Presence {
	out := make(map[string]Presence, len(es))
	for _, e := range es {
		p := out[e.key]
		p.Metas = append(p.Metas, e.meta)
		out[e.key] = p
	}
	return out
}

// applyDiff merges a diff into a view as Phoenix.Presence does for
// handle_metas: joined metas not yet present are appended, left metas are
// removed by phx_ref, and a key with no metas left is deleted.
func applyDiff(view map[string]Presence, d Diff) {
	for k, p := range d.Joins {
		cur := view[k].Metas
		for _, m := range p.Metas {
			if !slices.ContainsFunc(cur, func(c map[string]any) bool { return c["phx_ref"] == m["phx_ref"] }) {
				cur = append(cur, m)
			}
		}
		view[k] = Presence{Metas: cur}
	}
	for k, p := range d.Leaves {
		cur, ok := view[k]
		if !ok {
			continue
		}
		metas := slices.DeleteFunc(slices.Clone(cur.Metas), func(c map[string]any) bool {
			return slices.ContainsFunc(p.Metas, func(m map[string]any) bool { return c["phx_ref"] == m["phx_ref"] })
		})
		if len(metas) == 0 {
			delete(view, k)
		} else {
			view[k] = Presence{Metas: metas}
		}
	}
}

// fetch runs Options.Fetch on the caller's goroutine.
func (tr *Tracker) fetch(topic string, ps map[string]Presence) map[string]Presence {
	if tr.opts.Fetch == nil || len(ps) == 0 {
		return ps
	}
	return keepMetas(ps, tr.opts.Fetch(topic, ps))
}

// safeFetch is fetch on a diff goroutine: a panic is logged and the
// presences go out unfetched rather than the process crashing.
func (tr *Tracker) safeFetch(topic string, ps map[string]Presence) (out map[string]Presence) {
	if len(ps) == 0 {
		return ps
	}
	in := make(map[string]Presence, len(ps))
	for k, p := range ps {
		in[k] = p
	}
	out = ps
	tr.guard("Fetch", topic, func() { out = keepMetas(in, tr.opts.Fetch(topic, ps)) })
	return out
}

// keepMetas restores the metas of presences that Fetch returned without.
func keepMetas(in, out map[string]Presence) map[string]Presence {
	if out == nil {
		return in
	}
	for k, p := range out {
		if p.Metas == nil {
			if q, ok := in[k]; ok {
				p.Metas = q.Metas
				out[k] = p
			}
		}
	}
	return out
}

func (tr *Tracker) guard(hook, topic string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			tr.log.Error("presence: "+hook+" panicked", "topic", topic, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	f()
}

// MarshalJSON encodes the presence as {"metas": [...], ...Extra}.
func (p Presence) MarshalJSON() ([]byte, error) {
	return appendPresence(nil, p)
}

func appendPresence(b []byte, p Presence) ([]byte, error) {
	b = append(b, `{"metas":[`...)
	var err error
	for i, m := range p.Metas {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendMeta(b, m); err != nil {
			return nil, err
		}
	}
	b = append(b, ']')
	if len(p.Extra) > 0 {
		for _, k := range slices.Sorted(maps.Keys(p.Extra)) {
			if k == "metas" {
				continue
			}
			vb, err := json.Marshal(p.Extra[k])
			if err != nil {
				return nil, err
			}
			b = append(b, ',')
			b = wire.AppendString(b, k)
			b = append(b, ':')
			b = append(b, vb...)
		}
	}
	return append(b, '}'), nil
}

// UnmarshalJSON decodes {"metas": [...], ...}; fields other than metas go
// to Extra.
func (p *Presence) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*p = Presence{}
	for k, v := range m {
		if k == "metas" {
			if err := json.Unmarshal(v, &p.Metas); err != nil {
				return err
			}
			continue
		}
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return err
		}
		if p.Extra == nil {
			p.Extra = make(map[string]any)
		}
		p.Extra[k] = x
	}
	return nil
}

// MarshalJSON encodes the diff with both "joins" and "leaves", as {} when
// empty: phoenix.js requires both.
func (d Diff) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 128), `{"joins":`...)
	b, err := appendGroup(b, d.Joins)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"leaves":`...)
	if b, err = appendGroup(b, d.Leaves); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

func appendGroup(b []byte, g map[string]Presence) ([]byte, error) {
	b = append(b, '{')
	for i, k := range slices.Sorted(maps.Keys(g)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = wire.AppendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendPresence(b, g[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// encodeRaw encodes a diff straight from its entries, each meta encoded
// once for its join and its leave: the path without hooks.
func encodeRaw(d *rawDiff) ([]byte, error) {
	b := append(make([]byte, 0, 128), `{"joins":`...)
	b, err := appendEntries(b, d.joins)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"leaves":`...)
	if b, err = appendEntries(b, d.leaves); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

func appendEntries(b []byte, es []*entry) ([]byte, error) {
	if len(es) == 1 {
		return appendKey(append(b, '{'), es[0].key, es, '}')
	}
	byKey := make(map[string][]*entry, len(es))
	for _, e := range es {
		byKey[e.key] = append(byKey[e.key], e)
	}
	b = append(b, '{')
	var err error
	for i, k := range slices.Sorted(maps.Keys(byKey)) {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendKey(b, k, byKey[k], 0); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendKey appends "key":{"metas":[...]} and then end, if not 0.
func appendKey(b []byte, key string, es []*entry, end byte) ([]byte, error) {
	if len(es) == 0 {
		return b, nil
	}
	b = wire.AppendString(b, key)
	b = append(b, `:{"metas":[`...)
	for i, e := range es {
		if i > 0 {
			b = append(b, ',')
		}
		mb, err := e.metaJSON()
		if err != nil {
			return nil, err
		}
		b = append(b, mb...)
	}
	b = append(b, "]}"...)
	if end != 0 {
		b = append(b, end)
	}
	return b, nil
}
