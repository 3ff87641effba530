package presence

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/plumehq/plume/pubsub"
)

// This file is a port of Phoenix.Tracker.Shard's replication: heartbeats
// carrying deltas, transfer requests to catch up, and up, down and permdown
// detection of the other replicas, one shard at a time over the PubSub
// topic "phx_presence:<Name>_shard<N>".

// Replication messages, as pubsub events.
const (
	evHeartbeat        = "heartbeat"
	evTransferReq      = "transfer_req"
	evTransferAck      = "transfer_ack"
	evGracefulPermdown = "graceful_permdown"
)

func (r Replication) withDefaults() Replication {
	if r.Disabled {
		return r
	}
	if r.BroadcastPeriod <= 0 {
		r.BroadcastPeriod = 1500 * time.Millisecond
	}
	if r.MaxSilentPeriods <= 0 {
		r.MaxSilentPeriods = 10
	}
	if r.DownPeriod <= 0 {
		r.DownPeriod = r.BroadcastPeriod * time.Duration(r.MaxSilentPeriods) * 2
	}
	if r.PermdownPeriod <= 0 {
		r.PermdownPeriod = 20 * time.Minute
	}
	if r.ClockSamplePeriods <= 0 {
		r.ClockSamplePeriods = 2
	}
	if len(r.MaxDeltaSizes) == 0 {
		r.MaxDeltaSizes = []int{100, 1000, 10000}
	}
	if r.DownPeriod < 2*r.BroadcastPeriod {
		panic("presence: Replication.DownPeriod must be at least twice BroadcastPeriod")
	}
	if r.PermdownPeriod <= r.DownPeriod {
		panic("presence: Replication.PermdownPeriod must be larger than DownPeriod")
	}
	return r
}

// peer is another node's replica as this shard knows it (Tracker.Replica).
type peer struct {
	replica replica
	last    time.Time
	status  replicaStatus
}

// shardRepl replicates one shard. Its work runs on a mailbox: a goroutine
// that exists only while there is a heartbeat or a message to handle, so
// all of the fields below the mailbox are owned by whoever runs it.
type shardRepl struct {
	tr    *Tracker
	sh    *shard
	topic string

	mu      sync.Mutex
	q       []func()
	running bool
	stopped bool
	timer   *time.Timer

	peers   map[string]*peer
	pending []clockEntry
	silent  int
	samples int
	gens    []*state
}

func (tr *Tracker) startReplication(i int) {
	sh := &tr.shards[i]
	ro := tr.opts.Replication
	r := &shardRepl{
		tr:      tr,
		sh:      sh,
		topic:   fmt.Sprintf("phx_presence:%s_shard%d", tr.opts.Name, i),
		peers:   map[string]*peer{},
		silent:  ro.MaxSilentPeriods,
		samples: ro.ClockSamplePeriods,
	}
	sh.repl = r
	if err := tr.ps.Subscribe(r.topic, r); err != nil {
		tr.log.Error("presence: cannot subscribe for replication", "topic", r.topic, "err", err)
	}
	// The first heartbeat goes out after a random part of the first
	// quarter period, so that nodes started together do not beat in step.
	r.schedule(randomDuration(ro.BroadcastPeriod / 4))
}

func randomDuration(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(max)))
	if err != nil {
		return 0
	}
	return time.Duration(n.Int64())
}

// Deliver receives the other nodes' replication messages.
func (r *shardRepl) Deliver(m *pubsub.Message) {
	r.post(func() { r.handle(m) })
}

func (r *shardRepl) post(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	r.q = append(r.q, f)
	if !r.running {
		r.running = true
		r.tr.bg.Add(1)
		go r.run()
	}
}

func (r *shardRepl) run() {
	defer r.tr.bg.Done()
	for {
		r.mu.Lock()
		if len(r.q) == 0 {
			r.running = false
			r.q = nil
			r.mu.Unlock()
			return
		}
		f := r.q[0]
		r.q[0] = nil
		r.q = r.q[1:]
		r.mu.Unlock()
		f()
	}
}

func (r *shardRepl) schedule(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped {
		r.timer = time.AfterFunc(d, func() { r.post(r.heartbeat) })
	}
}

// stop refuses further work; Close then waits for the mailbox and calls
// finish.
func (r *shardRepl) stop() {
	r.mu.Lock()
	r.stopped = true
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Unlock()
	r.tr.ps.Unsubscribe(r.topic, r)
}

// finish sends the changes not yet sent and, with PermdownOnClose, asks
// the other nodes to forget this one.
func (r *shardRepl) finish() {
	r.sendDelta(false)
	if r.tr.opts.Replication.PermdownOnClose {
		r.broadcast(evGracefulPermdown, &wireMsg{Replica: wireReplicaOf(r.tr.self)})
	}
}

func (r *shardRepl) heartbeat() {
	r.sendDelta(true)
	r.requestTransfers()
	r.detectDowns()
	r.schedule(r.tr.opts.Replication.BroadcastPeriod)
}

// sendDelta broadcasts the shard's delta in a heartbeat if it holds
// anything, or else, every MaxSilentPeriods, an empty heartbeat.
func (r *shardRepl) sendDelta(periodic bool) {
	ro := r.tr.opts.Replication
	sh := r.sh
	var d, seed *state
	sh.crdtMu.Lock()
	st := sh.st
	if st.hasDelta() {
		d = st.delta
		st.resetDelta()
		st.compact()
		if len(r.gens) == 0 {
			seed = st.delta.cloneDelta()
		}
	}
	clocks := st.clocks()
	sh.crdtMu.Unlock()
	switch {
	case d != nil:
		r.broadcast(evHeartbeat, &wireMsg{Replica: wireReplicaOf(r.tr.self), Delta: encodeState(d), Clocks: encodeClock(clocks)})
		r.silent = 0
		r.gens = pushGeneration(seed, r.gens, d, ro.MaxDeltaSizes)
	case !periodic:
	case r.silent >= ro.MaxSilentPeriods:
		r.broadcast(evHeartbeat, &wireMsg{Replica: wireReplicaOf(r.tr.self), Clocks: encodeClock(clocks)})
		r.silent = 0
	default:
		r.silent++
	}
}

// requestTransfers asks, every ClockSamplePeriods heartbeats, the replicas
// whose clocks this shard has not caught up with for what it misses.
func (r *shardRepl) requestTransfers() {
	if r.samples > 1 {
		r.samples--
		return
	}
	r.samples = r.tr.opts.Replication.ClockSamplePeriods
	r.sh.crdtMu.Lock()
	mine := r.sh.st.clocks()
	r.sh.crdtMu.Unlock()
	set := appendClock(r.pending, clockEntry{r.tr.self, mine})
	r.pending = nil
	for _, c := range set {
		if c.replica != r.tr.self {
			msg := &wireMsg{Replica: wireReplicaOf(r.tr.self), Ref: newMsgRef(), Clocks: encodeClock(mine)}
			r.direct(c.replica.node, evTransferReq, msg)
		}
	}
}

// detectDowns marks replicas down, then forgets them, as their heartbeats
// stay away.
func (r *shardRepl) detectDowns() {
	ro := r.tr.opts.Replication
	now := time.Now()
	for _, name := range slices.Sorted(maps.Keys(r.peers)) {
		p := r.peers[name]
		switch downtime := now.Sub(p.last); {
		case downtime > ro.PermdownPeriod:
			delete(r.peers, name)
			if p.status == statusUp {
				r.down(p.replica)
			}
			r.permdown(p.replica)
		case downtime > ro.DownPeriod && p.status == statusUp:
			p.status = statusDown
			r.down(p.replica)
		}
	}
}

func (r *shardRepl) handle(m *pubsub.Message) {
	var w wireMsg
	if err := json.Unmarshal(m.Payload, &w); err != nil {
		r.tr.log.Error("presence: bad replication message", "topic", m.Topic, "event", m.Event, "err", err)
		return
	}
	from := w.Replica.replica()
	if from.node == r.tr.self.node {
		return
	}
	switch m.Event {
	case evHeartbeat:
		r.onHeartbeat(from, &w)
	case evTransferReq:
		r.sh.crdtMu.Lock()
		data := extractForTransfer(r.sh.st, r.gens, from.node, decodeClock(w.Clocks))
		r.sh.crdtMu.Unlock()
		r.direct(from.node, evTransferAck, &wireMsg{Replica: wireReplicaOf(r.tr.self), Ref: w.Ref, State: encodeState(data)})
	case evTransferAck:
		if w.State == nil {
			return
		}
		d := decodeState(w.State, from)
		r.merge(d)
		if !d.isDelta {
			r.gens = nil
		} else {
			r.pushGeneration(d)
		}
	case evGracefulPermdown:
		if p := r.peers[from.node]; p != nil && p.replica == from {
			if p.status == statusUp {
				r.down(from)
			}
			r.permdown(from)
		}
	}
}

// updateRecording records deltas while the shard knows other replicas.
func (r *shardRepl) updateRecording() {
	on := len(r.peers) > 0
	r.sh.crdtMu.Lock()
	changed := r.sh.st.recording != on
	r.sh.st.setRecording(on)
	r.sh.crdtMu.Unlock()
	if changed {
		// Generations from before a gap in recording could answer a
		// transfer request with less than they claim.
		r.gens = nil
	}
}

func (r *shardRepl) onHeartbeat(from replica, w *wireMsg) {
	fresh := r.putHeartbeat(from)
	if w.Delta != nil {
		d := decodeState(w.Delta, from)
		r.merge(d)
		r.pushGeneration(d)
	}
	r.pending = appendClock(r.pending, clockEntry{from, decodeClock(w.Clocks)})
	if fresh {
		// A replica we had not heard from: introduce ourselves at once and
		// ask for what it holds, instead of waiting for the next silent
		// heartbeat (up to MaxSilentPeriods) and clock sample. This is
		// what makes a node that starts, or comes back, see every
		// presence within a couple of seconds. The other side does the
		// same on our heartbeat, once.
		r.sh.crdtMu.Lock()
		mine := r.sh.st.clocks()
		r.sh.crdtMu.Unlock()
		r.direct(from.node, evHeartbeat, &wireMsg{Replica: wireReplicaOf(r.tr.self), Clocks: encodeClock(mine)})
		r.direct(from.node, evTransferReq, &wireMsg{Replica: wireReplicaOf(r.tr.self), Ref: newMsgRef(), Clocks: encodeClock(mine)})
	}
}

// putHeartbeat records a heartbeat: an unknown replica comes up, a down one
// comes back, and the same node with a new vsn is a restart: the old
// replica goes down for good and the new one comes up. It reports whether
// the replica is new or back.
func (r *shardRepl) putHeartbeat(from replica) (fresh bool) {
	now := time.Now()
	p := r.peers[from.node]
	if p == nil {
		r.peers[from.node] = &peer{replica: from, last: now, status: statusUp}
		r.updateRecording()
		r.up(from)
		return true
	}
	prev, prevStatus := p.replica, p.status
	p.replica, p.last, p.status = from, now, statusUp
	switch {
	case prev == from && prevStatus == statusDown:
		r.up(from)
	case prev != from && prevStatus == statusUp:
		r.down(prev)
		r.permdown(prev)
		r.up(from)
	case prev != from:
		r.permdown(prev)
		r.up(from)
	default:
		return false
	}
	return true
}

func (r *shardRepl) pushGeneration(d *state) {
	var seed *state
	if len(r.gens) == 0 {
		r.sh.crdtMu.Lock()
		seed = r.sh.st.delta.cloneDelta()
		r.sh.crdtMu.Unlock()
	}
	r.gens = pushGeneration(seed, r.gens, d, r.tr.opts.Replication.MaxDeltaSizes)
}

func (r *shardRepl) merge(remote *state) {
	r.sh.crdtMu.Lock()
	joins, leaves := r.sh.st.merge(remote)
	r.sh.crdtMu.Unlock()
	r.tr.applyRemote(joins, leaves, true, true)
}

func (r *shardRepl) up(rep replica) {
	r.tr.log.Debug("presence: replica up", "shard", r.topic, "node", rep.node)
	r.sh.crdtMu.Lock()
	joins := r.sh.st.replicaUp(rep)
	r.setDownLocked(rep, false)
	r.sh.crdtMu.Unlock()
	r.tr.applyRemote(joins, nil, false, true)
}

func (r *shardRepl) down(rep replica) {
	r.tr.log.Info("presence: replica down", "shard", r.topic, "node", rep.node)
	r.sh.crdtMu.Lock()
	leaves := r.sh.st.replicaDown(rep)
	r.setDownLocked(rep, true)
	r.sh.crdtMu.Unlock()
	r.tr.applyRemote(nil, leaves, false, true)
}

// permdown forgets a replica: its entries go without a diff, since their
// leaves were sent when it went down.
func (r *shardRepl) permdown(rep replica) {
	r.tr.log.Info("presence: replica permanently down", "shard", r.topic, "node", rep.node)
	r.sh.crdtMu.Lock()
	removed := r.sh.st.removeDownReplica(rep)
	r.setDownLocked(rep, false)
	r.sh.crdtMu.Unlock()
	r.gens = removeDownReplicaGens(r.gens, rep)
	r.tr.applyRemote(nil, removed, true, false)
	if p := r.peers[rep.node]; p != nil && p.replica == rep {
		delete(r.peers, rep.node)
	}
	r.updateRecording()
}

// setDownLocked updates the set of hidden replicas; crdtMu is held.
func (r *shardRepl) setDownLocked(rep replica, down bool) {
	cur := r.sh.downSet()
	if _, ok := cur[rep]; ok == down {
		return
	}
	next := maps.Clone(cur)
	if next == nil {
		next = map[replica]struct{}{}
	}
	if down {
		next[rep] = struct{}{}
	} else {
		delete(next, rep)
	}
	if len(next) == 0 {
		r.sh.down.Store(nil)
	} else {
		r.sh.down.Store(&next)
	}
}

// applyRemote applies entries that joined and left on other replicas to
// the topics: modify changes the lists, emit sends the diff.
func (tr *Tracker) applyRemote(joins, leaves []*entry, modify, emit bool) {
	if len(joins) == 0 && len(leaves) == 0 {
		return
	}
	type change struct{ joins, leaves []*entry }
	byTopic := map[string]*change{}
	var order []string
	get := func(name string) *change {
		c := byTopic[name]
		if c == nil {
			c = &change{}
			byTopic[name] = c
			order = append(order, name)
		}
		return c
	}
	for _, e := range leaves {
		c := get(e.topic)
		c.leaves = append(c.leaves, e)
	}
	for _, e := range joins {
		c := get(e.topic)
		c.joins = append(c.joins, e)
	}
	for _, name := range order {
		c := byTopic[name]
		t := tr.lockTopic(name)
		if modify {
			for _, e := range c.leaves {
				t.remove(e)
			}
			for _, e := range c.joins {
				e.t = t
				t.add(e)
			}
		}
		if emit {
			tr.emitLocked(t, diffOf(c.joins, c.leaves))
		}
		empty := t.count == 0
		t.mu.Unlock()
		if empty && !emit {
			tr.dropIfIdle(t)
		}
	}
}

func (r *shardRepl) broadcast(event string, w *wireMsg) {
	b, err := json.Marshal(w)
	if err != nil {
		r.tr.log.Error("presence: cannot encode replication message", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.tr.ps.BroadcastFrom(ctx, r, &pubsub.Message{Topic: r.topic, Event: event, Payload: b}); err != nil {
		r.tr.log.Warn("presence: replication broadcast failed", "topic", r.topic, "event", event, "err", err)
	}
}

func (r *shardRepl) direct(node, event string, w *wireMsg) {
	b, err := json.Marshal(w)
	if err != nil {
		r.tr.log.Error("presence: cannot encode replication message", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.tr.ps.DirectBroadcast(ctx, node, &pubsub.Message{Topic: r.topic, Event: event, Payload: b}); err != nil {
		r.tr.log.Warn("presence: replication message failed", "topic", r.topic, "event", event, "node", node, "err", err)
	}
}

func newMsgRef() string {
	var b [8]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// The wire format of replication messages: JSON, Plume nodes only.

type wireMsg struct {
	Replica wireReplica `json:"replica"`
	Ref     string      `json:"ref,omitempty"`
	// Delta is a heartbeat's delta; nil for an empty heartbeat.
	Delta *wireState `json:"delta,omitempty"`
	// Clocks is the sender's context, in heartbeats and transfer requests.
	Clocks []wireClock `json:"clocks,omitempty"`
	// State answers a transfer request: a delta or the whole set.
	State *wireState `json:"state,omitempty"`
}

type wireReplica struct {
	Node string `json:"n"`
	Vsn  int64  `json:"v"`
}

func wireReplicaOf(r replica) wireReplica { return wireReplica{r.node, r.vsn} }

func (w wireReplica) replica() replica { return replica{w.Node, w.Vsn} }

type wireClock struct {
	Node  string `json:"n"`
	Vsn   int64  `json:"v"`
	Clock uint64 `json:"c"`
}

type wireCloud struct {
	Node   string   `json:"n"`
	Vsn    int64    `json:"v"`
	Clocks []uint64 `json:"c"`
}

type wireValue struct {
	Node  string          `json:"n"`
	Vsn   int64           `json:"v"`
	Clock uint64          `json:"c"`
	Topic string          `json:"t"`
	Key   string          `json:"k"`
	Meta  json.RawMessage `json:"m"`
}

type wireState struct {
	Delta   bool        `json:"delta,omitempty"`
	Context []wireClock `json:"context,omitempty"`
	Clouds  []wireCloud `json:"clouds,omitempty"`
	Values  []wireValue `json:"values,omitempty"`
	Start   []wireClock `json:"start,omitempty"`
	End     []wireClock `json:"end,omitempty"`
}

func encodeClock(c clock) []wireClock {
	out := make([]wireClock, 0, len(c))
	for r, n := range c {
		out = append(out, wireClock{r.node, r.vsn, n})
	}
	return out
}

func decodeClock(ws []wireClock) clock {
	c := make(clock, len(ws))
	for _, w := range ws {
		c[replica{w.Node, w.Vsn}] = w.Clock
	}
	return c
}

func encodeState(s *state) *wireState {
	w := &wireState{Delta: s.isDelta, Context: encodeClock(s.context)}
	for r, m := range s.clouds {
		if len(m) > 0 {
			w.Clouds = append(w.Clouds, wireCloud{r.node, r.vsn, slices.Sorted(maps.Keys(m))})
		}
	}
	for t, e := range s.values {
		mb, err := e.metaJSON()
		if err != nil {
			continue
		}
		w.Values = append(w.Values, wireValue{t.replica.node, t.replica.vsn, t.clock, e.topic, e.key, mb})
	}
	if s.isDelta {
		w.Start, w.End = encodeClock(s.start), encodeClock(s.end)
	}
	return w
}

// decodeState turns a received delta or set into a state whose values are
// new entries, not yet in any topic.
func decodeState(w *wireState, from replica) *state {
	s := &state{isDelta: w.Delta, replica: from, context: decodeClock(w.Context), clouds: clouds{},
		values: make(map[dot]*entry, len(w.Values))}
	for _, c := range w.Clouds {
		r := replica{c.Node, c.Vsn}
		m := make(map[uint64]struct{}, len(c.Clocks))
		for _, n := range c.Clocks {
			m[n] = struct{}{}
		}
		s.clouds[r] = m
	}
	for _, v := range w.Values {
		var meta map[string]any
		if err := json.Unmarshal(v.Meta, &meta); err != nil || meta == nil {
			continue
		}
		ref, _ := meta["phx_ref"].(string)
		e := &entry{topic: v.Topic, key: v.Key, meta: meta, ref: ref, tag: dot{replica{v.Node, v.Vsn}, v.Clock}}
		enc := []byte(v.Meta)
		e.enc.Store(&enc)
		s.values[e.tag] = e
	}
	if w.Delta {
		s.start, s.end = decodeClock(w.Start), decodeClock(w.End)
	}
	return s
}
