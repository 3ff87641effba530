// Package nats is a Plume PubSub adapter over NATS: broadcasts reach every
// node subscribed to a topic, with one NATS subject per topic so that a node
// receives only the topics it has subscribers for.
//
//	a, err := nats.New(nats.Options{URL: "nats://127.0.0.1:4222", NodeName: "node-1"})
//	ps, err := pubsub.New(pubsub.Options{Adapter: a})
//	ep := plume.NewEndpoint(plume.Options{PubSub: ps})
//
// nats.go reconnects by itself and resubscribes every subject. Broadcasts
// made while the connection is down fail with an error instead of being
// buffered, so a caller is never told a message was sent when it was not.
package nats

import (
	"context"
	"encoding/base64"
	"errors"
	"sync"

	natsgo "github.com/nats-io/nats.go"

	"github.com/plumehq/plume/pubsub"
)

// Options configures the adapter.
type Options struct {
	// URL of the NATS server(s), comma-separated; default nats.DefaultURL.
	URL string
	// Conn is an existing connection to use instead of dialing URL. The
	// adapter does not close it.
	Conn *natsgo.Conn
	// NodeName is this node's unique name; default pubsub.DefaultNodeName().
	NodeName string
	// Prefix namespaces the subjects, so several applications can share a
	// NATS server; default "plume".
	Prefix string
	// NATSOptions are extra options for dialing.
	NATSOptions []natsgo.Option
}

// Adapter is a pubsub.Adapter over NATS.
type Adapter struct {
	nc     *natsgo.Conn
	own    bool
	node   string
	prefix string

	mu      sync.Mutex
	subs    map[string]*natsgo.Subscription
	direct  *natsgo.Subscription
	inbox   chan *natsgo.Msg
	deliver func(*pubsub.Message)
	done    chan struct{}
	wg      sync.WaitGroup
	closed  bool
}

var _ pubsub.Adapter = (*Adapter)(nil)

// New connects to NATS.
func New(opts Options) (*Adapter, error) {
	a := &Adapter{
		nc:     opts.Conn,
		node:   opts.NodeName,
		prefix: opts.Prefix,
		subs:   make(map[string]*natsgo.Subscription),
		inbox:  make(chan *natsgo.Msg, 1<<16),
		done:   make(chan struct{}),
	}
	if a.node == "" {
		a.node = pubsub.DefaultNodeName()
	}
	if a.prefix == "" {
		a.prefix = "plume"
	}
	if a.nc == nil {
		url := opts.URL
		if url == "" {
			url = natsgo.DefaultURL
		}
		o := append([]natsgo.Option{
			natsgo.Name("plume " + a.node),
			natsgo.MaxReconnects(-1),
			// Fail publishes while disconnected rather than buffer them
			// and report success.
			natsgo.ReconnectBufSize(-1),
		}, opts.NATSOptions...)
		nc, err := natsgo.Connect(url, o...)
		if err != nil {
			return nil, err
		}
		a.nc, a.own = nc, true
	}
	return a, nil
}

// NodeName returns this node's name.
func (a *Adapter) NodeName() string { return a.node }

func (a *Adapter) topicSubject(topic string) string {
	return a.prefix + ".t." + base64.RawURLEncoding.EncodeToString([]byte(topic))
}

func (a *Adapter) nodeSubject(node string) string {
	return a.prefix + ".n." + base64.RawURLEncoding.EncodeToString([]byte(node))
}

// Start subscribes to this node's direct subject and starts delivering.
func (a *Adapter) Start(ctx context.Context, deliver func(*pubsub.Message)) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.deliver = deliver
	sub, err := a.nc.ChanSubscribe(a.nodeSubject(a.node), a.inbox)
	if err != nil {
		return err
	}
	a.direct = sub
	a.wg.Add(1)
	go a.loop(ctx)
	return nil
}

// loop delivers received messages in order, on one goroutine.
func (a *Adapter) loop(ctx context.Context) {
	defer a.wg.Done()
	for {
		select {
		case m := <-a.inbox:
			origin, msg, err := pubsub.UnmarshalEnvelope(m.Data)
			if err != nil || origin == a.node && m.Sub != a.direct {
				continue
			}
			a.deliver(msg)
		case <-ctx.Done():
			return
		case <-a.done:
			return
		}
	}
}

// Broadcast publishes m on its topic's subject.
func (a *Adapter) Broadcast(_ context.Context, m *pubsub.Message) error {
	return a.nc.Publish(a.topicSubject(m.Topic), pubsub.MarshalEnvelope(a.node, m))
}

// DirectBroadcast publishes m to one node's subject.
func (a *Adapter) DirectBroadcast(_ context.Context, node string, m *pubsub.Message) error {
	return a.nc.Publish(a.nodeSubject(node), pubsub.MarshalEnvelope(a.node, m))
}

// Subscribe starts receiving topic. nats.go only queues the SUB command, so
// this does not block on the network.
func (a *Adapter) Subscribe(topic string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errors.New("nats adapter: closed")
	}
	if _, ok := a.subs[topic]; ok {
		return nil
	}
	sub, err := a.nc.ChanSubscribe(a.topicSubject(topic), a.inbox)
	if err != nil {
		return err
	}
	a.subs[topic] = sub
	return nil
}

// Unsubscribe stops receiving topic.
func (a *Adapter) Unsubscribe(topic string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	sub, ok := a.subs[topic]
	if !ok {
		return nil
	}
	delete(a.subs, topic)
	return sub.Unsubscribe()
}

// Close unsubscribes, stops delivering and closes a connection it dialed.
func (a *Adapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	for _, s := range a.subs {
		s.Unsubscribe()
	}
	if a.direct != nil {
		a.direct.Unsubscribe()
	}
	close(a.done)
	a.mu.Unlock()
	a.wg.Wait()
	if a.own {
		a.nc.Close()
	}
	return nil
}
