package pubsubtest

import (
	"context"
	"errors"
	"strconv"
	"sync"

	"github.com/plumehq/plume/pubsub"
)

// Broker is an in-memory broker that connects PubSub nodes in one process:
// a stand-in for Redis or NATS in tests of cluster behaviour (broadcasts
// across nodes, DirectBroadcast, a node going away). Like a real adapter it
// carries messages as envelopes (pubsub.MarshalEnvelope), delivers them on
// each node's own goroutine in the order each publisher sent them, only for
// topics the node subscribes to, and silently drops a DirectBroadcast to a
// node that is not there.
type Broker struct {
	mu    sync.Mutex
	nodes map[string][]*MemAdapter // started, not closed
}

// NewBroker returns a Broker with no nodes.
func NewBroker() *Broker { return &Broker{nodes: make(map[string][]*MemAdapter)} }

// NewCluster returns n adapters, named "node1" to "node<n>", wired to each
// other through a new Broker. Pass each to pubsub.New; closing the PubSub
// takes its node out of the cluster.
func NewCluster(n int) []*MemAdapter {
	b := NewBroker()
	out := make([]*MemAdapter, n)
	for i := range out {
		out[i] = b.Adapter("node" + strconv.Itoa(i+1))
	}
	return out
}

// Adapter returns an adapter for a node of the broker. The node joins the
// cluster when its PubSub starts the adapter and leaves it on Close.
func (b *Broker) Adapter(node string) *MemAdapter {
	return &MemAdapter{b: b, node: node, topics: make(map[string]bool), signal: make(chan struct{}, 1), done: make(chan struct{})}
}

// MemAdapter is a pubsub.Adapter on a Broker.
type MemAdapter struct {
	b      *Broker
	node   string
	signal chan struct{}
	done   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	topics  map[string]bool
	queue   [][]byte
	started bool
	closed  bool
}

var _ pubsub.Adapter = (*MemAdapter)(nil)

// ErrAdapterClosed is returned by a closed MemAdapter's operations.
var ErrAdapterClosed = errors.New("pubsubtest: adapter closed")

// NodeName returns the node's name.
func (a *MemAdapter) NodeName() string { return a.node }

// Start joins the broker and delivers received messages on a goroutine that
// Close stops.
func (a *MemAdapter) Start(ctx context.Context, deliver func(*pubsub.Message)) error {
	a.mu.Lock()
	if a.closed || a.started {
		a.mu.Unlock()
		return errors.New("pubsubtest: adapter already started or closed")
	}
	a.started = true
	a.mu.Unlock()
	a.b.mu.Lock()
	a.b.nodes[a.node] = append(a.b.nodes[a.node], a)
	a.b.mu.Unlock()
	a.wg.Add(1)
	go a.loop(ctx, deliver)
	return nil
}

func (a *MemAdapter) loop(ctx context.Context, deliver func(*pubsub.Message)) {
	defer a.wg.Done()
	for {
		a.mu.Lock()
		q := a.queue
		a.queue = nil
		a.mu.Unlock()
		for _, env := range q {
			select {
			case <-a.done:
				return
			default:
			}
			if _, m, err := pubsub.UnmarshalEnvelope(env); err == nil {
				deliver(m)
			}
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-a.signal:
		case <-a.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// enqueue hands an envelope to the node; topic "" means a direct message.
func (a *MemAdapter) enqueue(topic string, env []byte) {
	a.mu.Lock()
	if a.closed || topic != "" && !a.topics[topic] {
		a.mu.Unlock()
		return
	}
	a.queue = append(a.queue, env)
	a.mu.Unlock()
	select {
	case a.signal <- struct{}{}:
	default:
	}
}

func (a *MemAdapter) isClosed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}

// Broadcast carries m to every other node subscribed to m.Topic.
func (a *MemAdapter) Broadcast(_ context.Context, m *pubsub.Message) error {
	if a.isClosed() {
		return ErrAdapterClosed
	}
	env := pubsub.MarshalEnvelope(a.node, m)
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	for node, as := range a.b.nodes {
		if node == a.node {
			continue
		}
		for _, to := range as {
			to.enqueue(m.Topic, env)
		}
	}
	return nil
}

// DirectBroadcast carries m to the named node, whatever it subscribes to;
// a node that is not in the cluster drops it without an error, as with a
// real broker.
func (a *MemAdapter) DirectBroadcast(_ context.Context, node string, m *pubsub.Message) error {
	if a.isClosed() {
		return ErrAdapterClosed
	}
	env := pubsub.MarshalEnvelope(a.node, m)
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	for _, to := range a.b.nodes[node] {
		to.enqueue("", env)
	}
	return nil
}

// Subscribe starts receiving topic; it takes effect at once.
func (a *MemAdapter) Subscribe(topic string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrAdapterClosed
	}
	a.topics[topic] = true
	return nil
}

// Unsubscribe stops receiving topic.
func (a *MemAdapter) Unsubscribe(topic string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.topics, topic)
	return nil
}

// Close takes the node out of the cluster, drops what it has not delivered
// yet and waits for its delivering goroutine.
func (a *MemAdapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.queue = nil
	started := a.started
	a.mu.Unlock()
	if !started {
		return nil
	}
	a.b.mu.Lock()
	as := a.b.nodes[a.node]
	for i, x := range as {
		if x == a {
			as = append(as[:i:i], as[i+1:]...)
			break
		}
	}
	if len(as) == 0 {
		delete(a.b.nodes, a.node)
	} else {
		a.b.nodes[a.node] = as
	}
	a.b.mu.Unlock()
	close(a.done)
	a.wg.Wait()
	return nil
}
