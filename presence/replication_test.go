package presence_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/presence"
	"github.com/plumehq/plume/pubsub"
)

// cluster connects PubSubs in memory, as the Redis or NATS adapters do
// over the network: messages travel as pubsub envelopes, are delivered
// asynchronously and in order per pair of nodes, and links can be cut.
type cluster struct {
	t     testing.TB
	mu    sync.Mutex
	nodes map[string]*memAdapter
	cut   map[[2]string]bool
}

func newCluster(t testing.TB) *cluster {
	return &cluster{t: t, nodes: map[string]*memAdapter{}, cut: map[[2]string]bool{}}
}

type memAdapter struct {
	c       *cluster
	name    string
	mu      sync.Mutex
	deliver func(*pubsub.Message)
	q       [][]byte
	running bool
	closed  bool
	idle    sync.WaitGroup
}

func (a *memAdapter) NodeName() string { return a.name }

func (a *memAdapter) Start(ctx context.Context, deliver func(*pubsub.Message)) error {
	a.mu.Lock()
	a.deliver = deliver
	a.mu.Unlock()
	return nil
}

func (a *memAdapter) Broadcast(ctx context.Context, m *pubsub.Message) error {
	env := pubsub.MarshalEnvelope(a.name, m)
	for _, b := range a.c.peers(a.name) {
		b.enqueue(env)
	}
	return nil
}

func (a *memAdapter) DirectBroadcast(ctx context.Context, node string, m *pubsub.Message) error {
	env := pubsub.MarshalEnvelope(a.name, m)
	for _, b := range a.c.peers(a.name) {
		if b.name == node {
			b.enqueue(env)
		}
	}
	return nil
}

func (a *memAdapter) Subscribe(string) error   { return nil }
func (a *memAdapter) Unsubscribe(string) error { return nil }

func (a *memAdapter) Close() error {
	a.mu.Lock()
	a.closed = true
	a.q = nil
	a.mu.Unlock()
	a.idle.Wait()
	a.c.mu.Lock()
	if a.c.nodes[a.name] == a {
		delete(a.c.nodes, a.name)
	}
	a.c.mu.Unlock()
	return nil
}

func (a *memAdapter) enqueue(env []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.deliver == nil {
		return
	}
	a.q = append(a.q, env)
	if !a.running {
		a.running = true
		a.idle.Add(1)
		go a.run()
	}
}

func (a *memAdapter) run() {
	defer a.idle.Done()
	for {
		a.mu.Lock()
		if len(a.q) == 0 || a.closed {
			a.running = false
			a.mu.Unlock()
			return
		}
		env := a.q[0]
		a.q = a.q[1:]
		deliver := a.deliver
		a.mu.Unlock()
		_, m, err := pubsub.UnmarshalEnvelope(env)
		if err != nil {
			a.c.t.Errorf("bad envelope: %v", err)
			continue
		}
		deliver(m)
	}
}

// peers returns the nodes name can reach.
func (c *cluster) peers(name string) []*memAdapter {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*memAdapter
	for n, a := range c.nodes {
		if n != name && !c.cut[[2]string{name, n}] {
			out = append(out, a)
		}
	}
	return out
}

// partition cuts (or heals) the links between a and b.
func (c *cluster) partition(a, b string, cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut[[2]string{a, b}] = cut
	c.cut[[2]string{b, a}] = cut
}

// node is one member of the cluster: a PubSub, an Endpoint and a Tracker.
type node struct {
	name string
	ps   *pubsub.PubSub
	ep   *plume.Endpoint
	tr   *presence.Tracker
	once sync.Once
}

func (c *cluster) start(name string, opts presence.Options) *node {
	c.t.Helper()
	a := &memAdapter{c: c, name: name}
	c.mu.Lock()
	c.nodes[name] = a
	c.mu.Unlock()
	ps, err := pubsub.New(pubsub.Options{Adapter: a})
	if err != nil {
		c.t.Fatal(err)
	}
	ep := plume.NewEndpoint(plume.Options{PubSub: ps})
	if os.Getenv("PRESENCE_DEBUG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
	}
	n := &node{name: name, ps: ps, ep: ep, tr: presence.New(ep, opts)}
	c.t.Cleanup(n.stop)
	return n
}

// stop closes the node's tracker, then its PubSub.
func (n *node) stop() {
	n.once.Do(func() {
		n.tr.Close()
		n.ps.Close()
	})
}

// fastReplication beats every 20 ms; down detection is slow unless a test
// asks for it, so that a busy machine does not fake a netsplit.
func fastReplication() presence.Options {
	return presence.Options{Replication: presence.Replication{
		BroadcastPeriod:  20 * time.Millisecond,
		MaxSilentPeriods: 5,
		DownPeriod:       10 * time.Second,
		PermdownPeriod:   20 * time.Second,
	}}
}

func sameLists(t *testing.T, topic string, nodes ...*node) func() bool {
	return func() bool {
		want := listRefs(nodes[0].tr.List(topic))
		for _, n := range nodes[1:] {
			if !reflect.DeepEqual(listRefs(n.tr.List(topic)), want) {
				return false
			}
		}
		return true
	}
}

func TestReplicationTrackUpdateUntrack(t *testing.T) {
	leakcheck.Check(t)
	c := newCluster(t)
	a, b := c.start("a", fastReplication()), c.start("b", fastReplication())
	recB := record(t, b.ps, "room:1")

	ref := track(t, a.tr, "tab", "room:1", "alice", map[string]any{"status": "online"})
	eventually(t, "b to see alice", func() bool { _, ok := b.tr.GetByKey("room:1", "alice"); return ok })
	p, _ := b.tr.GetByKey("room:1", "alice")
	if len(p.Metas) != 1 || p.Metas[0]["phx_ref"] != ref || p.Metas[0]["status"] != "online" {
		t.Fatalf("b sees alice as %v", p.Metas)
	}
	if d := recB.wait(1)[0]; len(d.Joins) != 1 || d.Joins["alice"].Metas[0]["phx_ref"] != ref {
		t.Fatalf("b's diff %+v", d)
	}

	// A key tracked on both nodes has a meta from each.
	refB := track(t, b.tr, "tab", "room:1", "alice", nil)
	eventually(t, "a to see both metas", func() bool { p, _ := a.tr.GetByKey("room:1", "alice"); return len(p.Metas) == 2 })
	eventually(t, "same lists", sameLists(t, "room:1", a, b))

	// An update reaches the other node as one diff: leave old, join new.
	n := len(recB.wait(2))
	ref2, err := a.tr.UpdateOwner("tab", "room:1", "alice", map[string]any{"status": "away"})
	if err != nil {
		t.Fatal(err)
	}
	d := recB.wait(n + 1)[n]
	if len(d.Joins["alice"].Metas) != 1 || d.Joins["alice"].Metas[0]["phx_ref"] != ref2 ||
		d.Joins["alice"].Metas[0]["phx_ref_prev"] != ref || len(d.Leaves["alice"].Metas) != 1 ||
		d.Leaves["alice"].Metas[0]["phx_ref"] != ref {
		t.Fatalf("update diff on b: %+v", d)
	}

	a.tr.UntrackAll("tab")
	eventually(t, "alice's meta from a to leave b", func() bool {
		p, _ := b.tr.GetByKey("room:1", "alice")
		return len(p.Metas) == 1 && p.Metas[0]["phx_ref"] == refB
	})
	eventually(t, "same lists", sameLists(t, "room:1", a, b))

	// A client of b applying b's diffs ends with b's list.
	eventually(t, "b's clients to match b's list", clientsMatch(recB, b, "room:1"))
}

// clientsMatch reports whether a client that applied the diffs rec saw
// has n's list of topic.
func clientsMatch(rec *recorder, n *node, topic string) func() bool {
	return func() bool {
		m := model{}
		for _, d := range rec.wait(0) {
			m.apply(d)
		}
		return reflect.DeepEqual(modelRefs(m), listRefs(n.tr.List(topic)))
	}
}

// TestReplicationLateNode checks that a node that starts after presences
// were tracked elsewhere catches up by transfer.
func TestReplicationLateNode(t *testing.T) {
	leakcheck.Check(t)
	c := newCluster(t)
	a := c.start("a", fastReplication())
	for i := 0; i < 300; i++ {
		track(t, a.tr, i, fmt.Sprint("room:", i%20), fmt.Sprint("user", i), map[string]any{"i": i})
	}
	time.Sleep(100 * time.Millisecond) // a's deltas go out to nobody
	b := c.start("b", fastReplication())
	for i := 0; i < 20; i++ {
		eventually(t, "b to catch up", sameLists(t, fmt.Sprint("room:", i), a, b))
	}
	if n := len(b.tr.List("room:7")); n != 15 {
		t.Fatalf("room:7 has %d presences on b", n)
	}
}

// TestReplicationNetsplit: presences of an unreachable node leave after
// DownPeriod, and come back when it does.
func TestReplicationNetsplit(t *testing.T) {
	leakcheck.Check(t)
	c := newCluster(t)
	opts := fastReplication()
	opts.Replication.DownPeriod = 400 * time.Millisecond
	a, b := c.start("a", opts), c.start("b", opts)
	recB := record(t, b.ps, "room:1")
	rx := track(t, a.tr, "x", "room:1", "x", nil)
	track(t, b.tr, "b", "room:1", "bob", nil)
	eventually(t, "b to see x", func() bool { _, ok := b.tr.GetByKey("room:1", "x"); return ok })

	c.partition("a", "b", true)
	eventually(t, "x to leave b", func() bool { _, ok := b.tr.GetByKey("room:1", "x"); return !ok })
	eventually(t, "bob to leave a", func() bool { _, ok := a.tr.GetByKey("room:1", "bob"); return !ok })
	eventually(t, "b's clients to see x leave", clientsMatch(recB, b, "room:1"))
	ry := track(t, a.tr, "y", "room:1", "y", nil)

	c.partition("a", "b", false)
	eventually(t, "x and y back on b", func() bool {
		l := b.tr.List("room:1")
		return len(l["x"].Metas) == 1 && l["x"].Metas[0]["phx_ref"] == rx && len(l["y"].Metas) == 1 && l["y"].Metas[0]["phx_ref"] == ry
	})
	eventually(t, "same lists", sameLists(t, "room:1", a, b))
	eventually(t, "b's clients to match b's list", clientsMatch(recB, b, "room:1"))
}

// TestReplicationRestartAndPermdown: a node that restarts is a new replica;
// the old one's presences leave at once. A node gone for PermdownPeriod is
// forgotten.
func TestReplicationRestartAndPermdown(t *testing.T) {
	leakcheck.Check(t)
	c := newCluster(t)
	opts := fastReplication()
	opts.Replication.DownPeriod = 300 * time.Millisecond
	opts.Replication.PermdownPeriod = 600 * time.Millisecond
	a, b := c.start("a", opts), c.start("b", opts)
	track(t, a.tr, "old", "room:1", "old", nil)
	eventually(t, "b to see old", func() bool { _, ok := b.tr.GetByKey("room:1", "old"); return ok })

	// Restart a: same node name, new replica. Its old presence is not
	// untracked, as when a node crashes and comes straight back.
	a.ps.Close()
	a2 := c.start("a", opts)
	track(t, a2.tr, "new", "room:1", "new", nil)
	eventually(t, "b to drop old and see new", func() bool {
		l := b.tr.List("room:1")
		_, old := l["old"]
		_, nw := l["new"]
		return !old && nw
	})
	a.tr.Close()

	// a2 goes silent: down, then forgotten.
	c.partition("a", "b", true)
	eventually(t, "new to leave b", func() bool { _, ok := b.tr.GetByKey("room:1", "new"); return !ok })
	time.Sleep(opts.Replication.PermdownPeriod)
	eventually(t, "room:1 to be empty on b", func() bool { return len(b.tr.List("room:1")) == 0 })
	// Back after permdown: b has forgotten a2's set and catches up again.
	c.partition("a", "b", false)
	eventually(t, "new back on b", func() bool { _, ok := b.tr.GetByKey("room:1", "new"); return ok })
}

// TestReplicationClose: Close sends the last changes, and with
// PermdownOnClose the node's presences leave the others at once.
func TestReplicationClose(t *testing.T) {
	leakcheck.Check(t)
	c := newCluster(t)
	slow := fastReplication()
	slow.Replication.BroadcastPeriod = 2 * time.Second
	slow.Replication.ClockSamplePeriods = 1
	slow.Replication.DownPeriod = time.Hour
	slow.Replication.PermdownPeriod = 2 * time.Hour
	slow.Replication.PermdownOnClose = true
	a, b := c.start("a", slow), c.start("b", fastReplication())
	// a learns of b and catches up with it at its first heartbeat, within
	// half a second. Its next one is two seconds away: Close is what sends
	// the changes made meanwhile.
	track(t, b.tr, "bob", "room:1", "bob", nil)
	eventually(t, "a to see bob", func() bool { _, ok := a.tr.GetByKey("room:1", "bob"); return ok })
	track(t, a.tr, "x", "room:1", "x", nil)
	track(t, a.tr, "y", "room:1", "y", nil)
	a.tr.UntrackOwner("y", "room:1", "y")
	recB := record(t, b.ps, "room:1")
	a.tr.Close()
	// b learns of x from the last heartbeat, then forgets a.
	eventually(t, "x to join and leave b", func() bool { return recB.count() >= 2 })
	ds := recB.wait(2)
	if len(ds[0].Joins["x"].Metas) != 1 || len(ds[1].Leaves["x"].Metas) != 1 || len(ds[0].Joins["y"].Metas) != 0 {
		t.Fatalf("diffs on b: %+v", ds)
	}
	if l := b.tr.List("room:1"); len(l) != 1 || len(l["bob"].Metas) != 1 {
		t.Fatalf("b still lists a's presences: %v", l)
	}
}

// TestReplicationConverges runs random changes on three nodes at once and
// checks that all of them end with the same lists, and that each node's
// clients, applying its diffs, end with its list.
func TestReplicationConverges(t *testing.T) {
	leakcheck.Check(t)
	c := newCluster(t)
	nodes := []*node{c.start("a", fastReplication()), c.start("b", fastReplication()), c.start("c", fastReplication())}
	topics := []string{"t:0", "t:1", "t:2"}
	recs := map[*node]map[string]*recorder{}
	for _, n := range nodes {
		recs[n] = map[string]*recorder{}
		for _, topic := range topics {
			recs[n][topic] = record(t, n.ps, topic)
		}
	}
	var wg sync.WaitGroup
	for w, n := range nodes {
		wg.Add(1)
		go func(w int, n *node) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for i := 0; i < 300; i++ {
				owner := fmt.Sprintf("o%d", rng.Intn(6))
				topic := topics[rng.Intn(len(topics))]
				key := fmt.Sprintf("k%d", rng.Intn(4))
				switch op := rng.Intn(10); {
				case op < 4:
					n.tr.TrackOwner(owner, topic, key, map[string]any{"i": i, "node": n.name})
				case op < 6:
					n.tr.UntrackOwner(owner, topic, key)
				case op < 9:
					n.tr.UpdateOwner(owner, topic, key, map[string]any{"i": i, "node": n.name, "u": true})
				default:
					n.tr.UntrackAll(owner)
				}
				if i%20 == 0 {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}(w, n)
	}
	wg.Wait()
	for _, topic := range topics {
		eventually(t, "lists to converge on "+topic, sameLists(t, topic, nodes...))
	}
	for _, n := range nodes {
		for _, topic := range topics {
			eventually(t, "node "+n.name+"'s clients to converge on "+topic, clientsMatch(recs[n][topic], n, topic))
		}
	}
}

func TestReplicationOptionsValidated(t *testing.T) {
	for _, r := range []presence.Replication{
		{BroadcastPeriod: time.Second, DownPeriod: time.Second},
		{DownPeriod: time.Minute, PermdownPeriod: time.Minute},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%+v did not panic", r)
				}
			}()
			presence.NewWithPubSub(pubsub.NewLocal(), presence.Options{Replication: r})
		}()
	}
}

// TestReplicationLateNodeDefaultPeriods: with Phoenix's default periods
// (heartbeats every 1.5 s, silent ones every 15 s), a node that starts next
// to a quiet one sees its presences, and is seen, within about two
// heartbeats, not after the next silent heartbeat.
func TestReplicationLateNodeDefaultPeriods(t *testing.T) {
	leakcheck.Check(t)
	c := newCluster(t)
	a := c.start("a", presence.Options{})
	track(t, a.tr, 1, "room:quiet", "ann", map[string]any{"n": 1})
	time.Sleep(2 * time.Second) // a's first heartbeat goes out to nobody
	b := c.start("b", presence.Options{})
	track(t, b.tr, 2, "room:quiet", "bob", map[string]any{"n": 2})
	start := time.Now()
	deadline := start.Add(4 * time.Second)
	for !(len(a.tr.List("room:quiet")) == 2 && len(b.tr.List("room:quiet")) == 2) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: a lists %d, b lists %d presences, want 2 each", time.Since(start), len(a.tr.List("room:quiet")), len(b.tr.List("room:quiet")))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
