// Package pubsubtest is a conformance suite for pubsub adapters: every
// adapter (Redis, NATS, ...) must pass the same tests against a real broker.
package pubsubtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/plumehq/plume/pubsub"
)

// NewAdapter returns a fresh adapter for a node; the suite closes it. All
// adapters made by one NewAdapter must reach the same broker and namespace.
type NewAdapter func(t *testing.T, node string) pubsub.Adapter

// Recorder is a subscriber that keeps what it receives.
type Recorder struct {
	probes bool // keep the suite's "probe" messages (settle's own recorder)
	mu     sync.Mutex
	msgs   []*pubsub.Message
	ch     chan struct{}
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{ch: make(chan struct{}, 1<<16)} }

// Deliver records m.
func (r *Recorder) Deliver(m *pubsub.Message) {
	if m.Event == "probe" && !r.probes {
		return
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

// Events returns the events received so far.
func (r *Recorder) Events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.msgs))
	for i, m := range r.msgs {
		out[i] = m.Event
	}
	return out
}

// WaitFor waits until n messages arrived.
func (r *Recorder) WaitFor(t testing.TB, n int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if ev := r.Events(); len(ev) >= n {
			return ev
		}
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("got %d messages %v, want %d", len(r.Events()), r.Events(), n)
		}
	}
}

// Node makes a PubSub on a new adapter.
func Node(t *testing.T, newAdapter NewAdapter, name string) *pubsub.PubSub {
	t.Helper()
	a := newAdapter(t, name)
	ps, err := pubsub.New(pubsub.Options{Adapter: a})
	if err != nil {
		t.Fatalf("pubsub.New: %v", err)
	}
	t.Cleanup(func() { ps.Close() })
	return ps
}

func msg(topic, event string) *pubsub.Message {
	return &pubsub.Message{Topic: topic, Event: event, Payload: []byte(`{}`)}
}

// settle gives asynchronous subscriptions time to reach the broker: it
// broadcasts probes from b until a's recorder on a probe topic hears one.
func settle(t *testing.T, from, to *pubsub.PubSub, topic string) {
	t.Helper()
	probe := NewRecorder()
	probe.probes = true
	to.Subscribe(topic, probe)
	defer to.Unsubscribe(topic, probe)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		from.Broadcast(context.Background(), msg(topic, "probe"))
		select {
		case <-probe.ch:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("subscription on %s never became active", topic)
}

// Run runs the suite.
func Run(t *testing.T, newAdapter NewAdapter) {
	t.Run("BroadcastReachesEveryNode", func(t *testing.T) {
		n1, n2 := Node(t, newAdapter, "n1"), Node(t, newAdapter, "n2")
		r1, r2 := NewRecorder(), NewRecorder()
		n1.Subscribe("room", r1)
		n2.Subscribe("room", r2)
		settle(t, n1, n2, "room")
		if err := n1.Broadcast(context.Background(), msg("room", "hello")); err != nil {
			t.Fatal(err)
		}
		r1.WaitFor(t, 1, 5*time.Second)
		r2.WaitFor(t, 1, 5*time.Second)
		time.Sleep(100 * time.Millisecond)
		if ev := r1.Events(); len(ev) != 1 {
			t.Fatalf("sender's node got its own broadcast twice: %v", ev)
		}
	})
	t.Run("BroadcastFromExcludesOnlyTheSender", func(t *testing.T) {
		n1, n2 := Node(t, newAdapter, "n1"), Node(t, newAdapter, "n2")
		sender, peer, remote := NewRecorder(), NewRecorder(), NewRecorder()
		n1.Subscribe("room", sender)
		n1.Subscribe("room", peer)
		n2.Subscribe("room", remote)
		settle(t, n1, n2, "room")
		before := len(remote.Events())
		n1.BroadcastFrom(context.Background(), sender, msg("room", "x"))
		remote.WaitFor(t, before+1, 5*time.Second)
		peer.WaitFor(t, 1, 5*time.Second)
		for _, e := range sender.Events() {
			if e == "x" {
				t.Fatal("broadcast_from reached the sender")
			}
		}
	})
	t.Run("LocalBroadcastStaysOnTheNode", func(t *testing.T) {
		n1, n2 := Node(t, newAdapter, "n1"), Node(t, newAdapter, "n2")
		r1, r2 := NewRecorder(), NewRecorder()
		n1.Subscribe("room", r1)
		n2.Subscribe("room", r2)
		settle(t, n1, n2, "room")
		before := len(r2.Events())
		n1.LocalBroadcast(msg("room", "local"))
		n1.Broadcast(context.Background(), msg("room", "marker"))
		ev := r2.WaitFor(t, before+1, 5*time.Second)
		for _, e := range ev {
			if e == "local" {
				t.Fatal("local broadcast crossed nodes")
			}
		}
		if len(r1.Events()) != 2 {
			t.Fatalf("local node got %v", r1.Events())
		}
	})
	t.Run("DirectBroadcastReachesOneNode", func(t *testing.T) {
		n1, n2, n3 := Node(t, newAdapter, "n1"), Node(t, newAdapter, "n2"), Node(t, newAdapter, "n3")
		r2, r3 := NewRecorder(), NewRecorder()
		n2.Subscribe("room", r2)
		n3.Subscribe("room", r3)
		settle(t, n1, n2, "room")
		settle(t, n1, n3, "room")
		// Direct subjects are subscribed at Start; retry until delivered.
		deadline := time.Now().Add(5 * time.Second)
		for len(r2.Events()) == 0 || r2.Events()[len(r2.Events())-1] != "direct" {
			if err := n1.DirectBroadcast(context.Background(), "n2", msg("room", "direct")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			if time.Now().After(deadline) {
				t.Fatal("direct broadcast never arrived")
			}
		}
		time.Sleep(100 * time.Millisecond)
		for _, e := range r3.Events() {
			if e == "direct" {
				t.Fatal("direct broadcast to n2 reached n3")
			}
		}
	})
	t.Run("OnePublishersOrderIsKept", func(t *testing.T) {
		n1, n2 := Node(t, newAdapter, "n1"), Node(t, newAdapter, "n2")
		r := NewRecorder()
		n2.Subscribe("ordered", r)
		settle(t, n1, n2, "ordered")
		base := len(r.Events())
		const count = 2000
		for i := 0; i < count; i++ {
			if err := n1.Broadcast(context.Background(), msg("ordered", fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		ev := r.WaitFor(t, base+count, 10*time.Second)[base:]
		for i, e := range ev {
			if e != fmt.Sprint(i) {
				t.Fatalf("message %d is %q", i, e)
			}
		}
	})
	t.Run("UnsubscribedNodeReceivesNothing", func(t *testing.T) {
		n1 := Node(t, newAdapter, "n1")
		spy := &spyAdapter{Adapter: newAdapter(t, "n2")}
		n2, err := pubsub.New(pubsub.Options{Adapter: spy})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n2.Close() })
		r1, rb := NewRecorder(), NewRecorder()
		n1.Subscribe("a", r1)
		n2.Subscribe("b", rb)
		settle(t, n2, n1, "a")
		settle(t, n1, n2, "b")
		for i := 0; i < 50; i++ {
			n1.Broadcast(context.Background(), msg("a", "x"))
		}
		n1.Broadcast(context.Background(), msg("b", "marker"))
		rb.WaitFor(t, 1, 5*time.Second)
		r1.WaitFor(t, 50, 5*time.Second)
		// n2 has no subscriber on "a": its adapter must not even receive it.
		if got := spy.received("a"); got != 0 {
			t.Fatalf("node without subscribers on topic a received %d of its messages", got)
		}
	})
}

// spyAdapter counts what an adapter delivers, per topic.
type spyAdapter struct {
	pubsub.Adapter
	mu    sync.Mutex
	count map[string]int
}

func (s *spyAdapter) Start(ctx context.Context, deliver func(*pubsub.Message)) error {
	s.count = map[string]int{}
	return s.Adapter.Start(ctx, func(m *pubsub.Message) {
		s.mu.Lock()
		s.count[m.Topic]++
		s.mu.Unlock()
		deliver(m)
	})
}

func (s *spyAdapter) received(topic string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count[topic]
}
