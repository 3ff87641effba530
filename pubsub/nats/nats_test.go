package nats_test

import (
	"context"
	"fmt"
	"github.com/plumehq/plume/internal/testenv"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"

	"github.com/plumehq/plume/pubsub"
	"github.com/plumehq/plume/pubsub/nats"
	"github.com/plumehq/plume/pubsub/pubsubtest"
)

func embedded(t *testing.T, port int) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("embedded nats-server did not start")
	}
	return ns
}

func newAdapterFor(url, prefix string) pubsubtest.NewAdapter {
	return func(t *testing.T, node string) pubsub.Adapter {
		a, err := nats.New(nats.Options{URL: url, NodeName: node, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
}

func TestEmbeddedNATS(t *testing.T) {
	ns := embedded(t, -1)
	defer ns.Shutdown()
	pubsubtest.Run(t, newAdapterFor(ns.ClientURL(), "t1"))
}

func TestRealNATS(t *testing.T) {
	testenv.TCP(t, "NATS server", "127.0.0.1:4222")
	pubsubtest.Run(t, newAdapterFor("nats://127.0.0.1:4222", fmt.Sprintf("test%d", time.Now().UnixNano())))
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestBrokerRestart restarts the NATS server in the middle of traffic: the
// adapters reconnect and resubscribe by themselves, broadcasts during the
// outage fail loudly, and traffic flows again afterwards.
func TestBrokerRestart(t *testing.T) {
	port := freePort(t)
	ns := embedded(t, port)
	url := ns.ClientURL()
	mk := func(node string) (*pubsub.PubSub, *nats.Adapter) {
		a, err := nats.New(nats.Options{URL: url, NodeName: node, Prefix: "restart",
			NATSOptions: []natsgo.Option{natsgo.ReconnectWait(50 * time.Millisecond)}})
		if err != nil {
			t.Fatal(err)
		}
		ps, err := pubsub.New(pubsub.Options{Adapter: a})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ps.Close() })
		return ps, a
	}
	n1, _ := mk("n1")
	n2, _ := mk("n2")
	r := pubsubtest.NewRecorder()
	n2.Subscribe("room", r)
	waitDelivery(t, n1, r, "before")

	ns.Shutdown()
	ns.WaitForShutdown()
	var failed int
	for i := 0; i < 20; i++ {
		if err := n1.Broadcast(context.Background(), &pubsub.Message{Topic: "room", Event: "during", Payload: []byte("{}")}); err != nil {
			failed++
		}
		time.Sleep(10 * time.Millisecond)
	}
	if failed == 0 {
		t.Fatal("broadcasts during the outage all reported success")
	}
	if n1.Errors() == 0 {
		t.Fatal("adapter errors were not counted")
	}
	ns2 := embedded(t, port)
	defer ns2.Shutdown()
	waitDelivery(t, n1, r, "after")
}

func waitDelivery(t *testing.T, from *pubsub.PubSub, r *pubsubtest.Recorder, event string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		from.Broadcast(context.Background(), &pubsub.Message{Topic: "room", Event: event, Payload: []byte("{}")})
		time.Sleep(50 * time.Millisecond)
		for _, e := range r.Events() {
			if e == event {
				return
			}
		}
	}
	t.Fatalf("%q never arrived; got %v", event, r.Events())
}
