package presence

import (
	"maps"
	"slices"
)

// This file is a port of Phoenix.Tracker.State, Clock and DeltaGeneration
// (phoenix_pubsub 2.2): an observed-remove set of presences with dotted
// version vectors, replicated by deltas. Names follow the Elixir code so
// that the two can be read side by side.

// clock is a version vector (Phoenix's context): replica → highest clock
// seen without gaps.
type clock map[replica]uint64

// clouds are the dots seen beyond a replica's contiguous range.
type clouds map[replica]map[uint64]struct{}

type replicaStatus uint8

const (
	statusUp replicaStatus = iota
	statusDown
)

// state is Tracker.State in :normal mode (a shard's whole set) or :delta
// mode (changes since a point, as sent in heartbeats).
type state struct {
	isDelta bool
	replica replica
	context clock
	clouds  clouds
	values  map[dot]*entry
	// Normal mode only.
	replicas map[replica]replicaStatus
	delta    *state
	// recording is whether local changes go into the delta. A tracker
	// turns it off while a shard knows no other replica: nobody would
	// receive the delta, and a replica that appears later catches up by
	// transfer, as it does after missing any delta.
	recording bool
	// Delta mode only: the range of local clocks the delta covers.
	start, end clock
}

// newLocalState is a state for a tracker that does not replicate: it only
// hands out tags, keeping no values, clouds or delta.
func newLocalState(r replica) *state {
	return &state{replica: r, context: clock{r: 0}, replicas: map[replica]replicaStatus{r: statusUp}}
}

func newState(r replica) *state {
	s := &state{
		replica:   r,
		context:   clock{r: 0},
		clouds:    clouds{},
		values:    map[dot]*entry{},
		replicas:  map[replica]replicaStatus{r: statusUp},
		recording: true,
	}
	s.resetDelta()
	return s
}

// setRecording turns delta recording on or off. Either way the delta
// starts afresh, so that its range never claims changes it does not hold.
func (s *state) setRecording(on bool) {
	if s.recording == on {
		return
	}
	s.recording = on
	s.resetDelta()
	s.compact()
}

// clocks returns the context without down replicas, as heartbeats carry
// it. Down replicas are left out so that a replica that came up after
// one went down does not keep asking for the whole state.
func (s *state) clocks() clock {
	c := make(clock, len(s.context))
	for r, n := range s.context {
		if s.replicas[r] != statusDown {
			c[r] = n
		}
	}
	return c
}

func (s *state) clock() uint64 { return s.context[s.replica] }

// join adds a local entry, tagging it with the next clock.
func (s *state) join(e *entry) {
	s.bumpClock()
	e.tag = dot{s.replica, s.clock()}
	if s.delta == nil {
		return
	}
	s.values[e.tag] = e
	if s.recording {
		s.delta.values[e.tag] = e
	}
}

// leave removes a local entry.
func (s *state) leave(e *entry) {
	if s.delta == nil {
		s.bumpClock()
		return
	}
	delete(s.values, e.tag)
	s.clouds.delete(e.tag)
	if s.recording {
		s.delta.removeDeltaTag(e.tag)
	}
	s.bumpClock()
}

// leaveJoin replaces a local entry (an update): a remove of the old dot
// and an add of a new one.
func (s *state) leaveJoin(old, e *entry) {
	if s.delta == nil {
		s.bumpClock()
		s.join(e)
		return
	}
	delete(s.values, old.tag)
	s.clouds.delete(old.tag)
	if s.recording {
		s.delta.removeDeltaTag(old.tag)
	}
	s.bumpClock()
	s.join(e)
}

func (s *state) bumpClock() {
	n := s.clock() + 1
	s.context[s.replica] = n
	if s.delta == nil {
		return
	}
	s.delta.end[s.replica] = n
	if s.recording {
		t := dot{s.replica, n}
		s.clouds.put(t)
		s.delta.clouds.put(t)
	}
}

func (s *state) putContext(ctx clock) {
	s.context = ctx
	if s.delta != nil {
		s.delta.end[s.replica] = ctx[s.replica]
	}
}

// hasDelta reports whether the delta holds any dot.
func (s *state) hasDelta() bool {
	for _, c := range s.delta.clouds {
		if len(c) > 0 {
			return true
		}
	}
	return false
}

func (s *state) resetDelta() {
	r := clock{s.replica: s.context[s.replica]}
	s.delta = &state{isDelta: true, replica: s.replica, context: clock{}, clouds: clouds{},
		values: map[dot]*entry{}, start: r, end: maps.Clone(r)}
}

// removeDeltaTag records a removal in a delta: the dot without a value.
func (d *state) removeDeltaTag(t dot) {
	d.clouds.put(t)
	delete(d.values, t)
}

func (c clouds) put(t dot) {
	m := c[t.replica]
	if m == nil {
		m = map[uint64]struct{}{}
		c[t.replica] = m
	}
	m[t.clock] = struct{}{}
}

func (c clouds) delete(t dot) {
	if m := c[t.replica]; m != nil {
		delete(m, t.clock)
	}
}

func (c clouds) has(t dot) bool {
	_, ok := c[t.replica][t.clock]
	return ok
}

func (c clouds) clone() clouds {
	out := make(clouds, len(c))
	for r, m := range c {
		out[r] = maps.Clone(m)
	}
	return out
}

// in reports whether a dot is covered by a context and its clouds.
func in(ctx clock, cl clouds, t dot) bool {
	if n, ok := ctx[t.replica]; ok && n >= t.clock {
		return true
	}
	return cl.has(t)
}

// extract returns what a remote replica, knowing the replicas in
// remoteContext, needs of this state or delta: values of replicas it knows,
// except its own.
func (s *state) extract(remoteNode string, remoteContext clock) *state {
	known := func(r replica) bool { _, ok := remoteContext[r]; return ok }
	out := &state{isDelta: s.isDelta, replica: s.replica, context: clock{}, clouds: clouds{}, values: map[dot]*entry{}}
	for r, m := range s.clouds {
		if known(r) {
			out.clouds[r] = maps.Clone(m)
		}
	}
	for t, e := range s.values {
		if t.replica.node != remoteNode && known(t.replica) {
			out.values[t] = e
		}
	}
	if s.isDelta {
		out.start, out.end = clock{}, clock{}
		for r, n := range s.start {
			if known(r) {
				out.start[r] = n
			}
		}
		for r, n := range s.end {
			if known(r) {
				out.end[r] = n
			}
		}
	} else {
		for r, n := range s.context {
			if known(r) {
				out.context[r] = n
			}
		}
	}
	return out
}

// merge merges a remote delta or extracted state into this normal state
// and returns the entries that joined and left. Joins are remote values of
// known replicas not yet seen; leaves are values of other replicas that
// the remote has observed (its context or clouds cover their dot) but no
// longer holds.
func (s *state) merge(remote *state) (joins, leaves []*entry) {
	for t, e := range remote.values {
		if _, known := s.context[t.replica]; !known || in(s.context, s.clouds, t) {
			continue
		}
		joins = append(joins, e)
	}
	cl := s.unionClouds(remote)
	for t, e := range s.values {
		if t.replica == s.replica {
			continue
		}
		if _, held := remote.values[t]; !held && in(remote.context, remote.clouds, t) {
			cl.delete(t)
			s.delta.removeDeltaTag(t)
			leaves = append(leaves, e)
		}
	}
	for _, e := range leaves {
		delete(s.values, e.tag)
	}
	for _, e := range joins {
		s.values[e.tag] = e
	}
	ctx := maps.Clone(s.context)
	for r, n := range remote.context {
		if cur, ok := ctx[r]; ok && n > cur {
			ctx[r] = n
		}
	}
	s.clouds = cl
	s.putContext(ctx)
	s.compact()
	sortByClock(joins)
	sortByClock(leaves)
	return joins, leaves
}

// unionClouds is this state's clouds united with the remote's: all of them
// for a delta, only known replicas' for a normal state.
func (s *state) unionClouds(remote *state) clouds {
	out := s.clouds.clone()
	for r, m := range remote.clouds {
		if !s.isDelta {
			if _, ok := s.context[r]; !ok {
				continue
			}
		}
		cur := out[r]
		if cur == nil {
			cur = map[uint64]struct{}{}
			out[r] = cur
		}
		for n := range m {
			cur[n] = struct{}{}
		}
	}
	return out
}

// compact moves dots that extend a replica's contiguous range into the
// context.
func (s *state) compact() {
	ctx := maps.Clone(s.context)
	for r, m := range s.clouds {
		ns := slices.Sorted(maps.Keys(m))
		keep := map[uint64]struct{}{}
		for _, n := range ns {
			cur, ok := ctx[r]
			switch {
			case ok && cur+1 == n:
				ctx[r] = n
			case ok && cur >= n:
			case !ok && n == 1:
				ctx[r] = n
			default:
				keep[n] = struct{}{}
			}
		}
		if len(keep) == 0 {
			delete(s.clouds, r)
		} else {
			s.clouds[r] = keep
		}
	}
	s.putContext(ctx)
}

// mergeDeltas merges two deltas whose ranges are contiguous or overlap.
func mergeDeltas(local, remote *state) (*state, bool) {
	if !(dominatesOrEqual(remote.end, local.start) && dominatesOrEqual(local.end, remote.start)) {
		return nil, false
	}
	out := &state{isDelta: true, replica: local.replica, context: local.context,
		start: lowerbound(local.start, remote.start), end: upperbound(local.end, remote.end)}
	out.clouds = local.unionClouds(remote)
	out.values = make(map[dot]*entry, len(local.values)+len(remote.values))
	for t, e := range local.values {
		if _, ok := remote.values[t]; ok || !in(remote.context, remote.clouds, t) {
			out.values[t] = e
		}
	}
	for t, e := range remote.values {
		if _, ok := local.values[t]; !ok && !in(local.context, local.clouds, t) {
			out.values[t] = e
		}
	}
	return out, true
}

// replicaUp marks a replica up and returns its entries, which join again.
func (s *state) replicaUp(r replica) (joins []*entry) {
	if _, ok := s.context[r]; !ok {
		ctx := maps.Clone(s.context)
		ctx[r] = 0
		s.putContext(ctx)
	}
	s.replicas[r] = statusUp
	return s.replicaEntries(r)
}

// replicaDown marks a replica down and returns its entries, which leave;
// they stay in the set, hidden.
func (s *state) replicaDown(r replica) (leaves []*entry) {
	s.replicas[r] = statusDown
	return s.replicaEntries(r)
}

func (s *state) replicaEntries(r replica) []*entry {
	var out []*entry
	for t, e := range s.values {
		if t.replica == r {
			out = append(out, e)
		}
	}
	sortByClock(out)
	return out
}

// removeDownReplica forgets a replica for good (permdown) and returns the
// entries it held, to drop without a diff.
func (s *state) removeDownReplica(r replica) (removed []*entry) {
	if !s.isDelta {
		ctx := maps.Clone(s.context)
		delete(ctx, r)
		s.putContext(ctx)
		delete(s.replicas, r)
		s.delta.removeDownReplica(r)
	} else {
		delete(s.start, r)
		delete(s.end, r)
	}
	delete(s.clouds, r)
	for t, e := range s.values {
		if t.replica == r {
			removed = append(removed, e)
			delete(s.values, t)
		}
	}
	return removed
}

// deltaSize is how many values and dots a delta holds.
func (d *state) deltaSize() int {
	n := len(d.values)
	for _, m := range d.clouds {
		n += len(m)
	}
	return n
}

// Clock functions (Phoenix.Tracker.Clock).

// dominates reports whether c1 is at least c2 for every replica of c2.
func dominates(c1, c2 clock) bool {
	if len(c1) < len(c2) {
		return false
	}
	for r, n := range c2 {
		if c1[r] < n {
			return false
		}
	}
	return true
}

// dominatesOrEqual reports whether c1 is at least c2 for c1's replicas.
func dominatesOrEqual(c1, c2 clock) bool {
	if len(c1) == 0 {
		return len(c2) == 0
	}
	for r, n := range c1 {
		if n < c2[r] {
			return false
		}
	}
	return true
}

func upperbound(c1, c2 clock) clock {
	out := maps.Clone(c1)
	if out == nil {
		out = clock{}
	}
	for r, n := range c2 {
		if cur, ok := out[r]; !ok || n > cur {
			out[r] = n
		}
	}
	return out
}

func lowerbound(c1, c2 clock) clock {
	out := maps.Clone(c1)
	if out == nil {
		out = clock{}
	}
	for r, n := range c2 {
		if cur, ok := out[r]; !ok || n < cur {
			out[r] = n
		}
	}
	return out
}

// clockEntry is one replica's context, as heartbeats carry it.
type clockEntry struct {
	replica replica
	clock   clock
}

// appendClock adds a replica's context to a clockset, keeping only the
// dominating ones.
func appendClock(set []clockEntry, c clockEntry) []clockEntry {
	if len(c.clock) == 0 {
		return set
	}
	big := clock{}
	for _, e := range set {
		big = upperbound(big, e.clock)
	}
	switch {
	case dominates(c.clock, big):
		return []clockEntry{c}
	case dominates(big, c.clock):
		return set
	}
	var out []clockEntry
	insert := false
	for _, e := range set {
		if dominates(c.clock, e.clock) {
			insert = true
			continue
		}
		out = append(out, e)
		insert = insert || !dominates(e.clock, c.clock)
	}
	if insert {
		out = append([]clockEntry{c}, out...)
	}
	return out
}

// Delta generations (Phoenix.Tracker.DeltaGeneration): a few accumulated
// deltas of growing size, kept to answer transfer requests with a delta
// rather than the whole set.

// pushGeneration merges a delta into the generations. With none yet, they
// start as seed: a copy of the delta accumulating now (a copy, since unlike
// in Elixir that one keeps changing).
func pushGeneration(seed *state, gens []*state, d *state, sizes []int) []*state {
	if len(gens) == 0 {
		gens = make([]*state, len(sizes))
		for i := range gens {
			gens[i] = seed
		}
	}
	out := make([]*state, 0, len(sizes))
	prev := d
	for i, g := range gens {
		if i >= len(sizes) {
			break
		}
		merged, ok := mergeDeltas(g, d)
		switch {
		case !ok:
			out = append(out, g)
			prev = g
		case merged.deltaSize() <= sizes[i]:
			out = append(out, merged)
			prev = merged
		default:
			out = append(out, prev)
			prev = merged
		}
	}
	return out
}

// extractForTransfer returns the smallest generation that brings a remote
// context up to date, or else the whole state.
func extractForTransfer(s *state, gens []*state, remoteNode string, remoteContext clock) *state {
	filter := func(c clock) clock {
		out := clock{}
		for r, n := range c {
			if _, ok := remoteContext[r]; ok {
				out[r] = n
			}
		}
		return out
	}
	for _, g := range gens {
		start, end := filter(g.start), filter(g.end)
		if !dominatesOrEqual(start, end) && dominatesOrEqual(remoteContext, start) && !dominates(remoteContext, end) {
			return g.extract(remoteNode, remoteContext)
		}
	}
	return s.extract(remoteNode, remoteContext)
}

func removeDownReplicaGens(gens []*state, r replica) []*state {
	out := make([]*state, len(gens))
	for i, g := range gens {
		c := g.cloneDelta()
		c.removeDownReplica(r)
		out[i] = c
	}
	return out
}

func (d *state) cloneDelta() *state {
	return &state{isDelta: true, replica: d.replica, context: maps.Clone(d.context), clouds: d.clouds.clone(),
		values: maps.Clone(d.values), start: maps.Clone(d.start), end: maps.Clone(d.end)}
}
