package pubsubtest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/pubsub"
	"github.com/plumehq/plume/pubsub/pubsubtest"
)

// TestBrokerConformance runs the adapter suite on the in-memory broker.
func TestBrokerConformance(t *testing.T) {
	leakcheck.Check(t)
	b := pubsubtest.NewBroker()
	pubsubtest.Run(t, func(t *testing.T, node string) pubsub.Adapter { return b.Adapter(node) })
}

// TestClusterNodeLeaves: a closed node leaves the cluster; a direct
// broadcast to it is dropped without an error, and the others go on.
func TestClusterNodeLeaves(t *testing.T) {
	leakcheck.Check(t)
	as := pubsubtest.NewCluster(3)
	ps := make([]*pubsub.PubSub, len(as))
	for i, a := range as {
		if a.NodeName() != []string{"node1", "node2", "node3"}[i] {
			t.Fatalf("node %d is named %q", i, a.NodeName())
		}
		p, err := pubsub.New(pubsub.Options{Adapter: a})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		ps[i] = p
	}
	r2, r3 := pubsubtest.NewRecorder(), pubsubtest.NewRecorder()
	ps[1].Subscribe("room", r2)
	ps[2].Subscribe("room", r3)
	ctx := context.Background()
	ps[0].Broadcast(ctx, &pubsub.Message{Topic: "room", Event: "a", Payload: []byte("{}")})
	r2.WaitFor(t, 1, 5*time.Second)
	r3.WaitFor(t, 1, 5*time.Second)
	ps[2].Close()
	if err := ps[0].DirectBroadcast(ctx, "node3", &pubsub.Message{Topic: "room", Event: "lost", Payload: []byte("{}")}); err != nil {
		t.Fatalf("direct broadcast to a node that left: %v", err)
	}
	ps[0].DirectBroadcast(ctx, "node2", &pubsub.Message{Topic: "room", Event: "b", Payload: []byte("{}")})
	if ev := r2.WaitFor(t, 2, 5*time.Second); ev[1] != "b" {
		t.Fatalf("node2 got %v", ev)
	}
	if ev := r3.Events(); len(ev) != 1 {
		t.Fatalf("node3 got %v after it left", ev)
	}
}

// Two PubSubs joined in memory, as two nodes joined by Redis or NATS.
func ExampleNewCluster() {
	as := pubsubtest.NewCluster(2)
	n1, _ := pubsub.New(pubsub.Options{Adapter: as[0]})
	n2, _ := pubsub.New(pubsub.Options{Adapter: as[1]})
	defer n1.Close()
	defer n2.Close()
	got := make(chan string, 1)
	n2.Subscribe("room", pubsub.Func(func(m *pubsub.Message) { got <- m.Event + " " + string(m.Payload) }))
	n1.Broadcast(context.Background(), &pubsub.Message{Topic: "room", Event: "hello", Payload: []byte(`{"from":"node1"}`)})
	fmt.Println(<-got)
	// Output: hello {"from":"node1"}
}
