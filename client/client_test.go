package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/client"
	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/wire"
)

func TestJoinOK(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), &client.Options{
		Params: func() map[string]any {
			return map[string]any{"user": map[string]any{"name": "ana maria"}}
		},
		AuthToken: func() string { return "secret token" },
	})
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ch := s.Channel("room:1", map[string]any{"hello": "world"})
	r, err := ch.Join(ctxT(t))
	if err != nil {
		t.Fatalf("join: %v (%v)", err, r)
	}
	if !r.OK() {
		t.Fatalf("reply %v", r)
	}
	resp := mustJSON(t, r.Response)
	if resp["topic"] != "room:1" || resp["user_name"] != "ana maria" || resp["token"] != "secret token" {
		t.Fatalf("response %v: params or auth token did not reach the server", resp)
	}
	if got := ch.State(); got != client.StateJoined {
		t.Fatalf("state %s", got)
	}
	// The refs on the wire are phoenix.js's: its first join is "3".
	if got := ch.JoinRef(); got != "3" {
		t.Fatalf("join ref %q, want \"3\" as phoenix.js", got)
	}
	joins := ts.joinsOf("room:1")
	if len(joins) != 1 || joins[0].joinRef != "3" || joins[0].payload != `{"hello":"world"}` {
		t.Fatalf("server saw joins %+v", joins)
	}
	if _, err := ch.Join(ctxT(t)); !errors.Is(err, client.ErrAlreadyJoined) {
		t.Fatalf("second join: %v", err)
	}
}

func TestConnectRefused(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	var errs atomic.Int32
	s := newSocket(t, ts.url(), &client.Options{
		AuthToken:      func() string { return "wrong" },
		ReconnectAfter: func(int) time.Duration { return 5 * time.Millisecond },
	})
	s.OnError(func(error) { errs.Add(1) })
	err := s.Connect(ctxT(t))
	var he *client.HandshakeError
	if !errors.As(err, &he) || he.Status != 403 {
		t.Fatalf("connect: %v, want a 403 HandshakeError", err)
	}
	// Like phoenix.js, the socket keeps trying.
	waitFor(t, "reconnect attempts", func() bool { return ts.connectCount() >= 3 && errs.Load() >= 3 })
}

func TestJoinRefusedRejoins(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), nil)
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var refuse atomic.Bool
	refuse.Store(true)
	ch := s.Channel("room:refuse", func() any { return map[string]bool{"refuse": refuse.Load()} })
	r, err := ch.Join(ctxT(t))
	if !errors.Is(err, client.ErrRefused) || r.Status != client.StatusError {
		t.Fatalf("join: %v %v", err, r)
	}
	if resp := mustJSON(t, r.Response); resp["reason"] != "refused" {
		t.Fatalf("response %v", resp)
	}
	// The channel retries with RejoinAfter, params re-evaluated, a fresh
	// join ref each time; once the server accepts, it is joined.
	waitFor(t, "rejoin attempts", func() bool { return len(ts.joinsOf("room:refuse")) >= 3 })
	refuse.Store(false)
	waitFor(t, "joined", func() bool { return ch.State() == client.StateJoined })
	seen := map[string]bool{}
	for _, j := range ts.joinsOf("room:refuse") {
		if seen[j.joinRef] {
			t.Fatalf("join ref %s reused: %+v", j.joinRef, ts.joinsOf("room:refuse"))
		}
		seen[j.joinRef] = true
	}
	if r, err := ch.Push(ctxT(t), "echo", map[string]int{"x": 1}); err != nil || !r.OK() {
		t.Fatalf("push after rejoin: %v %v", err, r)
	}
}

func TestPushReplies(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), &client.Options{Timeout: 300 * time.Millisecond})
	ch := s.Channel("room:push", nil)
	if _, err := ch.Push(ctxT(t), "echo", nil); !errors.Is(err, client.ErrNotJoined) {
		t.Fatalf("push before join: %v", err)
	}
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	r, err := ch.Push(ctxT(t), "echo", map[string]any{"a": []int{1, 2}})
	if err != nil || r.Status != "ok" || string(r.Response) != `{"a":[1,2]}` {
		t.Fatalf("echo: %v %v", err, r)
	}
	// Any JSON value may be pushed.
	r, err = ch.Push(ctxT(t), "echo", json.RawMessage(`[1,"two"]`))
	if err != nil || string(r.Response) != `[1,"two"]` {
		t.Fatalf("echo array: %v %v", err, r)
	}
	r, err = ch.Push(ctxT(t), "fail", nil)
	if err != nil || r.Status != "error" || string(r.Response) != `{"why":"failed"}` {
		t.Fatalf("fail: %v %v", err, r)
	}
	r, err = ch.Push(ctxT(t), "custom", nil)
	if err != nil || r.Status != "custom" || string(r.Response) != `{"n":1}` {
		t.Fatalf("custom: %v %v", err, r)
	}
	start := time.Now()
	r, err = ch.Push(ctxT(t), "silent", nil)
	if !errors.Is(err, client.ErrTimeout) || r.Status != client.StatusTimeout {
		t.Fatalf("silent: %v %v", err, r)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("timed out after %v, before the 300ms timeout", d)
	}
	// A cancelled context abandons the wait, not the channel.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := ch.Push(ctx, "silent", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("push with short ctx: %v", err)
	}
	if r, err := ch.Push(ctxT(t), "echo", map[string]int{"after": 1}); err != nil || !r.OK() {
		t.Fatalf("echo after: %v %v", err, r)
	}
}

func TestBroadcastReceive(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	got := make(chan string, 10)
	var socks []*client.Socket
	var chans []*client.Channel
	for i := range 2 {
		s := newSocket(t, ts.url(), nil)
		if err := s.Connect(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		ch := s.Channel("room:b", nil)
		ch.On("shout", func(m client.Message) {
			got <- fmt.Sprintf("%d %s %s", i, m.Event, m.Payload)
		})
		if _, err := ch.Join(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		socks = append(socks, s)
		chans = append(chans, ch)
	}
	if _, err := chans[0].Push(ctxT(t), "shout", map[string]string{"hi": "all"}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 2 {
		seen[recv(t, got, "a broadcast")] = true
	}
	if !seen[`0 shout {"hi":"all"}`] || !seen[`1 shout {"hi":"all"}`] {
		t.Fatalf("got %v", seen)
	}
	// Broadcast from the endpoint.
	if err := ts.ep.Broadcast(ctxT(t), "room:b", "shout", map[string]int{"n": 2}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if m := recv(t, got, "an endpoint broadcast"); !strings.HasSuffix(m, `shout {"n":2}`) {
			t.Fatalf("got %s", m)
		}
	}
	_ = socks
}

func TestHandlersInOrderOffAndMessage(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), nil)
	var mu sync.Mutex
	var got []string
	add := func(v string) { mu.Lock(); got = append(got, v); mu.Unlock() }
	s.OnMessage(func(m client.Message) {
		if m.Event == "shout" {
			add("socket:" + string(m.Payload))
		}
	})
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ch := s.Channel("room:order", nil)
	r1 := ch.On("shout", func(m client.Message) { add("a:" + string(m.Payload)) })
	ch.On("shout", func(m client.Message) {
		add("b:" + string(m.Payload))
		if m.JoinRef != ch.JoinRef() {
			add("bad join ref " + m.JoinRef)
		}
	})
	if _, err := ch.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := ts.ep.Broadcast(ctxT(t), "room:order", "shout", map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "150 callbacks", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 150 })
	mu.Lock()
	for i := range 50 {
		p := fmt.Sprintf(`{"i":%d}`, i)
		want := []string{"a:" + p, "b:" + p, "socket:" + p}
		if g := got[3*i : 3*i+3]; strings.Join(g, ",") != strings.Join(want, ",") {
			t.Fatalf("callbacks out of order at %d: %v", i, g)
		}
	}
	got = nil
	mu.Unlock()
	ch.Off(r1)
	ts.ep.Broadcast(ctxT(t), "room:order", "shout", map[string]int{"i": 99})
	waitFor(t, "2 callbacks", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 2 })
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, ",") != `b:{"i":99},socket:{"i":99}` {
		t.Fatalf("after Off: %v", got)
	}
}

func TestBinaryBothWays(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), nil)
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ch := s.Channel("room:bin", nil)
	got := make(chan client.Message, 4)
	ch.On("bin", func(m client.Message) { got <- m })
	if _, err := ch.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// Client binary push (kind 0), server binary reply (kind 1).
	r, err := ch.Push(ctxT(t), "bin_echo", client.Binary{0xde, 0xad, 0x00})
	if err != nil || !r.OK() || !r.Binary || !bytes.Equal(r.Response, []byte("echo:\xde\xad\x00")) {
		t.Fatalf("binary echo: %v %v", err, r)
	}
	// Server binary push (kind 0, 4-byte header).
	if r, err := ch.Push(ctxT(t), "push_bin", nil); err != nil || !r.OK() {
		t.Fatalf("push_bin: %v %v", err, r)
	}
	m := recv(t, got, "binary push")
	if !m.Binary || !bytes.Equal(m.Payload, []byte{0, 1, 2, 255}) || m.JoinRef != ch.JoinRef() {
		t.Fatalf("binary push %+v", m)
	}
	// Binary broadcast (kind 2).
	if err := ts.ep.Broadcast(ctxT(t), "room:bin", "bin", []byte("ignored")); err == nil {
		// A []byte marshals to a JSON string, which is not an object.
		t.Fatal("broadcast of a non-object succeeded")
	}
	if err := ts.ep.Broadcast(ctxT(t), "room:bin", "bin", plume.Binary("bcast")); err != nil {
		t.Fatal(err)
	}
	m = recv(t, got, "binary broadcast")
	if !m.Binary || string(m.Payload) != "bcast" || m.Ref != "" {
		t.Fatalf("binary broadcast %+v", m)
	}
}

func TestBinaryWithV1Refused(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), &client.Options{Serializer: wire.V1})
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ch := s.Channel("room:v1", map[string]int{"v": 1})
	if r, err := ch.Join(ctxT(t)); err != nil || mustJSON(t, r.Response)["topic"] != "room:v1" {
		t.Fatalf("V1 join: %v %v", err, r)
	}
	if r, err := ch.Push(ctxT(t), "echo", map[string]int{"x": 7}); err != nil || string(r.Response) != `{"x":7}` {
		t.Fatalf("V1 push: %v %v", err, r)
	}
	if _, err := ch.Push(ctxT(t), "bin_echo", client.Binary{1}); !errors.Is(err, wire.ErrBinaryUnsupported) {
		t.Fatalf("V1 binary push: %v", err)
	}
	// A crash is told with phx_error, whose ref names the join in V1.
	errs := make(chan string, 4)
	ch.OnError(func(m client.Message) { errs <- string(m.Payload) })
	first := ch.JoinRef()
	ch.Push(ctx50ms(t), "crash", nil)
	recv(t, errs, "phx_error")
	waitFor(t, "V1 rejoin", func() bool { return ch.State() == client.StateJoined && ch.JoinRef() != first })
}

func ctx50ms(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

func TestSendBufferFlushedInOrder(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), nil)
	ch := s.Channel("room:buf", nil)
	// Join and push before the socket connects: everything waits.
	joined := make(chan error, 1)
	go func() {
		_, err := ch.Join(context.Background())
		joined <- err
	}()
	waitFor(t, "joining", func() bool { return ch.State() == client.StateJoining })
	var wg sync.WaitGroup
	replies := make([]client.Reply, 5)
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := ch.Push(context.Background(), "echo", map[string]int{"i": i})
			if err != nil {
				t.Errorf("push %d: %v", i, err)
			}
			replies[i] = r
		}()
		// Buffer them one by one, so the order is known.
		waitFor(t, "push buffered", func() bool { return client.BufferedPushes(ch) == i+1 })
	}
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, joined, "join"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, r := range replies {
		if string(r.Response) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("reply %d: %v", i, r)
		}
	}
	var want []string
	for i := range 5 {
		want = append(want, fmt.Sprintf(`room:buf echo {"i":%d}`, i))
	}
	if got := ts.eventsSeen(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("server saw %v", got)
	}
}

func TestBufferedPushTimesOutFromPushTime(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), &client.Options{Timeout: 150 * time.Millisecond})
	ch := s.Channel("room:late", nil)
	go ch.Join(context.Background())
	waitFor(t, "joining", func() bool { return ch.State() == client.StateJoining })
	start := time.Now()
	r, err := ch.Push(ctxT(t), "echo", nil)
	if !errors.Is(err, client.ErrTimeout) || r.Status != client.StatusTimeout {
		t.Fatalf("push: %v %v", err, r)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("timeout took %v", d)
	}
	// It was never sent: the socket was not even connected.
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "joined", func() bool { return ch.State() == client.StateJoined })
	if r, err := ch.Push(ctxT(t), "echo", map[string]int{"ok": 1}); err != nil || !r.OK() {
		t.Fatalf("push: %v %v", err, r)
	}
	if got := ts.eventsSeen(); len(got) != 1 {
		t.Fatalf("server saw %v; the timed out push must not be sent", got)
	}
}

func TestHeartbeat(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	var replies atomic.Int32
	s := newSocket(t, ts.url(), &client.Options{HeartbeatInterval: 30 * time.Millisecond})
	s.OnMessage(func(m client.Message) {
		if m.Topic == "phoenix" && m.Event == "phx_reply" {
			replies.Add(1)
		}
	})
	closes := make(chan client.CloseEvent, 4)
	s.OnClose(func(e client.CloseEvent) { closes <- e })
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "5 heartbeat replies", func() bool { return replies.Load() >= 5 })
	select {
	case e := <-closes:
		t.Fatalf("closed while heartbeating: %+v", e)
	default:
	}
	rtt, err := s.Ping(ctxT(t))
	if err != nil || rtt <= 0 {
		t.Fatalf("ping: %v %v", rtt, err)
	}
	if ts.connectCount() != 1 {
		t.Fatalf("%d connections", ts.connectCount())
	}
}

func TestHeartbeatTimeoutReconnects(t *testing.T) {
	leakcheck.Check(t)
	rs := newRawServer(t)
	s := newSocket(t, rs.url(), &client.Options{
		HeartbeatInterval: 40 * time.Millisecond,
		ReconnectAfter:    func(int) time.Duration { return 10 * time.Millisecond },
	})
	closes := make(chan client.CloseEvent, 4)
	s.OnClose(func(e client.CloseEvent) { closes <- e })
	ch := s.Channel("room:hb", nil)
	errs := make(chan string, 4)
	ch.OnError(func(m client.Message) { errs <- string(m.Payload) })
	go s.Connect(context.Background())
	c1 := rs.accept()
	go ch.Join(context.Background())
	j := c1.nextEvent()
	c1.send(fmt.Sprintf(`[%q,%q,"room:hb","phx_reply",{"status":"ok","response":{}}]`, j[0], j[1]))
	// Heartbeats go unanswered: after one interval the client closes with
	// 1000 and reconnects.
	hb := c1.next()
	if hb[2] != "phoenix" || hb[3] != "heartbeat" || hb[0] != nil {
		t.Fatalf("heartbeat frame %v", hb)
	}
	if e := recv(t, errs, "phx_error"); !strings.Contains(e, "heartbeat_timeout") {
		t.Fatalf("channel error %s", e)
	}
	c1.waitClosed()
	recv(t, closes, "close")
	c2 := rs.accept()
	// The channel rejoins on the new connection with a new join ref.
	j2 := c2.nextEvent()
	if j2[3] != "phx_join" || j2[0] == j[0] {
		t.Fatalf("rejoin %v after %v", j2, j)
	}
}

func TestReconnectAfterServerDisconnect(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), &client.Options{
		Params: func() map[string]any { return map[string]any{"id": "user:1"} },
	})
	closes := make(chan client.CloseEvent, 4)
	s.OnClose(func(e client.CloseEvent) { closes <- e })
	opens := make(chan struct{}, 4)
	s.OnOpen(func() { opens <- struct{}{} })
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	recv(t, opens, "open")
	ch := s.Channel("room:dc", nil)
	if _, err := ch.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	first := ch.JoinRef()
	if err := ts.ep.Disconnect(ctxT(t), "user:1"); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, closes, "close"); e.Code != 1001 || !e.WasClean {
		t.Fatalf("close %+v, want clean 1001", e)
	}
	recv(t, opens, "reopen")
	waitFor(t, "rejoined", func() bool { return ch.State() == client.StateJoined })
	if ch.JoinRef() == first {
		t.Fatalf("rejoined with the old join ref %s", first)
	}
	if r, err := ch.Push(ctxT(t), "echo", map[string]int{"x": 1}); err != nil || !r.OK() {
		t.Fatalf("push: %v %v", err, r)
	}
	if n := len(ts.joinsOf("room:dc")); n != 2 {
		t.Fatalf("%d joins", n)
	}
}

func TestReconnectAfterShutdown(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), nil)
	closes := make(chan client.CloseEvent, 4)
	s.OnClose(func(e client.CloseEvent) { closes <- e })
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ch := s.Channel("room:drain", nil)
	if _, err := ch.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	first := ch.JoinRef()
	old := ts.ep
	ts.swap(ts.newEndpoint()) // the "restarted" server
	if err := old.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, closes, "close"); e.Code != 1012 {
		t.Fatalf("close %+v, want 1012", e)
	}
	waitFor(t, "rejoined", func() bool { return ch.State() == client.StateJoined && ch.JoinRef() != first })
	if r, err := ch.Push(ctxT(t), "echo", map[string]int{"x": 1}); err != nil || !r.OK() {
		t.Fatalf("push: %v %v", err, r)
	}
}

func TestRejoinAfterCrash(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), &client.Options{Timeout: 200 * time.Millisecond})
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ch := s.Channel("room:crash", nil)
	errs := make(chan client.Message, 4)
	ch.OnError(func(m client.Message) { errs <- m })
	if _, err := ch.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	first := ch.JoinRef()
	// The crashed push gets no reply.
	if _, err := ch.Push(ctxT(t), "crash", nil); !errors.Is(err, client.ErrTimeout) {
		t.Fatalf("crash push: %v", err)
	}
	m := recv(t, errs, "phx_error")
	if m.JoinRef != first {
		t.Fatalf("phx_error for join %s, want %s", m.JoinRef, first)
	}
	waitFor(t, "rejoined", func() bool { return ch.State() == client.StateJoined })
	if ch.JoinRef() == first {
		t.Fatal("rejoined with the same join ref")
	}
	joins := ts.joinsOf("room:crash")
	if len(joins) != 2 || joins[1].joinRef != ch.JoinRef() {
		t.Fatalf("joins %+v", joins)
	}
	if r, err := ch.Push(ctxT(t), "echo", map[string]int{"x": 1}); err != nil || !r.OK() {
		t.Fatalf("push: %v %v", err, r)
	}
}

func TestServerCloseNoRejoin(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), nil)
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ch := s.Channel("room:close", nil)
	closed := make(chan client.Message, 2)
	ch.OnClose(func(m client.Message) { closed <- m })
	if _, err := ch.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Push(ctxT(t), "close", nil); err != nil {
		t.Fatal(err)
	}
	recv(t, closed, "phx_close")
	if st := ch.State(); st != client.StateClosed {
		t.Fatalf("state %s", st)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(ts.joinsOf("room:close")); n != 1 {
		t.Fatalf("%d joins: a closed channel must not rejoin", n)
	}
	if _, err := ch.Push(ctxT(t), "echo", nil); !errors.Is(err, client.ErrChannelClosed) {
		t.Fatalf("push on closed channel: %v", err)
	}
}

func TestLeave(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), nil)
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ch := s.Channel("room:leave", nil)
	closed := make(chan string, 2)
	ch.OnClose(func(m client.Message) { closed <- string(m.Payload) })
	if _, err := ch.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := ch.Leave(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if p := recv(t, closed, "phx_close"); p != `"leave"` {
		t.Fatalf("close payload %s", p)
	}
	if topic := recv(t, ts.left, "server-side leave"); topic != "room:leave" {
		t.Fatal(topic)
	}
	if st := ch.State(); st != client.StateClosed {
		t.Fatalf("state %s", st)
	}
	if _, err := ch.Push(ctxT(t), "echo", nil); !errors.Is(err, client.ErrChannelClosed) {
		t.Fatalf("push after leave: %v", err)
	}
	// A new Channel on the same topic joins again.
	ch2 := s.Channel("room:leave", nil)
	if _, err := ch2.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestDisconnectAndConnectAgain(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), nil)
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ch := s.Channel("room:again", nil)
	if _, err := ch.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Disconnect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if st := ch.State(); st != client.StateErrored {
		t.Fatalf("state after disconnect %s", st)
	}
	time.Sleep(50 * time.Millisecond)
	if n := ts.connectCount(); n != 1 {
		t.Fatalf("%d connects: Disconnect must not reconnect", n)
	}
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rejoined", func() bool { return ch.State() == client.StateJoined })
}

func TestCloseEndsEverything(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := client.NewSocket(ts.url(), &client.Options{Timeout: 5 * time.Second, HeartbeatInterval: 20 * time.Millisecond})
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ch := s.Channel("room:end", nil)
	if _, err := ch.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	pending := make(chan error, 1)
	go func() {
		_, err := ch.Push(context.Background(), "silent", nil)
		pending <- err
	}()
	waitFor(t, "push sent", func() bool { return len(ts.eventsSeen()) == 1 })
	closes := make(chan client.CloseEvent, 1)
	s.OnClose(func(e client.CloseEvent) { closes <- e })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, pending, "pending push"); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("pending push: %v", err)
	}
	if e := recv(t, closes, "close"); e.Code != 1000 {
		t.Fatalf("close %+v", e)
	}
	if err := s.Connect(ctxT(t)); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("connect after close: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := ts.connectCount(); n != 1 {
		t.Fatalf("%d connects after Close", n)
	}
	waitFor(t, "server side closed", func() bool { return ts.ep.Connections() == 0 })
}

func TestStaleJoinRefDropped(t *testing.T) {
	leakcheck.Check(t)
	rs := newRawServer(t)
	s := newSocket(t, rs.url(), nil)
	go s.Connect(context.Background())
	c := rs.accept()
	if c.query.Get("vsn") != "2.0.0" {
		t.Fatalf("query %v", c.query)
	}
	ch := s.Channel("room:stale", nil)
	got := make(chan string, 10)
	ch.On("msg", func(m client.Message) { got <- string(m.Payload) + " " + m.JoinRef })
	joined := make(chan error, 1)
	go func() { _, err := ch.Join(context.Background()); joined <- err }()
	j := c.nextEvent()
	jr := j[0].(string)
	if j[1] != jr || j[3] != "phx_join" {
		t.Fatalf("join frame %v", j)
	}
	// A reply to an earlier join ref is ignored: still joining.
	c.send(fmt.Sprintf(`["old",%q,"room:stale","phx_reply",{"status":"ok","response":{}}]`, jr))
	c.send(fmt.Sprintf(`[%q,%q,"room:stale","phx_reply",{"status":"ok","response":{}}]`, jr, jr))
	if err := recv(t, joined, "join"); err != nil {
		t.Fatal(err)
	}
	c.send(`["old",null,"room:stale","msg",{"n":1}]`)                                    // stale: dropped
	c.send(fmt.Sprintf(`[%q,null,"room:stale","msg",{"n":2}]`, jr))                      // current
	c.send(`[null,null,"room:stale","msg",{"n":3}]`)                                     // broadcast
	c.send(`["old","old","room:stale","phx_close",{}]`)                                  // stale close: dropped
	c.send(`[null,null,"room:other","msg",{"n":4}]`)                                     // other topic
	c.sendBinary(append([]byte{0, 3, 10, 3}, []byte(`old`+"room:stale"+"msg"+"bin")...)) // stale binary push
	c.send(fmt.Sprintf(`[%q,null,"room:stale","msg",{"n":5}]`, jr))
	want := []string{`{"n":2} ` + jr, `{"n":3} ` + jr, `{"n":5} ` + jr}
	for _, w := range want {
		if g := recv(t, got, w); g != w {
			t.Fatalf("got %s, want %s", g, w)
		}
	}
	if st := ch.State(); st != client.StateJoined {
		t.Fatalf("state %s after a stale phx_close", st)
	}
	select {
	case g := <-got:
		t.Fatalf("unexpected %s", g)
	case <-time.After(30 * time.Millisecond):
	}
}

func TestDuplicateChannelLeavesOpenTopic(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), nil)
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	a := s.Channel("room:dup", nil)
	if _, err := a.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	b := s.Channel("room:dup", nil)
	if _, err := b.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if a.State() != client.StateClosed || b.State() != client.StateJoined {
		t.Fatalf("states %s %s", a.State(), b.State())
	}
	if r, err := b.Push(ctxT(t), "echo", map[string]int{"x": 1}); err != nil || !r.OK() {
		t.Fatalf("push: %v %v", err, r)
	}
}

func TestJoinTimeoutLeavesAndRejoins(t *testing.T) {
	leakcheck.Check(t)
	rs := newRawServer(t)
	s := newSocket(t, rs.url(), &client.Options{Timeout: 100 * time.Millisecond})
	go s.Connect(context.Background())
	c := rs.accept()
	ch := s.Channel("room:slow", nil)
	res := make(chan error, 1)
	go func() { _, err := ch.Join(context.Background()); res <- err }()
	j1 := c.nextEvent()
	if err := recv(t, res, "join result"); !errors.Is(err, client.ErrTimeout) {
		t.Fatalf("join: %v", err)
	}
	// phoenix.js sends a leave for the timed-out join, then rejoins.
	l := c.nextEvent()
	if l[3] != "phx_leave" || l[0] != j1[0] {
		t.Fatalf("leave %v for join %v", l, j1)
	}
	j2 := c.nextEvent()
	if j2[3] != "phx_join" || j2[0] == j1[0] {
		t.Fatalf("rejoin %v", j2)
	}
	c.send(fmt.Sprintf(`[%q,%q,"room:slow","phx_reply",{"status":"ok","response":{}}]`, j2[0], j2[1]))
	waitFor(t, "joined", func() bool { return ch.State() == client.StateJoined })
}

func TestParamsAndURL(t *testing.T) {
	leakcheck.Check(t)
	rs := newRawServer(t)
	var n atomic.Int32
	s := newSocket(t, rs.url()+"?static=1", &client.Options{
		Params: func() map[string]any {
			return map[string]any{"n": n.Add(1), "user": map[string]any{"name": "a b&c"}}
		},
		AuthToken:      func() string { return "tok/+=" },
		ReconnectAfter: func(int) time.Duration { return 5 * time.Millisecond },
	})
	go s.Connect(context.Background())
	c := rs.accept()
	if c.query.Get("n") != "1" || c.query.Get("user[name]") != "a b&c" || c.query.Get("vsn") != "2.0.0" || c.query.Get("static") != "1" {
		t.Fatalf("query %v", c.query)
	}
	if p := c.header.Get("Sec-WebSocket-Protocol"); p != "phoenix, base64url.bearer.phx.dG9rLys9" {
		t.Fatalf("protocols %q", p)
	}
	c.nc.Close()
	c2 := rs.accept()
	if c2.query.Get("n") != "2" {
		t.Fatalf("params not re-evaluated: %v", c2.query)
	}
}
