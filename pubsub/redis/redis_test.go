package redis_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/plumehq/plume/internal/testenv"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/pubsub"
	"github.com/plumehq/plume/pubsub/pubsubtest"
	"github.com/plumehq/plume/pubsub/redis"
)

const realAddr = "127.0.0.1:6379"

// needRedis skips (or, in CI, fails) when no Redis listens at realAddr.
func needRedis(t testing.TB) {
	t.Helper()
	testenv.TCP(t, "Redis server", realAddr)
}

var seq atomic.Int64

// uniquePrefix keeps concurrent and repeated runs from hearing each other.
func uniquePrefix() string {
	return fmt.Sprintf("plumetest-%d-%d-%d", os.Getpid(), time.Now().UnixNano(), seq.Add(1))
}

func newAdapterFor(url, prefix string) pubsubtest.NewAdapter {
	return func(t *testing.T, node string) pubsub.Adapter {
		// Through ParseURL, as the demo's -pubsub flag does.
		o, err := redis.ParseURL(url + "?prefix=" + prefix)
		if err != nil {
			t.Fatal(err)
		}
		o.NodeName = node
		a, err := redis.New(o)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
}

func TestConformance(t *testing.T) {
	needRedis(t)
	leakcheck.Check(t)
	pubsubtest.Run(t, newAdapterFor("redis://"+realAddr+"/0", uniquePrefix()))
}

func msg(topic, event string) *pubsub.Message {
	return &pubsub.Message{Topic: topic, Event: event, Payload: []byte(`{}`)}
}

func node(t *testing.T, o redis.Options) *pubsub.PubSub {
	t.Helper()
	a, err := redis.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := pubsub.New(pubsub.Options{Adapter: a})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	return ps
}

// waitDelivery broadcasts event on topic from until r has received it.
func waitDelivery(t *testing.T, from *pubsub.PubSub, r *pubsubtest.Recorder, topic, event string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		from.Broadcast(context.Background(), msg(topic, event))
		time.Sleep(20 * time.Millisecond)
		if slices.Contains(r.Events(), event) {
			return
		}
	}
	t.Fatalf("%q never arrived on %s; got %v", event, topic, r.Events())
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// redisServer is a redis-server process of the test's own, so that it can
// be killed and restarted.
type redisServer struct {
	t    *testing.T
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

func newRedisServer(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.SkipOrFail(t, "redis-server binary not found: "+err.Error())
	}
	s := &redisServer{t: t, bin: bin, port: freePort(t), dir: t.TempDir()}
	t.Cleanup(s.kill)
	s.start()
	return s
}

func (s *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--loglevel", "warning")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr(), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s never accepted: %v", s.addr(), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *redisServer) kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// TestBrokerRestart kills Redis in the middle of two-way traffic: broadcasts
// during the outage fail and are counted, subscriptions made during it are
// kept, and after Redis comes back on the same port messages flow again both
// ways, exactly once, without restarting the adapters.
func TestBrokerRestart(t *testing.T) {
	leakcheck.Check(t)
	srv := newRedisServer(t)
	logs := &testenv.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n1 := node(t, redis.Options{Addr: srv.addr(), NodeName: "n1", Prefix: "restart", Logger: logger})
	n2 := node(t, redis.Options{Addr: srv.addr(), NodeName: "n2", Prefix: "restart", Logger: logger})
	r1, r2 := pubsubtest.NewRecorder(), pubsubtest.NewRecorder()
	n1.Subscribe("room", r1)
	n2.Subscribe("room", r2)
	waitDelivery(t, n1, r2, "room", "before-1to2")
	waitDelivery(t, n2, r1, "room", "before-2to1")

	// Two-way traffic, counting every error the callers are handed.
	var returned [2]atomic.Uint64
	var sent [2]atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, ps := range []*pubsub.PubSub{n1, n2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				if err := ps.Broadcast(ctx, msg("room", "traffic")); err != nil {
					returned[i].Add(1)
				} else {
					sent[i].Add(1)
				}
				cancel()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	for sent[0].Load() < 20 || sent[1].Load() < 20 {
		time.Sleep(5 * time.Millisecond)
	}

	srv.kill()

	// Subscribe and unsubscribe must not block on the dead server.
	late := pubsubtest.NewRecorder()
	if err := n2.Subscribe("late", late); err != nil {
		t.Fatalf("subscribe during the outage: %v", err)
	}
	gone := pubsubtest.NewRecorder()
	n2.Subscribe("gone", gone)
	n2.Unsubscribe("gone", gone)

	failed := 0
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := n1.Broadcast(ctx, msg("room", "during"))
		cancel()
		if err == nil {
			t.Errorf("broadcast %d during the outage reported success", i)
			continue
		}
		failed++
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if got, want := n1.Errors(), returned[0].Load()+uint64(failed); got != want {
		t.Errorf("n1 counted %d adapter errors, callers were handed %d", got, want)
	}
	if got, want := n2.Errors(), returned[1].Load(); got != want {
		t.Errorf("n2 counted %d adapter errors, callers were handed %d", got, want)
	}
	if returned[0].Load() == 0 && returned[1].Load() == 0 {
		t.Error("no traffic broadcast failed while Redis was down")
	}

	t.Logf("outage: n1 handed %d+%d errors, n2 %d; before it %d+%d broadcasts went through",
		returned[0].Load(), failed, returned[1].Load(), sent[0].Load(), sent[1].Load())

	srv.start()
	waitDelivery(t, n1, r2, "room", "after-1to2")
	waitDelivery(t, n2, r1, "room", "after-2to1")
	waitDelivery(t, n1, late, "late", "after-late")

	// Once flowing, an ordered run arrives exactly once on each side.
	check := func(from *pubsub.PubSub, r *pubsubtest.Recorder, tag string) {
		t.Helper()
		base := len(r.Events())
		for i := 0; i < 100; i++ {
			if err := from.Broadcast(context.Background(), msg("room", fmt.Sprint(tag, i))); err != nil {
				t.Fatal(err)
			}
		}
		r.WaitFor(t, base+100, 5*time.Second)
		time.Sleep(50 * time.Millisecond)
		var got []string
		for _, e := range r.Events()[base:] {
			if strings.HasPrefix(e, tag) {
				got = append(got, e)
			}
		}
		if len(got) != 100 {
			t.Fatalf("%s: got %d messages, want 100: %v", tag, len(got), got)
		}
		for i, e := range got {
			if e != fmt.Sprint(tag, i) {
				t.Fatalf("%s: message %d is %q", tag, i, e)
			}
		}
	}
	check(n1, r2, "x")
	check(n2, r1, "y")
	// (n1's own subscriber r1 got "during" locally, as pubsub delivers
	// locally whatever the adapter says.)
	if slices.Contains(r2.Events(), "during") {
		t.Error("a broadcast reported as failed reached the other node")
	}

	// The topic dropped during the outage was not resubscribed.
	c := rawClient(t, srv.addr())
	if n := numsub(t, c, "restart:t:gone"); n != 0 {
		t.Errorf("restart:t:gone has %d subscribers after the restart, want 0", n)
	}
	if !strings.Contains(logs.String(), "resubscribed") {
		t.Errorf("no resubscription logged; logs:\n%s", logs)
	}
}

func rawClient(t testing.TB, addr string) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func numsub(t testing.TB, c rueidis.Client, channel string) int64 {
	t.Helper()
	v, err := c.Do(context.Background(), c.B().PubsubNumsub().Channel(channel).Build()).AsIntMap()
	if err != nil {
		t.Fatal(err)
	}
	return v[channel]
}

// channels lists the channels under prefix that have subscribers.
func channels(t testing.TB, c rueidis.Client, prefix string) []string {
	t.Helper()
	v, err := c.Do(context.Background(), c.B().PubsubChannels().Pattern(prefix+":*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(v)
	return v
}

// TestSubscriptionsFollowTheRegistry checks, from Redis's side, that the
// adapter's connection ends up subscribed to exactly the topics that have
// local subscribers, whatever the churn, and to nothing after Close.
func TestSubscriptionsFollowTheRegistry(t *testing.T) {
	needRedis(t)
	leakcheck.Check(t)
	prefix := uniquePrefix()
	c := rawClient(t, realAddr)
	a, err := redis.New(redis.Options{Addr: realAddr, NodeName: "solo", Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := pubsub.New(pubsub.Options{Adapter: a})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{prefix + ":n:solo"}
	subs := make([]pubsub.Subscriber, 1200)
	for i := range subs {
		subs[i] = pubsubtest.NewRecorder()
		topic := fmt.Sprintf("topic:%d", i)
		if err := ps.Subscribe(topic, subs[i]); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			ps.Unsubscribe(topic, subs[i])
		} else {
			want = append(want, prefix+":t:"+topic)
		}
	}
	// Churn on one topic ends subscribed; on another, unsubscribed.
	flip := pubsubtest.NewRecorder()
	for i := 0; i < 50; i++ {
		ps.Subscribe("flip", flip)
		ps.Unsubscribe("flip", flip)
		ps.Subscribe("flop", flip)
		ps.Unsubscribe("flop", flip)
	}
	ps.Subscribe("flip", flip)
	want = append(want, prefix+":t:flip")
	slices.Sort(want)

	deadline := time.Now().Add(5 * time.Second)
	for got := channels(t, c, prefix); !slices.Equal(got, want); got = channels(t, c, prefix) {
		if time.Now().After(deadline) {
			t.Fatalf("Redis has %d channels subscribed under the prefix, want %d", len(got), len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}

	ps.Close()
	deadline = time.Now().Add(5 * time.Second)
	for got := channels(t, c, prefix); len(got) != 0; got = channels(t, c, prefix) {
		if time.Now().After(deadline) {
			t.Fatalf("after Close, Redis still has %d channels subscribed", len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTopicsAndPayloadsAreBinarySafe sends odd topic names and a binary
// payload across nodes.
func TestTopicsAndPayloadsAreBinarySafe(t *testing.T) {
	needRedis(t)
	leakcheck.Check(t)
	prefix := uniquePrefix()
	n1 := node(t, redis.Options{Addr: realAddr, NodeName: "n1", Prefix: prefix})
	n2 := node(t, redis.Options{Addr: realAddr, NodeName: "n2", Prefix: prefix})
	payload := []byte{0, 1, 2, 0xff, '\r', '\n', '*', '$'}
	for _, topic := range []string{"room:lobby", "a b\tc", "ünï:çødé", "*", "x\x00y", "room:*:[a]?"} {
		got := firstMessage(t, n1, n2, topic, payload)
		if got.Topic != topic || got.Event != "bin" || !got.Binary || !bytes.Equal(got.Payload, payload) {
			t.Fatalf("topic %q: got %+v", topic, got)
		}
	}
}

// firstMessage subscribes a capturing subscriber on n2 and returns the
// first message n1 gets through on topic.
func firstMessage(t *testing.T, n1, n2 *pubsub.PubSub, topic string, payload []byte) *pubsub.Message {
	t.Helper()
	got := make(chan *pubsub.Message, 1000)
	s := pubsub.Func(func(m *pubsub.Message) {
		select {
		case got <- m:
		default:
		}
	})
	n2.Subscribe(topic, s)
	defer n2.Unsubscribe(topic, s)
	deadline := time.After(5 * time.Second)
	for {
		n1.Broadcast(context.Background(), &pubsub.Message{Topic: topic, Event: "bin", Payload: payload, Binary: true})
		select {
		case m := <-got:
			return m
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("nothing arrived on topic %q", topic)
		}
	}
}

// TestMalformedMessagesAreDropped publishes garbage on a topic's channel:
// the node logs and drops it and keeps delivering.
func TestMalformedMessagesAreDropped(t *testing.T) {
	needRedis(t)
	leakcheck.Check(t)
	prefix := uniquePrefix()
	logs := &testenv.Buffer{}
	n1 := node(t, redis.Options{Addr: realAddr, NodeName: "n1", Prefix: prefix})
	n2 := node(t, redis.Options{Addr: realAddr, NodeName: "n2", Prefix: prefix,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	r := pubsubtest.NewRecorder()
	n2.Subscribe("room", r)
	waitDelivery(t, n1, r, "room", "ready")
	c := rawClient(t, realAddr)
	if err := c.Do(context.Background(), c.B().Publish().Channel(prefix+":t:room").Message("garbage").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	n1.Broadcast(context.Background(), msg("room", "after"))
	ev := r.WaitFor(t, 1, 5*time.Second)
	for !slices.Contains(ev, "after") {
		ev = r.WaitFor(t, len(ev)+1, 5*time.Second)
	}
	if !strings.Contains(logs.String(), "malformed") {
		t.Errorf("dropped message not logged; logs:\n%s", logs)
	}
}

// TestSharedClient uses a caller's client, which Close must leave open.
func TestSharedClient(t *testing.T) {
	needRedis(t)
	leakcheck.Check(t)
	c := rawClient(t, realAddr)
	prefix := uniquePrefix()
	n1 := node(t, redis.Options{Client: c, NodeName: "n1", Prefix: prefix})
	n2 := node(t, redis.Options{Client: c, NodeName: "n2", Prefix: prefix})
	r := pubsubtest.NewRecorder()
	n2.Subscribe("room", r)
	waitDelivery(t, n1, r, "room", "shared")
	n1.Close()
	n2.Close()
	if err := c.Do(context.Background(), c.B().Ping().Build()).Error(); err != nil {
		t.Fatalf("the caller's client was closed: %v", err)
	}
}

func TestClosed(t *testing.T) {
	needRedis(t)
	leakcheck.Check(t)
	a, err := redis.New(redis.Options{Addr: realAddr, Prefix: uniquePrefix()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background(), func(*pubsub.Message) {}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := a.Broadcast(context.Background(), msg("room", "x")); !errors.Is(err, pubsub.ErrClosed) {
		t.Errorf("Broadcast after Close: %v, want pubsub.ErrClosed", err)
	}
	if err := a.Subscribe("room"); !errors.Is(err, pubsub.ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want pubsub.ErrClosed", err)
	}
	if err := a.Start(context.Background(), func(*pubsub.Message) {}); !errors.Is(err, pubsub.ErrClosed) {
		t.Errorf("Start after Close: %v, want pubsub.ErrClosed", err)
	}
}

func TestNewFailsWithoutServer(t *testing.T) {
	leakcheck.Check(t)
	a, err := redis.New(redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))})
	if err == nil {
		a.Close()
		t.Fatal("New succeeded with no server listening")
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url          string
		node, prefix string
		bad          bool
	}{
		{url: "redis://127.0.0.1:6379/0"},
		{url: "redis://127.0.0.1:6379"},
		{url: "rediss://user:pw@example.com:6380/3?prefix=demo&node=web-1", node: "web-1", prefix: "demo"},
		{url: "redis://127.0.0.1:6379/0?prefix=app", prefix: "app"},
		{url: "unix:///run/redis.sock?db=1"},
		{url: "http://127.0.0.1:6379", bad: true},
		{url: "redis://127.0.0.1:6379/notadb", bad: true},
		{url: "127.0.0.1:6379", bad: true},
	} {
		o, err := redis.ParseURL(tc.url)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseURL(%q) = %+v, want an error", tc.url, o)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.url, err)
			continue
		}
		if o.URL != tc.url || o.NodeName != tc.node || o.Prefix != tc.prefix {
			t.Errorf("ParseURL(%q) = %+v", tc.url, o)
		}
	}
}
