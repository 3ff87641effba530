package pubsub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Deliver(m *Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m.Topic+"/"+m.Event)
	r.mu.Unlock()
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

func msg(topic, event string) *Message {
	return &Message{Topic: topic, Event: event, Payload: []byte("{}")}
}

func TestBroadcastReachesSubscribersOfTheTopicOnly(t *testing.T) {
	ps := NewLocal()
	a, b, c := &recorder{}, &recorder{}, &recorder{}
	ps.Subscribe("room:1", a)
	ps.Subscribe("room:1", b)
	ps.Subscribe("room:2", c)
	if err := ps.Broadcast(context.Background(), msg("room:1", "hi")); err != nil {
		t.Fatal(err)
	}
	if got := a.got(); len(got) != 1 || got[0] != "room:1/hi" {
		t.Fatalf("a got %v", got)
	}
	if got := b.got(); len(got) != 1 {
		t.Fatalf("b got %v", got)
	}
	if got := c.got(); len(got) != 0 {
		t.Fatalf("c got %v", got)
	}
}

func TestDuplicateSubscriptionIsIgnored(t *testing.T) {
	ps := NewLocal()
	a := &recorder{}
	ps.Subscribe("t", a)
	ps.Subscribe("t", a)
	ps.LocalBroadcast(msg("t", "e"))
	if n := len(a.got()); n != 1 {
		t.Fatalf("got %d deliveries, want 1", n)
	}
	ps.LocalBroadcast(msg("t", "e"))
	ps.Unsubscribe("t", a)
	if n := ps.Subscribers("t"); n != 0 {
		t.Fatalf("%d subscribers left", n)
	}
	ps.LocalBroadcast(msg("t", "e"))
	if n := len(a.got()); n != 2 {
		t.Fatalf("got %d deliveries after unsubscribe", n)
	}
}

func TestBroadcastFromSkipsOnlyTheSender(t *testing.T) {
	ps := NewLocal()
	a, b := &recorder{}, &recorder{}
	ps.Subscribe("t", a)
	ps.Subscribe("t", b)
	ps.BroadcastFrom(context.Background(), a, msg("t", "e"))
	if len(a.got()) != 0 || len(b.got()) != 1 {
		t.Fatalf("a=%v b=%v", a.got(), b.got())
	}
	if n := ps.LocalBroadcastFrom(b, msg("t", "e")); n != 1 {
		t.Fatalf("LocalBroadcastFrom delivered %d", n)
	}
}

func TestOnePublishersMessagesArriveInOrder(t *testing.T) {
	ps := NewLocal()
	a := &recorder{}
	ps.Subscribe("t", a)
	for i := 0; i < 1000; i++ {
		ps.LocalBroadcast(msg("t", fmt.Sprint(i)))
	}
	for i, m := range a.got() {
		if m != fmt.Sprintf("t/%d", i) {
			t.Fatalf("message %d is %s", i, m)
		}
	}
}

func TestFuncSubscribersAreDistinct(t *testing.T) {
	ps := NewLocal()
	var n atomic.Int32
	f1 := Func(func(*Message) { n.Add(1) })
	f2 := Func(func(*Message) { n.Add(10) })
	ps.Subscribe("t", f1)
	ps.Subscribe("t", f2)
	ps.Unsubscribe("t", f1)
	ps.LocalBroadcast(msg("t", "e"))
	if n.Load() != 10 {
		t.Fatalf("got %d", n.Load())
	}
}

func TestEncodedIsComputedOncePerKey(t *testing.T) {
	m := msg("t", "e")
	calls := 0
	enc := func() (any, error) { calls++; return calls, nil }
	for i := 0; i < 5; i++ {
		v, _ := m.Encoded("v2", enc)
		if v != 1 {
			t.Fatalf("got %v", v)
		}
	}
	v, _ := m.Encoded("v1", enc)
	if v != 2 || calls != 2 {
		t.Fatalf("v=%v calls=%d", v, calls)
	}
}

func TestConcurrentSubscribeAndBroadcast(t *testing.T) {
	ps := NewLocal()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				r := &recorder{}
				topic := fmt.Sprintf("t%d", i%5)
				ps.Subscribe(topic, r)
				ps.LocalBroadcast(msg(topic, "e"))
				if len(r.got()) < 1 {
					t.Errorf("subscriber missed a broadcast made after it subscribed")
				}
				ps.Unsubscribe(topic, r)
			}
		}()
	}
	wg.Wait()
	for i := 0; i < 5; i++ {
		if n := ps.Subscribers(fmt.Sprintf("t%d", i)); n != 0 {
			t.Fatalf("topic t%d has %d subscribers left", i, n)
		}
	}
}

// fakeAdapter records what the PubSub asks of it.
type fakeAdapter struct {
	mu          sync.Mutex
	subs, unsub []string
	sent        []string
	direct      []string
	fail        error
	deliver     func(*Message)
}

func (f *fakeAdapter) NodeName() string { return "n1" }
func (f *fakeAdapter) Start(_ context.Context, d func(*Message)) error {
	f.deliver = d
	return nil
}
func (f *fakeAdapter) Broadcast(_ context.Context, m *Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, m.Topic)
	return f.fail
}
func (f *fakeAdapter) DirectBroadcast(_ context.Context, node string, m *Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.direct = append(f.direct, node+"/"+m.Topic)
	return f.fail
}
func (f *fakeAdapter) Subscribe(topic string) error   { f.subs = append(f.subs, topic); return nil }
func (f *fakeAdapter) Unsubscribe(topic string) error { f.unsub = append(f.unsub, topic); return nil }
func (f *fakeAdapter) Close() error                   { return nil }

func TestAdapterFollowsFirstAndLastSubscriber(t *testing.T) {
	fa := &fakeAdapter{}
	ps, err := New(Options{Adapter: fa})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	if ps.NodeName() != "n1" {
		t.Fatalf("node name %q", ps.NodeName())
	}
	a, b := &recorder{}, &recorder{}
	ps.Subscribe("t", a)
	ps.Subscribe("t", b)
	ps.Unsubscribe("t", a)
	if len(fa.subs) != 1 || len(fa.unsub) != 0 {
		t.Fatalf("subs=%v unsub=%v", fa.subs, fa.unsub)
	}
	ps.Unsubscribe("t", b)
	if len(fa.unsub) != 1 {
		t.Fatalf("unsub=%v", fa.unsub)
	}
}

func TestAdapterBroadcastAndRemoteDelivery(t *testing.T) {
	fa := &fakeAdapter{}
	ps, _ := New(Options{Adapter: fa})
	defer ps.Close()
	a := &recorder{}
	ps.Subscribe("t", a)
	ps.Broadcast(context.Background(), msg("t", "e"))
	if len(fa.sent) != 1 || len(a.got()) != 1 {
		t.Fatalf("sent=%v local=%v", fa.sent, a.got())
	}
	ps.LocalBroadcast(msg("t", "local"))
	if len(fa.sent) != 1 {
		t.Fatalf("local broadcast went to the adapter")
	}
	fa.deliver(msg("t", "remote"))
	if got := a.got(); got[len(got)-1] != "t/remote" {
		t.Fatalf("remote message not delivered: %v", got)
	}
	if err := ps.DirectBroadcast(context.Background(), "n2", msg("t", "d")); err != nil || len(fa.direct) != 1 {
		t.Fatalf("direct: %v %v", err, fa.direct)
	}
	if err := ps.DirectBroadcast(context.Background(), "n1", msg("t", "self")); err != nil {
		t.Fatal(err)
	}
	if got := a.got(); got[len(got)-1] != "t/self" {
		t.Fatalf("direct broadcast to self not delivered locally: %v", got)
	}
}

func TestAdapterErrorsAreReturnedAndCounted(t *testing.T) {
	boom := errors.New("broker down")
	var seen []string
	fa := &fakeAdapter{fail: boom}
	ps, _ := New(Options{Adapter: fa, OnError: func(op string, err error) { seen = append(seen, op) }})
	defer ps.Close()
	a := &recorder{}
	ps.Subscribe("t", a)
	if err := ps.Broadcast(context.Background(), msg("t", "e")); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the adapter's", err)
	}
	if len(a.got()) != 1 {
		t.Fatal("local subscribers must still get a broadcast the adapter failed to send")
	}
	if ps.Errors() != 1 || len(seen) != 1 || seen[0] != "broadcast" {
		t.Fatalf("errors=%d seen=%v", ps.Errors(), seen)
	}
}

func TestDirectBroadcastWithoutAdapterToAnotherNodeFails(t *testing.T) {
	ps := NewLocal()
	if err := ps.DirectBroadcast(context.Background(), "elsewhere", msg("t", "e")); err == nil {
		t.Fatal("want an error")
	}
}

func TestClosedPubSubRefusesBroadcasts(t *testing.T) {
	ps := NewLocal()
	ps.Close()
	if err := ps.Broadcast(context.Background(), msg("t", "e")); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v", err)
	}
}

type countSub struct{ n atomic.Int64 }

func (c *countSub) Deliver(*Message) { c.n.Add(1) }

// BenchmarkFanout10k measures one local broadcast to 10,000 subscribers;
// ns/op divided by 10,000 is the registry's cost per delivery.
func BenchmarkFanout10k(b *testing.B) {
	ps := NewLocal()
	subs := make([]*countSub, 10000)
	for i := range subs {
		subs[i] = &countSub{}
		ps.Subscribe("room", subs[i])
	}
	m := msg("room", "e")
	b.ReportAllocs()
	for b.Loop() {
		ps.LocalBroadcast(m)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/delivery")
}

// BenchmarkBroadcastParallelTopics shows broadcasts to different topics do
// not contend.
func BenchmarkBroadcastParallelTopics(b *testing.B) {
	ps := NewLocal()
	for i := 0; i < 64; i++ {
		ps.Subscribe(fmt.Sprint("t", i), &countSub{})
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		m := msg(fmt.Sprint("t", next.Add(1)%64), "e")
		for pb.Next() {
			ps.LocalBroadcast(m)
		}
	})
}

func BenchmarkSubscribeUnsubscribe(b *testing.B) {
	ps := NewLocal()
	for i := 0; i < 1000; i++ {
		ps.Subscribe("room", &countSub{})
	}
	s := &countSub{}
	b.ReportAllocs()
	for b.Loop() {
		ps.Subscribe("room", s)
		ps.Unsubscribe("room", s)
	}
}
