// Package pubsub is Plume's publish/subscribe layer, Phoenix.PubSub for Go: a
// sharded in-memory registry of topic subscribers on this node, plus an
// optional [Adapter] that carries broadcasts to other nodes (Redis, NATS).
//
// A broadcast is dispatched synchronously on the caller's goroutine to every
// local subscriber, so one publisher's messages reach each subscriber in the
// order sent. Subscribers must not block in [Subscriber.Deliver]: channels
// queue the message and return.
package pubsub

import (
	"context"
	"errors"
	"hash/maphash"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned by broadcasts after [PubSub.Close].
var ErrClosed = errors.New("pubsub: closed")

// Message is what travels through PubSub: a topic, an event and a payload
// that is JSON text or, when Binary, opaque bytes. Messages are immutable once
// broadcast; every subscriber sees the same *Message.
type Message struct {
	Topic   string
	Event   string
	Payload []byte
	Binary  bool

	cache encodeCache
}

// Encoded returns the value cached under key, computing it with encode on
// first use. Fastlane uses it to serialize a broadcast once per serializer,
// however many subscribers share that serializer.
func (m *Message) Encoded(key any, encode func() (any, error)) (any, error) {
	return m.cache.get(key, encode)
}

// encodeCache holds a message's encoded forms. Reads are lock-free, since
// every subscriber of a broadcast looks its form up; the mutex only orders
// the first encode of each key.
type encodeCache struct {
	mu      sync.Mutex
	entries [3]atomic.Pointer[cacheEntry]
}

type cacheEntry struct {
	key any
	val any
	err error
}

func (c *encodeCache) get(key any, encode func() (any, error)) (any, error) {
	for i := range c.entries {
		e := c.entries[i].Load()
		if e == nil {
			break
		}
		if e.key == key {
			return e.val, e.err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.entries {
		e := c.entries[i].Load()
		if e == nil {
			v, err := encode()
			c.entries[i].Store(&cacheEntry{key, v, err})
			return v, err
		}
		if e.key == key {
			return e.val, e.err
		}
	}
	return encode() // more serializers than slots: encode without caching
}

// Subscriber receives messages. Deliver runs on the broadcaster's goroutine
// while the topic's subscriber list is read-locked: it must not block, and
// must not subscribe or unsubscribe synchronously (hand such work to another
// goroutine). Subscribers are compared with ==, so implement it on a pointer
// type.
type Subscriber interface {
	Deliver(m *Message)
}

// Func returns a Subscriber that calls f. Each call returns a distinct
// subscriber, to be kept for Unsubscribe.
func Func(f func(m *Message)) Subscriber { return &funcSubscriber{f} }

type funcSubscriber struct{ f func(*Message) }

func (s *funcSubscriber) Deliver(m *Message) { s.f(m) }

// Adapter carries broadcasts between nodes. Implementations live in their own
// modules (pubsub/redis, pubsub/nats). A PubSub calls Start once, then
// Subscribe when a topic gets its first local subscriber and Unsubscribe when
// it loses its last, so that a node only receives topics it has subscribers
// for.
type Adapter interface {
	// NodeName is this node's name, unique in the cluster.
	NodeName() string
	// Start begins receiving; deliver must be called for every message from
	// another node, and never for this node's own broadcasts.
	Start(ctx context.Context, deliver func(*Message)) error
	// Broadcast sends m to every other node subscribed to m.Topic.
	Broadcast(ctx context.Context, m *Message) error
	// DirectBroadcast sends m to the named node only.
	DirectBroadcast(ctx context.Context, node string, m *Message) error
	// Subscribe and Unsubscribe follow the local subscriber set. They are
	// called in order, under a registry lock, and must not block on the
	// network: record the wish and apply it asynchronously, resubscribing
	// after a reconnect.
	Subscribe(topic string) error
	Unsubscribe(topic string) error
	// Close stops the adapter.
	Close() error
}

// Options configures a PubSub. The zero value is a single node with a
// generated node name.
type Options struct {
	// NodeName names this node; defaults to the adapter's name, else
	// hostname plus pid.
	NodeName string
	// Adapter carries broadcasts to other nodes; nil means this node only.
	Adapter Adapter
	// Shards is the number of registry shards; default 64.
	Shards int
	// OnError, if set, hears adapter failures (also returned to callers).
	OnError func(op string, err error)
}

// PubSub is a topic registry plus an optional adapter to other nodes.
type PubSub struct {
	node    string
	adapter Adapter
	seed    maphash.Seed
	shards  []shard
	onError func(string, error)
	closed  atomic.Bool
	cancel  context.CancelFunc
	errs    atomic.Uint64
}

type shard struct {
	mu     sync.RWMutex
	topics map[string]*topicSubs
}

// topicSubs holds one topic's subscribers. Subscribe and Unsubscribe are
// O(1) (slice plus index, swap-remove), so a join or leave storm on a large
// topic stays cheap; a broadcast holds the read lock while it delivers.
type topicSubs struct {
	mu   sync.RWMutex
	list []Subscriber
	idx  map[Subscriber]int
}

// New returns a PubSub. With an adapter it starts it; the error is the
// adapter's.
func New(opts Options) (*PubSub, error) {
	n := opts.Shards
	if n <= 0 {
		n = 64
	}
	ps := &PubSub{
		adapter: opts.Adapter,
		seed:    maphash.MakeSeed(),
		shards:  make([]shard, n),
		onError: opts.OnError,
	}
	for i := range ps.shards {
		ps.shards[i].topics = make(map[string]*topicSubs)
	}
	switch {
	case opts.NodeName != "":
		ps.node = opts.NodeName
	case opts.Adapter != nil:
		ps.node = opts.Adapter.NodeName()
	default:
		ps.node = DefaultNodeName()
	}
	if ps.adapter != nil {
		ctx, cancel := context.WithCancel(context.Background())
		ps.cancel = cancel
		if err := ps.adapter.Start(ctx, ps.deliverRemote); err != nil {
			cancel()
			return nil, err
		}
	}
	return ps, nil
}

// NewLocal returns a single-node PubSub; it cannot fail.
func NewLocal() *PubSub {
	ps, _ := New(Options{})
	return ps
}

// DefaultNodeName is hostname plus pid, unique per process on a machine.
func DefaultNodeName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "node"
	}
	return h + "-" + strconv.Itoa(os.Getpid())
}

// NodeName returns this node's name.
func (ps *PubSub) NodeName() string { return ps.node }

// Errors returns how many adapter operations have failed.
func (ps *PubSub) Errors() uint64 { return ps.errs.Load() }

func (ps *PubSub) shard(topic string) *shard {
	return &ps.shards[maphash.String(ps.seed, topic)%uint64(len(ps.shards))]
}

// Subscribe adds s to topic. Subscribing a subscriber that is already
// subscribed to the topic does nothing.
func (ps *PubSub) Subscribe(topic string, s Subscriber) error {
	sh := ps.shard(topic)
	sh.mu.Lock()
	ts := sh.topics[topic]
	first := ts == nil
	if first {
		ts = &topicSubs{idx: make(map[Subscriber]int)}
		sh.topics[topic] = ts
	}
	ts.mu.Lock()
	if _, dup := ts.idx[s]; !dup {
		ts.idx[s] = len(ts.list)
		ts.list = append(ts.list, s)
	}
	ts.mu.Unlock()
	var err error
	if first && ps.adapter != nil {
		// Under the shard lock, so the adapter sees subscribe and
		// unsubscribe of a topic in the order they happened.
		if err = ps.adapter.Subscribe(topic); err != nil {
			ps.fail("subscribe", err)
		}
	}
	sh.mu.Unlock()
	return err
}

// Unsubscribe removes the subscription of s to topic.
func (ps *PubSub) Unsubscribe(topic string, s Subscriber) {
	sh := ps.shard(topic)
	sh.mu.Lock()
	ts := sh.topics[topic]
	if ts == nil {
		sh.mu.Unlock()
		return
	}
	ts.mu.Lock()
	i, ok := ts.idx[s]
	if ok {
		last := len(ts.list) - 1
		if i != last {
			moved := ts.list[last]
			ts.list[i] = moved
			ts.idx[moved] = i
		}
		ts.list[last] = nil
		ts.list = ts.list[:last]
		delete(ts.idx, s)
	}
	empty := len(ts.list) == 0
	ts.mu.Unlock()
	if empty {
		delete(sh.topics, topic)
		if ps.adapter != nil {
			if err := ps.adapter.Unsubscribe(topic); err != nil {
				ps.fail("unsubscribe", err)
			}
		}
	}
	sh.mu.Unlock()
}

// Subscribers returns how many local subscribers topic has.
func (ps *PubSub) Subscribers(topic string) int {
	sh := ps.shard(topic)
	sh.mu.RLock()
	ts := sh.topics[topic]
	sh.mu.RUnlock()
	if ts == nil {
		return 0
	}
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	return len(ts.list)
}

// Broadcast sends m to every subscriber of m.Topic on every node.
func (ps *PubSub) Broadcast(ctx context.Context, m *Message) error {
	return ps.BroadcastFrom(ctx, nil, m)
}

// BroadcastFrom is Broadcast that skips the subscriber from on this node.
// Like Phoenix, it hands the message to the adapter first, then delivers
// locally; an adapter error is returned after local delivery.
func (ps *PubSub) BroadcastFrom(ctx context.Context, from Subscriber, m *Message) error {
	_, err := ps.Publish(ctx, from, m)
	return err
}

// Publish is BroadcastFrom that also reports how many local subscribers
// received m; from may be nil.
func (ps *PubSub) Publish(ctx context.Context, from Subscriber, m *Message) (delivered int, err error) {
	if ps.closed.Load() {
		return 0, ErrClosed
	}
	if ps.adapter != nil {
		if err = ps.adapter.Broadcast(ctx, m); err != nil {
			ps.fail("broadcast", err)
		}
	}
	return ps.dispatch(from, m), err
}

// LocalBroadcast delivers m to this node's subscribers only and returns how
// many received it.
func (ps *PubSub) LocalBroadcast(m *Message) int { return ps.dispatch(nil, m) }

// LocalBroadcastFrom is LocalBroadcast that skips from.
func (ps *PubSub) LocalBroadcastFrom(from Subscriber, m *Message) int { return ps.dispatch(from, m) }

// DirectBroadcast delivers m to the subscribers on one named node. For this
// node it is a local broadcast.
func (ps *PubSub) DirectBroadcast(ctx context.Context, node string, m *Message) error {
	if ps.closed.Load() {
		return ErrClosed
	}
	if node == ps.node {
		ps.dispatch(nil, m)
		return nil
	}
	if ps.adapter == nil {
		return errors.New("pubsub: no adapter to reach node " + strconv.Quote(node))
	}
	if err := ps.adapter.DirectBroadcast(ctx, node, m); err != nil {
		ps.fail("direct_broadcast", err)
		return err
	}
	return nil
}

func (ps *PubSub) deliverRemote(m *Message) { ps.dispatch(nil, m) }

func (ps *PubSub) dispatch(from Subscriber, m *Message) int {
	sh := ps.shard(m.Topic)
	sh.mu.RLock()
	ts := sh.topics[m.Topic]
	sh.mu.RUnlock()
	if ts == nil {
		return 0
	}
	n := 0
	ts.mu.RLock()
	for _, s := range ts.list {
		if from != nil && s == from {
			continue
		}
		s.Deliver(m)
		n++
	}
	ts.mu.RUnlock()
	return n
}

func (ps *PubSub) fail(op string, err error) {
	ps.errs.Add(1)
	if ps.onError != nil {
		ps.onError(op, err)
	}
}

// Close stops the adapter; later broadcasts fail with ErrClosed.
func (ps *PubSub) Close() error {
	if ps.closed.Swap(true) {
		return nil
	}
	if ps.adapter != nil {
		ps.cancel()
		return ps.adapter.Close()
	}
	return nil
}
