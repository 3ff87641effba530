// Package presence is Phoenix.Presence for Plume: it tracks who is present
// on a topic, tells every subscriber of the topic what changed with
// "presence_diff" broadcasts, and lists the current presences for the
// "presence_state" push that the official phoenix.js Presence class expects.
//
// A presence is a key (usually a user id) with one meta map per tracked
// owner, typically a channel: a user with two browser tabs is one key with two
// metas, and the key leaves only with its last meta. A channel's presences are
// untracked automatically when the channel stops for any reason (leave,
// connection closed, crash, duplicate join, drain), as Phoenix does for a
// tracked process that exits.
//
// The Phoenix pattern, in Go:
//
//	func (r *Room) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
//		ch.Send(afterJoin{})
//		return nil, nil
//	}
//
//	func (r *Room) HandleInfo(ch *plume.Channel, msg any) error {
//		if _, ok := msg.(afterJoin); ok {
//			ch.Push("presence_state", presences.List(ch.Topic()))
//			_, err := presences.Track(ch, userID(ch), map[string]any{"online_at": time.Now().Unix()})
//			return err
//		}
//		return nil
//	}
//
// Presences are sharded by topic and each topic has its own lock, so a join
// storm on one topic does not slow the others. Reads ([Tracker.List],
// [Tracker.GetByKey]) take a topic's read lock for the time of a copy;
// writers hold its write lock only to edit a map, never while broadcasting
// or calling hooks. Diffs are broadcast asynchronously, strictly in order per
// topic, on a goroutine that exists only while a topic has diffs to send;
// [Options].CoalesceWindow can merge a topic's diffs over a short window.
//
// Across nodes, trackers of the same name replicate over the PubSub as
// Phoenix.Tracker does (see [Replication]): every meta carries the dot
// (replica, clock) that added it, shards exchange deltas of an
// observed-remove set in heartbeats, and each node broadcasts to its own
// subscribers the diffs it observes, remote ones included. On a single node
// this costs a little bookkeeping and an empty heartbeat per shard every
// 15 seconds; set Replication.Disabled to avoid even that.
//
// Guarantees across nodes, with the default periods (heartbeat 1.5 s,
// down period 30 s): a presence tracked on one node is listed on the others
// after its next heartbeat, and a node that starts or returns is brought up
// to date at once by a state transfer; a lost delta (Redis pub/sub is at most
// once) is repaired when clocks are compared, every two heartbeats, so
// neither a ghost nor a missing presence survives more than a few heartbeat
// periods; a node that stops answering has its presences turned into leaves
// after the down period and forgotten after the permdown period, and one that
// returns later is a new replica; Close with PermdownOnClose removes a node's
// presences everywhere at once. Once quiet, every node lists the same set.
package presence

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/pubsub"
)

// Errors returned by the tracker.
var (
	// ErrAlreadyTracked is returned when tracking an owner, topic and key
	// that are already tracked (Phoenix's {:error, {:already_tracked, ...}}).
	ErrAlreadyTracked = errors.New("presence: already tracked")
	// ErrNoPresence is returned by the Update methods when the owner, topic
	// and key are not tracked (Phoenix's {:error, :nopresence}).
	ErrNoPresence = errors.New("presence: not tracked")
	// ErrOwnerStopped is returned when tracking for a channel (or any owner
	// with a Context method) whose context has ended.
	ErrOwnerStopped = errors.New("presence: owner has stopped")
	// ErrClosed is returned after [Tracker.Close].
	ErrClosed = errors.New("presence: tracker closed")
)

// DiffEvent is the event of the broadcasts that carry presence changes.
const DiffEvent = "presence_diff"

// StateEvent is the event name phoenix.js expects for the full presence
// list; the application pushes it (see the package example).
const StateEvent = "presence_state"

// Options configures a [Tracker]. The zero value is usable.
type Options struct {
	// Fetch is Phoenix's fetch/2: it may add fields to the presences before
	// they are listed or broadcast, for example user details from a
	// database, by setting Presence.Extra. It must keep each presence's
	// Metas, and must not modify the meta maps themselves, which are shared.
	// It runs on every List and GetByKey, on the caller's goroutine, and
	// for every diff, separately for its joins and its leaves, on the
	// topic's diff goroutine (so a slow Fetch delays that topic's diffs
	// only). Nil leaves presences as they are.
	Fetch func(topic string, presences map[string]Presence) map[string]Presence

	// HandleMetas is Phoenix's handle_metas/4: it receives every diff of
	// every topic server-side, after Fetch and after the diff is broadcast,
	// with the topic's presences once the diff is applied (metas only).
	// Calls for one topic are made one at a time, in diff order; calls for
	// different topics may run concurrently. The maps must not be modified
	// or kept after the call returns.
	HandleMetas func(topic string, diff Diff, presences map[string]Presence)

	// CoalesceWindow, when positive, merges the diffs of a topic that occur
	// within the window into one presence_diff, sent when the window ends.
	// A meta that joins and leaves within one window is never sent. This
	// trades that much latency for far fewer frames in busy rooms; see
	// BENCHMARKS.md. Zero sends one diff per change, as Phoenix does.
	CoalesceWindow time.Duration

	// Shards is how many shards topics are spread over; default 8. Each
	// shard keeps its own logical clock; when presence is replicated across
	// nodes every node must use the same count, as with Phoenix's pool_size.
	Shards int

	// Logger receives errors from hooks that panic on a diff goroutine,
	// and replication events; nil uses the endpoint's logger.
	Logger *slog.Logger

	// Name identifies the tracker across nodes: trackers with the same
	// Name and Shards on the nodes of one PubSub replicate to each other,
	// over the topics "phx_presence:<Name>_shard<N>". Default "presence".
	// Two trackers sharing a PubSub need different names. Route no channel
	// to those topics (a catch-all "*" route would let clients read them).
	Name string

	// Replication tunes how presences are replicated to the other nodes
	// of the PubSub. The zero value uses Phoenix's defaults.
	Replication Replication
}

// Replication configures how a Tracker replicates presences between nodes,
// as Phoenix.Tracker does: each shard broadcasts the changes made on its
// node in a heartbeat every BroadcastPeriod, and merges other nodes'
// changes into its observed-remove set, so remote presences appear about
// one period after they are tracked, with the usual presence_diff. A node
// whose heartbeats stop for DownPeriod is down: its presences leave, kept
// but hidden, and come back if it does; after PermdownPeriod they are
// forgotten. A node that restarts is a new replica. Nodes catch up with
// each other by asking for the deltas or the whole set they miss.
type Replication struct {
	// Disabled keeps presences on this node: no heartbeats and none of the
	// bookkeeping replication needs. For single-node deployments.
	Disabled bool
	// BroadcastPeriod is the heartbeat period; default 1.5s.
	BroadcastPeriod time.Duration
	// MaxSilentPeriods is how many periods without changes pass before an
	// empty heartbeat is sent anyway; default 10.
	MaxSilentPeriods int
	// DownPeriod is how long a node may miss heartbeats before it is down;
	// default BroadcastPeriod × MaxSilentPeriods × 2 (30s). It must be at
	// least twice BroadcastPeriod.
	DownPeriod time.Duration
	// PermdownPeriod is how long a node may miss heartbeats before it is
	// forgotten; default 20 minutes. It must exceed DownPeriod.
	PermdownPeriod time.Duration
	// ClockSamplePeriods is how many heartbeats pass between checks for
	// nodes to catch up with; default 2.
	ClockSamplePeriods int
	// MaxDeltaSizes caps the accumulated deltas kept to answer catch-up
	// requests; default [100, 1000, 10000].
	MaxDeltaSizes []int
	// PermdownOnClose makes Close tell the other nodes to forget this
	// node's presences at once (Phoenix's permdown_on_shutdown). Without
	// it they leave when the node is found down, after DownPeriod, which
	// spares clients a burst of leaves and joins when a restarting node's
	// users reconnect elsewhere.
	PermdownOnClose bool
}

// Tracker tracks presences on topics and broadcasts their changes. It is
// Phoenix's Presence module plus the Tracker underneath it. Its methods are
// safe for concurrent use.
type Tracker struct {
	ps     *pubsub.PubSub
	log    *slog.Logger
	opts   Options
	self   replica
	seed   maphash.Seed
	shards []shard
	owners [ownerShards]ownerShard

	// closeMu is held for reading by every operation that changes state, and
	// for writing by Close, so that no operation is half done when Close
	// waits for the diff goroutines.
	closeMu sync.RWMutex
	closed  bool
	// bg counts diff goroutines, pending coalescing timers and
	// replication mailboxes.
	bg sync.WaitGroup
}

// New returns a Tracker that broadcasts diffs through ep's PubSub and,
// unless opts.Replication.Disabled, replicates presences with the trackers
// of the same Name on the PubSub's other nodes. Close it when done. It
// panics if opts.Replication is inconsistent.
func New(ep *plume.Endpoint, opts Options) *Tracker {
	return NewWithPubSub(ep.PubSub(), withLogger(opts, ep.Logger()))
}

func withLogger(opts Options, l *slog.Logger) Options {
	if opts.Logger == nil {
		opts.Logger = l
	}
	return opts
}

// NewWithPubSub returns a Tracker that broadcasts diffs on ps, for programs
// that hold a PubSub but no Endpoint (a background worker on the same
// PubSub, for example). It panics if opts.Replication is inconsistent.
func NewWithPubSub(ps *pubsub.PubSub, opts Options) *Tracker {
	n := opts.Shards
	if n <= 0 {
		n = 8
	}
	opts.Shards = n
	if opts.Name == "" {
		opts.Name = "presence"
	}
	opts.Replication = opts.Replication.withDefaults()
	tr := &Tracker{
		ps:     ps,
		log:    opts.Logger,
		opts:   opts,
		self:   replica{node: ps.NodeName(), vsn: newVsn()},
		seed:   maphash.MakeSeed(),
		shards: make([]shard, n),
	}
	if tr.log == nil {
		tr.log = slog.New(slog.DiscardHandler)
	}
	for i := range tr.owners {
		tr.owners[i].m = make(map[any]*owner)
	}
	for i := range tr.shards {
		sh := &tr.shards[i]
		sh.topics = make(map[string]*topic)
		if opts.Replication.Disabled {
			sh.st = newLocalState(tr.self)
		} else {
			sh.st = newState(tr.self)
			sh.st.setRecording(false) // until another replica shows up
		}
	}
	if !opts.Replication.Disabled {
		for i := range tr.shards {
			tr.startReplication(i)
		}
	}
	return tr
}

// Presence is one key's presences on a topic: one meta per tracked owner,
// each with its "phx_ref", plus any fields Fetch adds. It encodes as
// {"metas": [...], ...Extra}, the shape phoenix.js expects.
type Presence struct {
	// Metas are the metas of the key, oldest first. They are shared with
	// the tracker: read them, never modify them.
	Metas []map[string]any
	// Extra holds fields added by Options.Fetch; a "metas" entry is ignored.
	Extra map[string]any
}

// Diff is one presence change on a topic, as broadcast in presence_diff:
// metas that joined and metas that left, by key. An update is a leave of
// the old meta and a join of the new one in the same Diff.
type Diff struct {
	Joins  map[string]Presence `json:"joins"`
	Leaves map[string]Presence `json:"leaves"`
}

// contexter is an owner whose presences end with its context, such as a
// *plume.Channel.
type contexter interface{ Context() context.Context }

// stopped reports whether owner has a context and it has ended.
func stopped(owner any) bool {
	c, ok := owner.(contexter)
	return ok && c.Context().Err() != nil
}

// Track tracks ch's presence under key on its topic with meta (Phoenix's
// track/3) and returns the meta's phx_ref. The presence is untracked when
// the channel stops, for any reason. The meta map is copied.
func (tr *Tracker) Track(ch *plume.Channel, key string, meta map[string]any) (ref string, err error) {
	return tr.TrackOwner(ch, ch.Topic(), key, meta)
}

// TrackOwner tracks a presence for any owner on any topic (Phoenix's
// track/4). The owner identifies who the presence belongs to: it must be
// comparable, as a map key. If it has a Context() context.Context method,
// as *plume.Channel does, its presences are untracked when that context
// ends; otherwise they last until untracked.
//
// Tracking the same owner, topic and key twice returns ErrAlreadyTracked.
func (tr *Tracker) TrackOwner(owner any, topic, key string, meta map[string]any) (ref string, err error) {
	tr.closeMu.RLock()
	defer tr.closeMu.RUnlock()
	if tr.closed {
		return "", ErrClosed
	}
	if stopped(owner) {
		return "", ErrOwnerStopped
	}
	for {
		o := tr.owner(owner, true)
		o.mu.Lock()
		if o.gone {
			o.mu.Unlock()
			continue
		}
		if o.ctx != nil && o.ctx.Err() != nil {
			o.mu.Unlock()
			return "", ErrOwnerStopped
		}
		tk := topicKey{topic, key}
		if _, ok := o.entries[tk]; ok {
			o.mu.Unlock()
			return "", fmt.Errorf("%w: topic %q, key %q", ErrAlreadyTracked, topic, key)
		}
		t := tr.lockTopic(topic)
		e := tr.newEntry(t, o, key, meta, "")
		t.add(e)
		t.sh.record(func(st *state) { st.join(e) })
		tr.emitLocked(t, diffOf([]*entry{e}, nil))
		t.mu.Unlock()
		o.entries[tk] = e
		o.mu.Unlock()
		return e.ref, nil
	}
}

// Untrack stops tracking ch's presence under key (Phoenix's untrack/2).
// Untracking what is not tracked does nothing.
func (tr *Tracker) Untrack(ch *plume.Channel, key string) {
	tr.UntrackOwner(ch, ch.Topic(), key)
}

// UntrackOwner stops tracking owner's presence under key on topic (Phoenix's
// untrack/3).
func (tr *Tracker) UntrackOwner(owner any, topic, key string) {
	tr.closeMu.RLock()
	defer tr.closeMu.RUnlock()
	if tr.closed {
		return
	}
	o := tr.owner(owner, false)
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	tk := topicKey{topic, key}
	e := o.entries[tk]
	if e == nil {
		return
	}
	delete(o.entries, tk)
	t := e.t
	t.mu.Lock()
	t.remove(e)
	t.sh.record(func(st *state) { st.leave(e) })
	tr.emitLocked(t, diffOf(nil, []*entry{e}))
	t.mu.Unlock()
	if len(o.entries) == 0 {
		tr.dropOwnerLocked(o)
	}
}

// UntrackAll stops tracking every presence of owner on every topic
// (Phoenix's Tracker.untrack/2), with one diff per topic. A channel's
// presences are untracked this way when it stops.
func (tr *Tracker) UntrackAll(owner any) {
	tr.closeMu.RLock()
	defer tr.closeMu.RUnlock()
	if tr.closed {
		return
	}
	if o := tr.owner(owner, false); o != nil {
		tr.untrackAll(o, false)
	}
}

// ownerStopped runs when a tracked owner's context ends.
func (tr *Tracker) ownerStopped(o *owner) {
	tr.closeMu.RLock()
	defer tr.closeMu.RUnlock()
	if !tr.closed {
		tr.untrackAll(o, true)
	}
}

func (tr *Tracker) untrackAll(o *owner, stopped bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.gone {
		return
	}
	entries := o.entries
	o.entries = nil
	tr.dropOwnerLocked(o)
	if len(entries) == 0 {
		return
	}
	byTopic := make(map[*topic][]*entry, 1)
	order := make([]*topic, 0, 1)
	for _, e := range entries {
		if _, ok := byTopic[e.t]; !ok {
			order = append(order, e.t)
		}
		byTopic[e.t] = append(byTopic[e.t], e)
	}
	for _, t := range order {
		es := byTopic[t]
		sortByClock(es)
		t.mu.Lock()
		for _, e := range es {
			t.remove(e)
		}
		t.sh.record(func(st *state) {
			for _, e := range es {
				st.leave(e)
			}
		})
		tr.emitLocked(t, diffOf(nil, es))
		t.mu.Unlock()
	}
}

// Update replaces the meta of ch's presence under key (Phoenix's update/3)
// and returns the new phx_ref. The new meta carries "phx_ref_prev", the old
// ref, and subscribers see a leave of the old meta and a join of the new
// one in a single diff. It returns ErrNoPresence when nothing is tracked,
// and ErrOwnerStopped when the channel has stopped.
func (tr *Tracker) Update(ch *plume.Channel, key string, meta map[string]any) (ref string, err error) {
	return tr.UpdateOwner(ch, ch.Topic(), key, meta)
}

// UpdateFunc is Update with a function of the current meta (a copy,
// including its phx_ref), like Phoenix's update/3 with a function.
func (tr *Tracker) UpdateFunc(ch *plume.Channel, key string, f func(meta map[string]any) map[string]any) (ref string, err error) {
	return tr.UpdateOwnerFunc(ch, ch.Topic(), key, f)
}

// UpdateOwner is Update for any owner and topic (Phoenix's update/4).
func (tr *Tracker) UpdateOwner(owner any, topic, key string, meta map[string]any) (ref string, err error) {
	return tr.update(owner, topic, key, func(map[string]any) map[string]any { return meta })
}

// UpdateOwnerFunc is UpdateFunc for any owner and topic.
func (tr *Tracker) UpdateOwnerFunc(owner any, topic, key string, f func(meta map[string]any) map[string]any) (ref string, err error) {
	return tr.update(owner, topic, key, f)
}

func (tr *Tracker) update(owner any, topic, key string, f func(map[string]any) map[string]any) (string, error) {
	tr.closeMu.RLock()
	defer tr.closeMu.RUnlock()
	if tr.closed {
		return "", ErrClosed
	}
	if stopped(owner) {
		return "", ErrOwnerStopped
	}
	tk := topicKey{topic, key}
	for {
		o := tr.owner(owner, false)
		if o == nil {
			return "", ErrNoPresence
		}
		o.mu.Lock()
		old := o.entries[tk]
		o.mu.Unlock()
		if old == nil {
			return "", ErrNoPresence
		}
		// f is the caller's code: run it without locks, then apply its
		// result only if the presence has not changed meanwhile.
		meta := f(cloneMeta(old.meta))
		o.mu.Lock()
		if o.entries[tk] != old {
			o.mu.Unlock()
			continue
		}
		t := old.t
		t.mu.Lock()
		e := tr.newEntry(t, o, key, meta, old.ref)
		t.replace(old, e)
		t.sh.record(func(st *state) { st.leaveJoin(old, e) })
		tr.emitLocked(t, diffOf([]*entry{e}, []*entry{old}))
		t.mu.Unlock()
		o.entries[tk] = e
		o.mu.Unlock()
		return e.ref, nil
	}
}

// List returns the presences on topic by key, passed through Fetch
// (Phoenix's list/1). The map is the caller's; the meta maps in it are
// shared and must not be modified. Push it to a client as "presence_state".
func (tr *Tracker) List(topic string) map[string]Presence {
	out := map[string]Presence{}
	if t := tr.lookupTopic(topic); t != nil {
		t.mu.RLock()
		out = t.listLocked()
		t.mu.RUnlock()
	}
	return tr.fetch(topic, out)
}

// GetByKey returns the presence of key on topic, passed through Fetch
// (Phoenix's get_by_key/2), and whether there is one.
func (tr *Tracker) GetByKey(topic, key string) (Presence, bool) {
	t := tr.lookupTopic(topic)
	if t == nil {
		return Presence{}, false
	}
	t.mu.RLock()
	metas := t.metasLocked(key)
	t.mu.RUnlock()
	if len(metas) == 0 {
		return Presence{}, false
	}
	p := Presence{Metas: metas}
	if tr.opts.Fetch != nil {
		if q, ok := tr.fetch(topic, map[string]Presence{key: p})[key]; ok {
			p = q
		}
	}
	return p, true
}

// Close stops the tracker: it sends the diffs still pending (including
// those held by CoalesceWindow) and waits for them, stops watching the
// owners' contexts, and stops replication after a last heartbeat with the
// changes not yet sent (and, with PermdownOnClose, a request to forget
// this node). Later changes return ErrClosed or do nothing; List and
// GetByKey keep answering from the last state.
func (tr *Tracker) Close() error {
	tr.closeMu.Lock()
	if tr.closed {
		tr.closeMu.Unlock()
		return nil
	}
	tr.closed = true
	tr.closeMu.Unlock()
	for i := range tr.shards {
		if r := tr.shards[i].repl; r != nil {
			r.stop()
		}
	}
	for i := range tr.owners {
		os := &tr.owners[i]
		os.mu.Lock()
		for _, o := range os.m {
			if o.stop != nil {
				o.stop()
			}
		}
		os.mu.Unlock()
	}
	for i := range tr.shards {
		sh := &tr.shards[i]
		sh.mu.RLock()
		topics := make([]*topic, 0, len(sh.topics))
		for _, t := range sh.topics {
			topics = append(topics, t)
		}
		sh.mu.RUnlock()
		for _, t := range topics {
			tr.flushNow(t)
		}
	}
	tr.bg.Wait()
	for i := range tr.shards {
		if r := tr.shards[i].repl; r != nil {
			r.finish()
		}
	}
	return nil
}

// owner returns the state of an owner, creating it when create is set.
func (tr *Tracker) owner(id any, create bool) *owner {
	h := maphash.Comparable(tr.seed, id)
	os := &tr.owners[h%ownerShards]
	os.mu.Lock()
	defer os.mu.Unlock()
	o := os.m[id]
	if o == nil && create {
		o = &owner{id: id, hash: uint16(h>>48) ^ uint16(maphash.String(tr.seed, tr.self.node)), entries: make(map[topicKey]*entry, 1)}
		if c, ok := id.(contexter); ok {
			o.ctx = c.Context()
			o.stop = context.AfterFunc(o.ctx, func() { tr.ownerStopped(o) })
		}
		os.m[id] = o
	}
	return o
}

// dropOwnerLocked forgets an owner that has nothing tracked; o.mu is held.
func (tr *Tracker) dropOwnerLocked(o *owner) {
	o.gone = true
	if o.stop != nil {
		o.stop()
	}
	os := &tr.owners[maphash.Comparable(tr.seed, o.id)%ownerShards]
	os.mu.Lock()
	if os.m[o.id] == o {
		delete(os.m, o.id)
	}
	os.mu.Unlock()
}

func cloneMeta(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
