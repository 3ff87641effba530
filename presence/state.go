package presence

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// replica is one incarnation of this tracker: the node name plus a version
// picked at start, so that a restarted node is a new replica (Phoenix's
// {node, vsn}).
type replica struct {
	node string
	vsn  int64
}

// dot is the tag of one added entry: the replica that added it and that
// replica's shard clock at the time. Dots are unique, so an observed-remove
// set can tell a removal (a dot seen before, now absent) from an addition it
// has not seen yet.
type dot struct {
	replica replica
	clock   uint64
}

// newVsn is Phoenix's replica vsn: system time in µs plus a unique integer.
func newVsn() int64 {
	var b [2]byte
	rand.Read(b[:])
	return time.Now().UnixMicro()<<8 | int64(b[0])
}

// entry is one tracked meta: Phoenix's values table row
// {topic, pid, key} → {meta, tag}. It never changes once made; an update
// replaces it.
type entry struct {
	t     *topic // set once the entry is in its topic
	topic string
	key   string
	meta  map[string]any // includes phx_ref, shared read-only
	ref   string
	owner *owner // nil for an entry replicated from another node
	tag   dot
	enc   atomic.Pointer[[]byte] // meta as JSON, made on first use
}

// metaJSON returns the meta encoded as JSON, encoding it once.
func (e *entry) metaJSON() ([]byte, error) {
	if p := e.enc.Load(); p != nil {
		return *p, nil
	}
	b, err := appendMeta(nil, e.meta)
	if err != nil {
		return nil, err
	}
	e.enc.Store(&b)
	return b, nil
}

type shard struct {
	mu     sync.RWMutex
	topics map[string]*topic

	// crdtMu guards st, the shard's replicated set (Tracker.State): its
	// clock, context and delta. Local changes take it inside the topic's
	// lock, for a few map operations; replication takes it alone.
	crdtMu sync.Mutex
	st     *state
	// down holds the replicas that are down, whose entries stay but are
	// hidden from List and GetByKey. Copy on write; nil when none.
	down atomic.Pointer[map[replica]struct{}]
	repl *shardRepl // nil when replication is disabled
}

// record applies a local change to the shard's replicated set.
func (sh *shard) record(f func(st *state)) {
	sh.crdtMu.Lock()
	f(sh.st)
	sh.crdtMu.Unlock()
}

func (sh *shard) downSet() map[replica]struct{} {
	if p := sh.down.Load(); p != nil {
		return *p
	}
	return nil
}

// topic is one topic's presences and its outgoing diffs.
//
// Reads take mu for reading and copy; writers take it for writing only to
// edit the maps and queue a diff: O(1), or O(metas of the key) for a
// removal. Go's RWMutex lets waiting readers in before the next writer, so a
// reader waits for at most one such short section even during a join
// storm. Copy-on-write snapshots were rejected: each write would copy the
// whole topic, which makes 10,000 joins into one topic cost 50 million
// copies, while List builds a fresh map for its caller anyway.
type topic struct {
	name string
	sh   *shard

	mu    sync.RWMutex
	keys  map[string][]*entry // metas of each key, oldest first
	count int
	dead  bool // removed from its shard; look it up again

	// Outgoing diffs, under mu. queue is in order; running is set while a
	// goroutine is publishing it. pending collects diffs during a
	// coalescing window, flushed into queue by timer.
	queue   []*rawDiff
	running bool
	pending coalescer
	timer   *time.Timer

	// view is the topic as HandleMetas has been told it; only the
	// publishing goroutine touches it.
	view map[string]Presence
}

type topicKey struct{ topic, key string }

// owner is a tracking owner (Phoenix's tracked pid) and what it tracks.
type owner struct {
	id   any
	hash uint16
	ctx  context.Context
	stop func() bool // stops the context watch

	mu      sync.Mutex
	entries map[topicKey]*entry
	// gone is set once the owner left the index; look it up again.
	gone bool
}

const ownerShards = 32

type ownerShard struct {
	mu sync.Mutex
	m  map[any]*owner
}

// shardFor maps a topic to its shard with a hash that is the same on every
// node (Phoenix's phash2(topic, pool_size)): replication pairs shard N of
// each node.
func (tr *Tracker) shardFor(name string) *shard { return &tr.shards[tr.shardIndex(name)] }

func (tr *Tracker) shardIndex(name string) int { return int(fnv1a(name) % uint64(len(tr.shards))) }

func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func (tr *Tracker) lookupTopic(name string) *topic {
	sh := tr.shardFor(name)
	sh.mu.RLock()
	t := sh.topics[name]
	sh.mu.RUnlock()
	return t
}

// lockTopic returns the topic, created if need be, with its mu held.
func (tr *Tracker) lockTopic(name string) *topic {
	sh := tr.shardFor(name)
	for {
		sh.mu.RLock()
		t := sh.topics[name]
		sh.mu.RUnlock()
		if t == nil {
			sh.mu.Lock()
			if t = sh.topics[name]; t == nil {
				t = &topic{name: name, sh: sh, keys: make(map[string][]*entry)}
				sh.topics[name] = t
			}
			sh.mu.Unlock()
		}
		t.mu.Lock()
		if !t.dead {
			return t
		}
		t.mu.Unlock()
	}
}

// dropIfIdle removes a topic with no presences and no diffs in flight.
func (tr *Tracker) dropIfIdle(t *topic) {
	sh := t.sh
	sh.mu.Lock()
	t.mu.Lock()
	if t.count == 0 && !t.running && len(t.queue) == 0 && t.timer == nil && !t.pending.any() && !t.dead && sh.topics[t.name] == t {
		delete(sh.topics, t.name)
		t.dead = true
	}
	t.mu.Unlock()
	sh.mu.Unlock()
}

// newEntry makes an entry with a fresh phx_ref (and phx_ref_prev when
// replacing prev). Its tag is set when it is recorded in the shard's set.
func (tr *Tracker) newEntry(t *topic, o *owner, key string, meta map[string]any, prev string) *entry {
	m := make(map[string]any, len(meta)+2)
	for k, v := range meta {
		m[k] = v
	}
	ref := newRef(o.hash)
	m["phx_ref"] = ref
	if prev != "" {
		m["phx_ref_prev"] = prev
	}
	return &entry{t: t, topic: t.name, key: key, meta: m, ref: ref, owner: o}
}

var refSeq atomic.Uint32

// newRef returns a phx_ref as Phoenix makes it: URL-safe base64 of 12 bytes,
// a 64-bit nanosecond time, a 16-bit hash of node and owner and a 16-bit
// unique counter: 16 characters.
func newRef(hash uint16) string {
	var b [12]byte
	binary.BigEndian.PutUint64(b[0:], uint64(time.Now().UnixNano()))
	binary.BigEndian.PutUint16(b[8:], hash)
	binary.BigEndian.PutUint16(b[10:], uint16(refSeq.Add(1)))
	return base64.URLEncoding.EncodeToString(b[:])
}

func (t *topic) add(e *entry) {
	t.keys[e.key] = append(t.keys[e.key], e)
	t.count++
}

func (t *topic) remove(e *entry) {
	es := t.keys[e.key]
	i := slices.Index(es, e)
	if i < 0 {
		return
	}
	if len(es) == 1 {
		delete(t.keys, e.key)
	} else {
		t.keys[e.key] = slices.Delete(es, i, i+1)
	}
	t.count--
}

func (t *topic) replace(old, e *entry) {
	es := t.keys[old.key]
	if i := slices.Index(es, old); i >= 0 {
		es[i] = e
	}
}

// listLocked copies the topic's presences, with one backing array for all
// metas, leaving out entries of down replicas; t.mu is held for reading.
func (t *topic) listLocked() map[string]Presence {
	down := t.sh.downSet()
	out := make(map[string]Presence, len(t.keys))
	all := make([]map[string]any, 0, t.count)
	for k, es := range t.keys {
		start := len(all)
		for _, e := range es {
			if down != nil {
				if _, hidden := down[e.tag.replica]; hidden {
					continue
				}
			}
			all = append(all, e.meta)
		}
		if len(all) > start {
			out[k] = Presence{Metas: all[start:len(all):len(all)]}
		}
	}
	return out
}

// metasLocked returns the visible metas of a key; t.mu is held for reading.
func (t *topic) metasLocked(key string) []map[string]any {
	down := t.sh.downSet()
	es := t.keys[key]
	metas := make([]map[string]any, 0, len(es))
	for _, e := range es {
		if down != nil {
			if _, hidden := down[e.tag.replica]; hidden {
				continue
			}
		}
		metas = append(metas, e.meta)
	}
	return metas
}

func sortByClock(es []*entry) {
	slices.SortFunc(es, func(a, b *entry) int {
		switch {
		case a.tag.clock < b.tag.clock:
			return -1
		case a.tag.clock > b.tag.clock:
			return 1
		}
		return 0
	})
}
