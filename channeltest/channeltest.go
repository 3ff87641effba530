// Package channeltest tests Plume channels without a network, as
// Phoenix.ChannelTest does for Phoenix channels.
//
// A [Harness] holds an endpoint and the [plume.Socket] under test. Its
// clients are real connections of that socket on an in-memory transport, so
// joins are routed by the socket's routes, callbacks run on the real
// runtime, and what a test asserts is exactly what a phoenix.js client would
// receive:
//
//	func TestRoom(t *testing.T) {
//		ct := channeltest.New(t, app.UserSocket())
//		c := ct.Socket("user:1", map[string]any{"user_id": 1})
//		room, err := c.Join("room:lobby", nil)
//		if err != nil {
//			t.Fatal(err)
//		}
//		ref := room.Push("ping", map[string]any{"hello": "there"})
//		room.AssertReply(ref, "ok", map[string]any{"hello": "there"})
//		room.AssertPush("welcome")
//	}
//
// Phoenix's helpers map onto methods: socket/3 is [Harness.Socket],
// connect/3 [Harness.Connect], join/3 [Client.Join], subscribe_and_join/3
// [Client.SubscribeAndJoin], push/3 [Channel.Push], leave/1
// [Channel.Leave], close/1 [Client.Close], broadcast_from/3
// [Channel.BroadcastFrom], and assert_push, assert_reply, assert_broadcast
// and their refute_ forms are the methods of the same names on [Channel].
//
// # Matching payloads
//
// Assertions take optional wants that the payload must all satisfy, the Go
// form of an Elixir pattern with a guard:
//
//   - a func(T) bool is a predicate: the payload is decoded as JSON into a T
//     (map[string]any, a struct, ...) and passed to it; a payload that does
//     not decode does not match. A func(plume.Payload) bool gets the payload
//     as received, binary included, and a func([]byte) bool a binary
//     payload's bytes.
//   - []byte and [plume.Binary] match a binary payload with those bytes.
//   - nil matches anything.
//   - any other value is a pattern: it is encoded as JSON and compared with
//     the payload as Elixir compares a literal pattern. An object matches an
//     object that has at least its keys, with matching values (so
//     map[string]any{} matches every object, like %{}); arrays must have
//     the same length and matching elements; numbers, strings, booleans and
//     null must be equal.
//
// Payload keys are strings, as in Phoenix: everything goes through JSON.
// Predicates may be called more than once for the same payload.
//
// # Timing
//
// Assertions wait up to [Options.AssertTimeout] for a matching message and
// refutations watch for [Options.RefuteTimeout], both 100 ms by default like
// ExUnit's assert_receive and refute_receive. A matched message is consumed,
// so asserting the same push twice needs two pushes. All methods must be
// called from the test's goroutine, and failures stop the test with
// t.Fatalf, listing the messages that did arrive.
//
// A channel that crashes does not fail the test, as a linked process would
// in ExUnit: the client gets phx_error, which [Channel.AssertError] and
// RefutePush("phx_error") check. A Harness belongs to the test (or subtest)
// that created it; give each subtest its own. Clients are closed, and
// subscriptions dropped, when that test ends (with t.Cleanup), so that no
// goroutine outlives it.
package channeltest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/pubsub"
)

// DefaultTimeout is how long assertions wait and refutations watch unless
// [Options] says otherwise: 100 ms, as ExUnit's assert_receive_timeout and
// refute_receive_timeout.
const DefaultTimeout = 100 * time.Millisecond

// TransportName is the name of the in-memory transport, as
// [plume.Conn.TransportName] reports it.
const TransportName = "test"

// vsn is the protocol version test clients speak, as phoenix.js 1.8 does.
const vsn = "2.0.0"

// Errors returned by [Client.Join] and [Client.SubscribeAndJoin].
var (
	// ErrUnmatchedTopic: no route of the socket matches the topic.
	ErrUnmatchedTopic = errors.New("channeltest: unmatched topic")
	// ErrClosed: the client's connection is closed.
	ErrClosed = errors.New("channeltest: connection closed")
)

// JoinError is a refused join: the channel's Join returned an error or
// panicked, or the connection has too many channels. Reply is the error
// reply the client received, such as {"reason":"unauthorized"}.
type JoinError struct {
	Topic string
	Reply plume.Payload
}

// Error describes the refusal with the reply.
func (e *JoinError) Error() string {
	return "channeltest: join " + quote(e.Topic) + " refused: " + e.Reply.String()
}

// Options configures a [Harness]. The zero value is ready to use.
type Options struct {
	// Endpoint is the endpoint the clients connect through. Nil creates one
	// with its own in-memory PubSub that logs to the test's log. Pass the
	// application's endpoint when channel code broadcasts through it.
	Endpoint *plume.Endpoint
	// AssertTimeout is how long assertions wait; default [DefaultTimeout].
	AssertTimeout time.Duration
	// RefuteTimeout is how long refutations watch; default [DefaultTimeout].
	RefuteTimeout time.Duration
}

// Harness is the test's endpoint and the socket under test (the module's
// @endpoint plus the socket module in Phoenix). It also plays the test
// process: [Harness.Subscribe] subscribes it to a topic's broadcasts.
type Harness struct {
	t      testing.TB
	ep     *plume.Endpoint
	sock   *plume.Socket
	assert time.Duration
	refute time.Duration
	log    *testLog

	mu   sync.Mutex
	subs map[string]*Subscription
}

// New returns a Harness for testing socket s in t. At most one Options may be
// given.
func New(t testing.TB, s *plume.Socket, opts ...Options) *Harness {
	t.Helper()
	if s == nil {
		t.Fatalf("channeltest: New: nil socket")
	}
	if len(opts) > 1 {
		t.Fatalf("channeltest: New: more than one Options")
	}
	var o Options
	if len(opts) == 1 {
		o = opts[0]
	}
	h := &Harness{
		t:      t,
		ep:     o.Endpoint,
		sock:   s,
		assert: o.AssertTimeout,
		refute: o.RefuteTimeout,
		subs:   make(map[string]*Subscription),
	}
	if h.assert <= 0 {
		h.assert = DefaultTimeout
	}
	if h.refute <= 0 {
		h.refute = DefaultTimeout
	}
	if h.ep == nil {
		h.log = &testLog{t: t}
		logger := slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{
			ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				if len(groups) == 0 && a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		}))
		h.ep = plume.NewEndpoint(plume.Options{Logger: logger})
	}
	// Registered first, so it runs after every client's cleanup.
	t.Cleanup(h.cleanup)
	return h
}

// Endpoint returns the endpoint the clients connect through, for
// broadcasting from the test as the application would.
func (h *Harness) Endpoint() *plume.Endpoint { return h.ep }

// Socket connects a client without running the socket's Connect callback,
// as if Connect had set the socket id (may be "") and the assigns
// (Phoenix's socket/3). The client is closed when the test ends.
func (h *Harness) Socket(id string, assigns map[string]any) *Client {
	h.t.Helper()
	s := *h.sock
	s.Connect = func(_ context.Context, c *plume.Conn) error {
		c.ID = id
		for k, v := range assigns {
			c.Assign(k, v)
		}
		return nil
	}
	c, err := h.connect(&s, nil, plume.ConnectInfo{})
	if err != nil {
		h.t.Fatalf("channeltest: Socket: %v", err)
	}
	return c
}

// Connect connects a client through the socket's real Connect callback with
// params and info (Phoenix's connect/3). A refusal returns Connect's error.
// The client is closed when the test ends.
func (h *Harness) Connect(params plume.Params, info plume.ConnectInfo) (*Client, error) {
	return h.connect(h.sock, params, info)
}

func (h *Harness) connect(s *plume.Socket, params plume.Params, info plume.ConnectInfo) (*Client, error) {
	c := &Client{h: h}
	c.tr = &transport{c: c, ready: make(chan struct{}), closedCh: make(chan struct{})}
	conn, err := h.ep.ServeTransport(h.t.Context(), s, c.tr, params, info, vsn)
	c.conn = conn
	close(c.tr.ready)
	if err != nil {
		return nil, err
	}
	h.t.Cleanup(c.Close)
	return c, nil
}

// Subscribe subscribes the test to topic's broadcasts, like
// @endpoint.subscribe in a Phoenix test. The test is one subscriber per
// topic: subscribing again returns the same Subscription. Subscriptions end
// with the test.
func (h *Harness) Subscribe(topic string) *Subscription {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.subs[topic]; s != nil {
		return s
	}
	s := &Subscription{h: h, topic: topic}
	s.sub = &subscriber{s}
	if err := h.ep.PubSub().Subscribe(topic, s.sub); err != nil {
		h.t.Fatalf("channeltest: Subscribe %q: %v", topic, err)
	}
	h.subs[topic] = s
	return s
}

// subscription returns the test's subscription to topic, or nil.
func (h *Harness) subscription(topic string) *Subscription {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.subs[topic]
}

func (h *Harness) cleanup() {
	h.mu.Lock()
	subs := h.subs
	h.subs = nil
	h.mu.Unlock()
	for topic, s := range subs {
		h.ep.PubSub().Unsubscribe(topic, s.sub)
	}
	if h.log != nil {
		h.log.stop()
	}
}

// Subscription is the test's own subscription to a topic. It records every
// broadcast on the topic, as the test process's mailbox does in Phoenix.
type Subscription struct {
	h     *Harness
	topic string
	sub   *subscriber
	box   inbox
}

type subscriber struct{ s *Subscription }

func (s *subscriber) Deliver(m *pubsub.Message) {
	p := plume.JSONPayload(m.Payload)
	if m.Binary {
		p = plume.BinaryPayload(m.Payload)
	}
	s.s.box.put(&message{kind: kindBroadcast, topic: m.Topic, event: m.Event, payload: p})
}

// Topic returns the subscribed topic.
func (s *Subscription) Topic() string { return s.topic }

// AssertBroadcast waits for a broadcast of event on the topic whose payload
// satisfies every want, and returns its payload (assert_broadcast).
func (s *Subscription) AssertBroadcast(event string, want ...any) plume.Payload {
	s.h.t.Helper()
	return s.h.assertBroadcast(s, "AssertBroadcast", event, want)
}

// RefuteBroadcast fails if a broadcast of event on the topic whose payload
// satisfies every want arrives within the refute timeout (refute_broadcast).
func (s *Subscription) RefuteBroadcast(event string, want ...any) {
	s.h.t.Helper()
	s.h.refuteBroadcast(s, "RefuteBroadcast", event, want)
}

func (h *Harness) assertBroadcast(s *Subscription, op, event string, want []any) plume.Payload {
	h.t.Helper()
	pats := h.compile(op, want)
	m, ok := s.box.take(func(m *message) bool { return m.event == event && pats.match(m.payload) }, h.assert)
	if !ok {
		h.t.Fatalf("channeltest: %s: no broadcast %s%s on %s within %v\n%s",
			op, quote(event), pats, quote(s.topic), h.assert, s.box.pending("broadcasts", nil))
	}
	return m.payload
}

func (h *Harness) refuteBroadcast(s *Subscription, op, event string, want []any) {
	h.t.Helper()
	pats := h.compile(op, want)
	if m, ok := s.box.find(func(m *message) bool { return m.event == event && pats.match(m.payload) }, h.refute); ok {
		h.t.Fatalf("channeltest: %s: unexpected broadcast %s%s on %s:\n    %s", op, quote(event), pats, quote(s.topic), m)
	}
}

// testLog sends the endpoint's log lines to the test's log, until the test
// ends.
type testLog struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("%s", bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}

func (l *testLog) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}
