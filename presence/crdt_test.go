package presence

import (
	"reflect"
	"slices"
	"testing"
)

// These tests port phoenix_pubsub's test/phoenix/tracker/state_test.exs.

var lobby = &topic{name: "lobby"}

func newS(node string) *state { return newState(replica{node: node, vsn: 1}) }

func rep(node string) replica { return replica{node: node, vsn: 1} }

func join(s *state, key string) *entry {
	e := &entry{t: lobby, key: key, meta: map[string]any{}}
	s.join(e)
	return e
}

func joinTopic(s *state, t *topic, key string) *entry {
	e := &entry{t: t, key: key, meta: map[string]any{}}
	s.join(e)
	return e
}

func keysOf(es []*entry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.key)
	}
	slices.Sort(out)
	return out
}

// online is State.online_list: values of replicas that are not down.
func online(s *state) []string {
	var es []*entry
	for t, e := range s.values {
		if s.replicas[t.replica] != statusDown {
			es = append(es, e)
		}
	}
	return keysOf(es)
}

func ext(from, to *state) *state { return from.extract(to.replica.node, to.context) }

func wantMerge(t *testing.T, s, remote *state, joins, leaves []string) {
	t.Helper()
	j, l := s.merge(remote)
	if got := keysOf(j); !reflect.DeepEqual(got, nonNil(joins)) {
		t.Fatalf("joins %v, want %v", got, joins)
	}
	if got := keysOf(l); !reflect.DeepEqual(got, nonNil(leaves)) {
		t.Fatalf("leaves %v, want %v", got, leaves)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func connected(nodes ...string) []*state {
	var out []*state
	for _, n := range nodes {
		s := newS(n)
		for _, m := range nodes {
			if m != n {
				s.replicaUp(rep(m))
			}
		}
		out = append(out, s)
	}
	return out
}

func TestStateExtractEmpty(t *testing.T) {
	a := newS("a")
	if x := a.extract("a", a.context); len(x.values) != 0 {
		t.Fatal(x.values)
	}
}

func TestStateJoinLeave(t *testing.T) {
	a := newS("a")
	e := join(a, "john")
	if got := online(a); !reflect.DeepEqual(got, []string{"john"}) {
		t.Fatal(got)
	}
	a.leave(e)
	if got := online(a); len(got) != 0 {
		t.Fatal(got)
	}
}

func TestStateUsersFromOtherServersMerge(t *testing.T) {
	ab := connected("a", "b")
	a, b := ab[0], ab[1]
	alice := join(a, "alice")
	join(b, "bob")

	wantMerge(t, a, ext(b, a), []string{"bob"}, nil)
	if got := online(a); !reflect.DeepEqual(got, []string{"alice", "bob"}) {
		t.Fatal(got)
	}
	// Merging twice doesn't dupe events.
	wantMerge(t, a, ext(b, a), nil, nil)
	wantMerge(t, b, ext(a, b), []string{"alice"}, nil)
	wantMerge(t, b, ext(a, b), nil, nil)

	// Observed remove.
	a.leave(alice)
	wantMerge(t, b, ext(a, b), nil, []string{"alice"})
	if got := online(b); !reflect.DeepEqual(got, []string{"bob"}) {
		t.Fatal(got)
	}
	wantMerge(t, b, ext(a, b), nil, nil)

	carol := join(b, "carol")
	wantMerge(t, a, ext(b, a), []string{"carol"}, nil)
	wantMerge(t, a, ext(b, a), nil, nil)
	if !reflect.DeepEqual(online(a), online(b)) {
		t.Fatalf("a %v b %v", online(a), online(b))
	}

	// Update: a leave of the old meta and a join of the new.
	carol2 := &entry{t: lobby, key: "carol", meta: map[string]any{"updated": true}}
	b.leaveJoin(carol, carol2)
	j, l := a.merge(ext(b, a))
	if len(j) != 1 || j[0] != carol2 || len(l) != 1 || l[0] != carol {
		t.Fatalf("update merged as joins %v leaves %v", keysOf(j), keysOf(l))
	}
	wantMerge(t, a, ext(b, a), nil, nil)
}

func TestStateBasicNetsplit(t *testing.T) {
	ab := connected("a", "b")
	a, b := ab[0], ab[1]
	alice := join(a, "alice")
	join(b, "bob")
	wantMerge(t, a, ext(b, a), []string{"bob"}, nil)
	join(a, "carol")
	a.leave(alice)
	join(a, "david")

	if got := keysOf(a.replicaDown(rep("b"))); !reflect.DeepEqual(got, []string{"bob"}) {
		t.Fatal(got)
	}
	if got := online(a); !reflect.DeepEqual(got, []string{"carol", "david"}) {
		t.Fatal(got)
	}
	wantMerge(t, a, ext(b, a), nil, nil)
	if got := online(a); !reflect.DeepEqual(got, []string{"carol", "david"}) {
		t.Fatal(got)
	}
	if got := keysOf(a.replicaUp(rep("b"))); !reflect.DeepEqual(got, []string{"bob"}) {
		t.Fatal(got)
	}
	if got := online(a); !reflect.DeepEqual(got, []string{"bob", "carol", "david"}) {
		t.Fatal(got)
	}
}

func TestStateJoinsObservedViaOtherNode(t *testing.T) {
	abc := connected("a", "b", "c")
	a, b, c := abc[0], abc[1], abc[2]
	join(a, "alice")
	wantMerge(t, c, ext(a, c), []string{"alice"}, nil)
	// Netsplit between a and c.
	a.replicaDown(rep("c"))
	if got := keysOf(c.replicaDown(rep("a"))); !reflect.DeepEqual(got, []string{"alice"}) {
		t.Fatal(got)
	}
	join(a, "bob")
	wantMerge(t, b, ext(a, b), []string{"alice", "bob"}, nil)
	wantMerge(t, c, ext(b, c), []string{"bob"}, nil)
}

func TestStateRemovesObservedViaOtherNode(t *testing.T) {
	abc := connected("a", "b", "c")
	a, b, c := abc[0], abc[1], abc[2]
	join(a, "alice")
	wantMerge(t, c, ext(a, c), []string{"alice"}, nil)
	a.replicaDown(rep("c"))
	c.replicaDown(rep("a"))
	bob := join(a, "bob")
	wantMerge(t, b, ext(a, b), []string{"alice", "bob"}, nil)
	wantMerge(t, c, ext(b, c), []string{"bob"}, nil)
	a.leave(bob)
	wantMerge(t, b, ext(a, b), nil, []string{"bob"})
	wantMerge(t, c, ext(b, c), nil, []string{"bob"})
}

func TestStateOnlineHidesDownReplicas(t *testing.T) {
	s1, s2, s3 := newS("n1"), newS("n2"), newS("n3")
	s1.replicaUp(rep("n2"))
	s1.replicaUp(rep("n3"))
	s2.replicaUp(rep("n1"))
	s2.replicaUp(rep("n3"))
	s3.replicaUp(rep("n1"))
	s3.replicaUp(rep("n2"))
	want := clock{rep("n1"): 0, rep("n2"): 0, rep("n3"): 0}
	for _, s := range []*state{s1, s2, s3} {
		if !reflect.DeepEqual(s.context, want) {
			t.Fatalf("context %v", s.context)
		}
	}
	join(s1, "key1")
	join(s1, "key2")
	join(s2, "user2")
	join(s3, "user3")
	s1.merge(ext(s2, s1))
	s1.merge(ext(s3, s1))
	if got := online(s1); !reflect.DeepEqual(got, []string{"key1", "key2", "user2", "user3"}) {
		t.Fatal(got)
	}
	s1.replicaDown(s2.replica)
	if got := online(s1); !reflect.DeepEqual(got, []string{"key1", "key2", "user3"}) {
		t.Fatal(got)
	}
	s1.replicaDown(s3.replica)
	if got := online(s1); !reflect.DeepEqual(got, []string{"key1", "key2"}) {
		t.Fatal(got)
	}
	if got := s1.clocks(); !reflect.DeepEqual(got, clock{rep("n1"): 2}) {
		t.Fatalf("clocks without down replicas: %v", got)
	}
}

func TestStateRemoveDownReplicas(t *testing.T) {
	ab := connected("n1", "n2")
	s1, s2 := ab[0], ab[1]
	join(s1, "alice")
	join(s2, "bob")
	s2.merge(ext(s1, s2))
	if got := online(s2); !reflect.DeepEqual(got, []string{"alice", "bob"}) {
		t.Fatal(got)
	}
	s2.replicaDown(rep("n1"))
	if got := keysOf(s2.removeDownReplica(rep("n1"))); !reflect.DeepEqual(got, []string{"alice"}) {
		t.Fatal(got)
	}
	s2.replicaUp(rep("n1"))
	if got := online(s2); !reflect.DeepEqual(got, []string{"bob"}) {
		t.Fatal(got)
	}
}

func TestStateBasicDeltas(t *testing.T) {
	ab := connected("a", "b")
	a, b := ab[0], ab[1]
	alice := join(a, "alice")
	join(b, "bob")
	wantMerge(t, b, a.delta, []string{"alice"}, nil)
	if got := b.clocks(); !reflect.DeepEqual(got, clock{rep("a"): 1, rep("b"): 1}) {
		t.Fatal(got)
	}
	a.resetDelta()
	a.leave(alice)
	wantMerge(t, b, a.delta, nil, []string{"alice"})
	if got := b.clocks(); !reflect.DeepEqual(got, clock{rep("a"): 2, rep("b"): 1}) {
		t.Fatal(got)
	}
	join(a, "alice")
	wantMerge(t, b, a.delta, []string{"alice"}, nil)
	if got := b.clocks(); !reflect.DeepEqual(got, clock{rep("a"): 3, rep("b"): 1}) {
		t.Fatal(got)
	}
	for _, c := range b.clouds {
		if len(c) != 0 {
			t.Fatalf("clouds not compacted: %v", b.clouds)
		}
	}
}

func TestStateDeltasNotMergedWhenNotContiguous(t *testing.T) {
	s := newS("s1")
	join(s, "user1")
	d2 := s.delta.cloneDelta()
	join(s, "user2")
	s.resetDelta()
	join(s, "user3")
	if _, ok := mergeDeltas(d2, s.delta); ok {
		t.Fatal("merged")
	}
	if _, ok := mergeDeltas(s.delta, d2); ok {
		t.Fatal("merged")
	}
}

func TestStateExtractedContextHasOnlyKnownReplicas(t *testing.T) {
	s1, s2, s3 := newS("s1"), newS("s2"), newS("s3")
	s1.replicaUp(s2.replica)
	s2.replicaUp(s1.replica)
	s2.replicaUp(s3.replica)
	join(s1, "user1")
	join(s2, "user2")
	join(s3, "user3")
	s1.merge(s2.delta)
	s2.merge(s1.delta)
	s2.merge(s3.delta)
	x := s2.extract(s1.replica.node, s1.context)
	if want := (clock{rep("s1"): 1, rep("s2"): 1}); !reflect.DeepEqual(x.context, want) {
		t.Fatalf("context %v, want %v", x.context, want)
	}
}

func tags(d *state) []dot {
	var out []dot
	for t := range d.values {
		out = append(out, t)
	}
	sortDots(out)
	return out
}

func cloudDots(c clouds) []dot {
	var out []dot
	for r, m := range c {
		for n := range m {
			out = append(out, dot{r, n})
		}
	}
	sortDots(out)
	return out
}

func sortDots(ds []dot) {
	slices.SortFunc(ds, func(a, b dot) int {
		if a.replica.node != b.replica.node {
			if a.replica.node < b.replica.node {
				return -1
			}
			return 1
		}
		return int(a.clock) - int(b.clock)
	})
}

func d(node string, n uint64) dot { return dot{rep(node), n} }

func TestStateMergingDeltas(t *testing.T) {
	s1, s2 := newS("s1"), newS("s2")
	private := &topic{name: "private"}
	join(s1, "user1")
	joinTopic(s1, private, "user1")
	join(s2, "user2")
	joinTopic(s2, private, "user2")
	m, ok := mergeDeltas(s1.delta, s2.delta)
	if !ok {
		t.Fatal("not merged")
	}
	want := []dot{d("s1", 1), d("s1", 2), d("s2", 1), d("s2", 2)}
	if got := tags(m); !reflect.DeepEqual(got, want) {
		t.Fatalf("values %v", got)
	}
	if got := cloudDots(m.clouds); !reflect.DeepEqual(got, want) {
		t.Fatalf("clouds %v", got)
	}
}

func TestStateMergingDeltasWithRemoves(t *testing.T) {
	ab := connected("s1", "s2")
	s1, s2 := ab[0], ab[1]
	private := &topic{name: "private"}
	// Concurrent add wins.
	join(s1, "user1")
	p1 := joinTopic(s1, private, "user1")
	e := join(s2, "user1")
	s2.leave(e)
	m, ok := mergeDeltas(s1.delta, s2.delta)
	if !ok {
		t.Fatal("not merged")
	}
	s1.delta = m
	if got := tags(m); !reflect.DeepEqual(got, []dot{d("s1", 1), d("s1", 2)}) {
		t.Fatalf("values %v", got)
	}
	if got := cloudDots(m.clouds); !reflect.DeepEqual(got, []dot{d("s1", 1), d("s1", 2), d("s2", 1), d("s2", 2)}) {
		t.Fatalf("clouds %v", got)
	}
	// Merging duplicates maintains the delta.
	m2, ok := mergeDeltas(m, s2.delta)
	if !ok || !reflect.DeepEqual(tags(m2), tags(m)) || !reflect.DeepEqual(cloudDots(m2.clouds), cloudDots(m.clouds)) {
		t.Fatal("duplicate merge changed the delta")
	}
	s2.merge(s1.delta)
	s2.leave(p1)
	// Observed remove.
	m, ok = mergeDeltas(s1.delta, s2.delta)
	if !ok {
		t.Fatal("not merged")
	}
	if got := tags(m); !reflect.DeepEqual(got, []dot{d("s1", 1)}) {
		t.Fatalf("values %v", got)
	}
	// Keeps the tombstone.
	if got := cloudDots(m.clouds); !reflect.DeepEqual(got, []dot{d("s1", 1), d("s1", 2), d("s2", 1), d("s2", 2), d("s2", 3)}) {
		t.Fatalf("clouds %v", got)
	}
}

func TestClockAppend(t *testing.T) {
	a, b, c := rep("a"), rep("b"), rep("c")
	set := appendClock(nil, clockEntry{a, clock{a: 1, b: 1}})
	set = appendClock(set, clockEntry{b, clock{a: 1, b: 2}})
	if len(set) != 1 || set[0].replica != b {
		t.Fatalf("dominating clock should replace: %v", set)
	}
	set = appendClock(set, clockEntry{c, clock{a: 2, b: 1, c: 1}})
	if len(set) != 2 {
		t.Fatalf("concurrent clocks should both stay: %v", set)
	}
	set = appendClock(set, clockEntry{a, clock{a: 1}})
	if len(set) != 2 {
		t.Fatalf("dominated clock should not be added: %v", set)
	}
	if !dominatesOrEqual(clock{}, clock{}) || dominatesOrEqual(clock{}, clock{a: 1}) || !dominates(clock{a: 2, b: 1}, clock{a: 1}) {
		t.Fatal("clock comparisons")
	}
}
