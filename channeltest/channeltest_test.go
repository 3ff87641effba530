package channeltest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/channeltest"
	"github.com/plumehq/plume/internal/leakcheck"
)

// room is the sample channel under test.
type room struct{ rec *recorder }

type afterJoin struct{}

func (r *room) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	switch topic {
	case "room:secret":
		var req struct {
			Token string `json:"token"`
		}
		if p.Decode(&req) != nil || req.Token != "s3cret" {
			return nil, plume.RefuseJoin(map[string]string{"reason": "unauthorized"})
		}
	case "room:broken":
		return nil, errors.New("room is broken")
	case "room:crash":
		panic("join exploded")
	}
	// Pushed after the join's reply, like a push from handle_info(:after_join).
	if err := ch.Push("joining", map[string]any{"early": true}); err != nil {
		return nil, err
	}
	ch.Send(afterJoin{})
	return map[string]any{"topic": topic, "user": ch.Assigns["user_id"]}, nil
}

func (r *room) HandleInfo(ch *plume.Channel, msg any) error {
	switch msg.(type) {
	case afterJoin:
		return ch.Push("welcome", map[string]any{"topic": ch.Topic()})
	}
	return nil
}

func (r *room) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	switch event {
	case "ping":
		return plume.ReplyOK(p), nil
	case "ok_empty":
		return plume.ReplyOK(nil), nil
	case "invalid":
		return plume.ReplyError(map[string]string{"reason": "invalid"}), nil
	case "custom":
		return plume.ReplyStatus("accepted", map[string]int{"n": 1}), nil
	case "string_reply":
		return plume.ReplyOK("just a string"), nil
	case "noreply":
		return plume.NoReply, nil
	case "binary":
		return plume.ReplyOK(plume.Binary(append([]byte("echo:"), p.Bytes()...))), nil
	case "push_me":
		return plume.NoReply, ch.Push("pushed", p)
	case "shout":
		return plume.NoReply, ch.Broadcast("shout", p)
	case "shout_others":
		return plume.NoReply, ch.BroadcastFrom("shout", p)
	case "later":
		ref, err := ch.SocketRef()
		if err != nil {
			return plume.NoReply, err
		}
		go ref.Reply(plume.ReplyOK(map[string]string{"later": "yes"}))
		return plume.NoReply, nil
	case "stop":
		return plume.ReplyOK(map[string]bool{"bye": true}), plume.Shutdown("done")
	case "normal":
		return plume.NoReply, plume.ErrNormal
	case "fail":
		return plume.NoReply, errors.New("failed on purpose")
	case "boom":
		panic("boom")
	case "hang_up":
		ch.Conn().Close()
		return plume.NoReply, nil
	}
	return plume.ReplyError(map[string]string{"reason": "unknown event " + event}), nil
}

func (r *room) Intercept() []string { return []string{"user_joined"} }

// HandleOut hides a user's own join from them and says who saw the others.
func (r *room) HandleOut(ch *plume.Channel, event string, p plume.Payload) error {
	m := p.Map()
	if m["user"] == ch.Assigns["user_id"] {
		return nil
	}
	m["seen_by"] = ch.Assigns["user_id"]
	return ch.Push(event, m)
}

func (r *room) Terminate(ch *plume.Channel, reason error) {
	r.rec.add(fmt.Sprintf("%s %v: %v", ch.Topic(), ch.Assigns["user_id"], reason))
}

// recorder keeps the Terminate calls.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.calls = append(r.calls, s)
	r.mu.Unlock()
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func (r *recorder) expect(t *testing.T, want ...string) {
	t.Helper()
	got := r.take()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Terminate calls:\n got %q\nwant %q", got, want)
	}
}

func newSocket(rec *recorder) *plume.Socket {
	s := &plume.Socket{
		Connect: func(ctx context.Context, c *plume.Conn) error {
			user := c.Params.String("user")
			if user == "" {
				return plume.ErrRefused
			}
			if c.Info.UserAgent == "banned" {
				return errors.New("banned client")
			}
			c.ID = "user_socket:" + user
			c.Assign("user_id", user)
			return nil
		},
	}
	s.Channel("room:*", func() plume.ChannelHandler { return &room{rec: rec} })
	return s
}

func setup(t *testing.T) (*channeltest.Harness, *recorder) {
	t.Helper()
	return setupWith(t, channeltest.Options{})
}

func setupWith(t *testing.T, opts channeltest.Options) (*channeltest.Harness, *recorder) {
	t.Helper()
	leakcheck.Check(t)
	rec := &recorder{}
	// Generous assert timeouts cost nothing when assertions pass.
	opts.AssertTimeout = 2 * time.Second
	return channeltest.New(t, newSocket(rec), opts), rec
}

func join(t *testing.T, c *channeltest.Client, topic string) *channeltest.Channel {
	t.Helper()
	ch, err := c.Join(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch.AssertPush("joining")
	ch.AssertPush("welcome")
	return ch
}

func TestJoin(t *testing.T) {
	ct, _ := setup(t)
	c := ct.Socket("user_socket:ann", map[string]any{"user_id": "ann"})
	if c.Conn().ID != "user_socket:ann" || c.Conn().Assigns["user_id"] != "ann" {
		t.Fatalf("conn id %q assigns %v", c.Conn().ID, c.Conn().Assigns)
	}
	if got := c.Conn().TransportName(); got != channeltest.TransportName {
		t.Fatalf("transport %q", got)
	}

	lobby, err := c.Join("room:lobby", map[string]any{"hello": 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := lobby.JoinReply().String(); got != `{"topic":"room:lobby","user":"ann"}` {
		t.Fatalf("join reply %s", got)
	}
	if lobby.Topic() != "room:lobby" || lobby.Client() != c {
		t.Fatal("Topic or Client")
	}
	// The push made during Join arrives after the reply, then HandleInfo's.
	lobby.AssertPush("joining", map[string]any{"early": true})
	lobby.AssertPush("welcome", map[string]any{"topic": "room:lobby"})

	secret, err := c.Join("room:secret", map[string]any{"token": "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	secret.AssertPush("welcome")
	if c.Conn().Channels() != 2 {
		t.Fatalf("%d channels joined", c.Conn().Channels())
	}
}

func TestJoinRefused(t *testing.T) {
	ct, rec := setup(t)
	c := ct.Socket("", nil)
	for _, tc := range []struct {
		topic   string
		payload any
		reply   string
	}{
		{"room:secret", map[string]any{"token": "wrong"}, `{"reason":"unauthorized"}`},
		{"room:broken", nil, `{"reason":"room is broken"}`},
		{"room:crash", nil, `{"reason":"join crashed"}`},
	} {
		_, err := c.Join(tc.topic, tc.payload)
		var je *channeltest.JoinError
		if !errors.As(err, &je) {
			t.Fatalf("join %s: err = %v, want a JoinError", tc.topic, err)
		}
		if je.Topic != tc.topic || je.Reply.String() != tc.reply {
			t.Fatalf("join %s: %+v, want reply %s", tc.topic, je, tc.reply)
		}
		if !strings.Contains(err.Error(), tc.reply) {
			t.Fatalf("error text %q", err)
		}
	}
	if _, err := c.Join("lobby", nil); !errors.Is(err, channeltest.ErrUnmatchedTopic) {
		t.Fatalf("unmatched topic: err = %v", err)
	}
	if c.Conn().Channels() != 0 {
		t.Fatalf("%d channels joined", c.Conn().Channels())
	}
	rec.expect(t) // refused joins never terminate
	c.Close()
	if _, err := c.Join("room:1", nil); !errors.Is(err, channeltest.ErrClosed) {
		t.Fatalf("join on a closed client: err = %v", err)
	}
}

func TestReplies(t *testing.T) {
	ct, _ := setup(t)
	ch := join(t, ct.Socket("", nil), "room:1")

	ref := ch.Push("ping", map[string]any{"a": 1, "nested": map[string]any{"b": []any{1, "two"}}})
	if got := ch.AssertReply(ref, "ok").String(); got != `{"a":1,"nested":{"b":[1,"two"]}}` {
		t.Fatalf("echo %s", got)
	}
	ch.AssertReply(ch.Push("ok_empty", nil), "ok", map[string]any{})
	ch.AssertReply(ch.Push("invalid", nil), "error", map[string]any{"reason": "invalid"})
	ch.AssertReply(ch.Push("custom", nil), "accepted", map[string]any{"n": 1})
	ch.AssertReply(ch.Push("string_reply", nil), "ok", "just a string")
	// Any JSON payload reaches HandleIn, as phoenix.js may send one.
	ch.AssertReply(ch.Push("ping", 42), "ok", 42)
	ch.AssertReply(ch.Push("ping", []any{1, "two"}), "ok", []any{1, "two"})

	ref = ch.Push("noreply", nil)
	ch.RefuteReply(ref, "ok")
	ch.RefuteReply(ref, "error")

	// A binary push is a binary frame; the binary reply comes back as one.
	ref = ch.Push("binary", plume.Binary{1, 2, 3})
	p := ch.AssertReply(ref, "ok", []byte("echo:\x01\x02\x03"))
	if !p.IsBinary() {
		t.Fatal("binary reply is not binary")
	}
	ref = ch.Push("binary", []byte{9})
	ch.AssertReply(ref, "ok", func(b []byte) bool { return len(b) == 6 && b[5] == 9 })

	// Async reply with SocketRef from another goroutine.
	ch.AssertReply(ch.Push("later", nil), "ok", map[string]any{"later": "yes"})

	ch.AssertReply(ch.Push("what", nil), "error", map[string]any{"reason": "unknown event what"})
	ch.RefutePush("phx_error")
}

func TestPush(t *testing.T) {
	ct, _ := setup(t)
	ch := join(t, ct.Socket("", nil), "room:1")
	ch.Push("push_me", map[string]any{"x": 1})
	ch.Push("push_me", map[string]any{"x": 2})
	// Messages are consumed in order; a pattern skips the ones it does not match.
	ch.AssertPush("pushed", map[string]any{"x": 2})
	ch.AssertPush("pushed", map[string]any{"x": 1})
	ch.RefutePush("pushed")

	ch.Push("push_me", plume.Binary("raw"))
	if p := ch.AssertPush("pushed", plume.Binary("raw")); !p.IsBinary() {
		t.Fatal("binary push is not binary")
	}
}

func TestBroadcast(t *testing.T) {
	ct, _ := setup(t)
	a := ct.Socket("", map[string]any{"user_id": "a"})
	b := ct.Socket("", map[string]any{"user_id": "b"})
	ca, cb := join(t, a, "room:1"), join(t, b, "room:1")
	other := join(t, a, "room:2")

	// From the endpoint: every member gets it through fastlane.
	if err := ct.Endpoint().Broadcast(context.Background(), "room:1", "news", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	ca.AssertPush("news", map[string]any{"n": 1})
	cb.AssertPush("news", map[string]any{"n": 1})
	other.RefutePush("news")

	// From a channel: its own client included.
	ca.Push("shout", map[string]any{"body": "hi"})
	ca.AssertPush("shout", map[string]any{"body": "hi"})
	cb.AssertPush("shout", map[string]any{"body": "hi"})

	// Channel.BroadcastFrom skips the sender's own client.
	cb.Push("shout_others", map[string]any{"body": "psst"})
	ca.AssertPush("shout", map[string]any{"body": "psst"})
	cb.RefutePush("shout")

	// Binary broadcasts are binary frames.
	ct.Endpoint().Broadcast(context.Background(), "room:1", "bin", plume.Binary{0xde, 0xad})
	ca.AssertPush("bin", []byte{0xde, 0xad})
}

func TestSubscribeAndJoin(t *testing.T) {
	ct, _ := setup(t)
	ch, err := ct.Socket("", map[string]any{"user_id": "a"}).SubscribeAndJoin("room:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	ch.Push("shout", map[string]any{"body": "hi"})
	ch.AssertBroadcast("shout", map[string]any{"body": "hi"})
	ch.AssertPush("shout", map[string]any{"body": "hi"})
	ch.RefuteBroadcast("shout")

	// The test's subscription is one per topic, like the test process.
	sub := ct.Subscribe("room:1")
	if sub.Topic() != "room:1" {
		t.Fatal(sub.Topic())
	}
	ct.Endpoint().Broadcast(context.Background(), "room:1", "news", map[string]any{"n": 1})
	sub.AssertBroadcast("news", map[string]any{"n": 1})
	ch.RefuteBroadcast("news")

	// A subscription to a topic nobody joined.
	feed := ct.Subscribe("feed")
	ct.Endpoint().Broadcast(context.Background(), "feed", "item", map[string]any{"id": 7})
	feed.AssertBroadcast("item", func(m map[string]any) bool { return m["id"] == 7.0 })
	feed.RefuteBroadcast("item")
}

func TestBroadcastFromTest(t *testing.T) {
	ct, _ := setup(t)
	a, err := ct.Socket("", map[string]any{"user_id": "a"}).SubscribeAndJoin("room:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := join(t, ct.Socket("", map[string]any{"user_id": "b"}), "room:1")
	a.BroadcastFrom("news", map[string]any{"n": 1})
	// As in Phoenix: the test's own subscription does not see it, the
	// joined channels do.
	a.RefuteBroadcast("news")
	a.AssertPush("news", map[string]any{"n": 1})
	b.AssertPush("news", map[string]any{"n": 1})

	// Intercepted events go through HandleOut.
	a.BroadcastFrom("user_joined", map[string]any{"user": "a"})
	a.RefutePush("user_joined")
	b.AssertPush("user_joined", map[string]any{"user": "a", "seen_by": "b"})
}

func TestHandleOut(t *testing.T) {
	ct, _ := setup(t)
	a := join(t, ct.Socket("", map[string]any{"user_id": "a"}), "room:1")
	b := join(t, ct.Socket("", map[string]any{"user_id": "b"}), "room:1")
	ct.Endpoint().Broadcast(context.Background(), "room:1", "user_joined", map[string]any{"user": "b"})
	a.AssertPush("user_joined", map[string]any{"user": "b", "seen_by": "a"})
	b.RefutePush("user_joined")
}

func TestLeave(t *testing.T) {
	ct, rec := setup(t)
	c := ct.Socket("", map[string]any{"user_id": "a"})
	ch := join(t, c, "room:1")
	ref := ch.Leave()
	ch.AssertReply(ref, "ok", map[string]any{})
	ch.AssertClose()
	rec.expect(t, "room:1 a: shutdown: left")
	if c.Conn().Channels() != 0 {
		t.Fatal("channel still joined")
	}
	// The topic is no longer joined.
	ch.AssertReply(ch.Push("ping", nil), "error", map[string]any{"reason": "unmatched topic"})
	// Leaving again is answered ok, as Phoenix does.
	ch.AssertReply(ch.Leave(), "ok")
}

func TestClose(t *testing.T) {
	ct, rec := setup(t)
	c := ct.Socket("", map[string]any{"user_id": "a"})
	one, two := join(t, c, "room:1"), join(t, c, "room:2")
	c.Close()
	got := rec.take()
	if len(got) != 2 || !contains(got, "room:1 a: shutdown: closed") || !contains(got, "room:2 a: shutdown: closed") {
		t.Fatalf("Terminate calls %q", got)
	}
	// A closed connection sends no phx_close.
	one.RefutePush("phx_close")
	two.RefutePush("phx_close")
	c.Close() // idempotent
	rec.expect(t)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestStop(t *testing.T) {
	ct, rec := setup(t)
	c := ct.Socket("", map[string]any{"user_id": "a"})

	ch := join(t, c, "room:1")
	ref := ch.Push("stop", nil)
	ch.AssertReply(ref, "ok", map[string]any{"bye": true})
	ch.AssertClose()
	rec.expect(t, "room:1 a: shutdown: done")

	ch = join(t, c, "room:1")
	ch.Push("normal", nil)
	ch.AssertClose()
	ch.RefutePush("phx_error")
	rec.expect(t, "room:1 a: shutdown: normal")

	// Returning any other error is a crash: Terminate runs, phx_error.
	ch = join(t, c, "room:1")
	ch.Push("fail", nil)
	ch.AssertError()
	rec.expect(t, "room:1 a: failed on purpose")
}

func TestCrash(t *testing.T) {
	ct, rec := setup(t)
	c := ct.Socket("", map[string]any{"user_id": "a"})
	ch := join(t, c, "room:1")
	ref := ch.Push("boom", nil)
	ch.AssertError()
	ch.RefutePush("phx_close")
	ch.RefuteReply(ref, "ok")
	rec.expect(t) // Terminate is not called after a panic.
	ch.AssertReply(ch.Push("ping", nil), "error", map[string]any{"reason": "unmatched topic"})

	// The client may rejoin; the new join's messages are its own.
	again := join(t, c, "room:1")
	again.AssertReply(again.Push("ping", map[string]any{"x": 1}), "ok", map[string]any{"x": 1})
}

func TestDuplicateJoin(t *testing.T) {
	ct, rec := setup(t)
	c := ct.Socket("", map[string]any{"user_id": "a"})
	old := join(t, c, "room:1")
	renewed := join(t, c, "room:1")
	old.AssertClose()
	renewed.RefutePush("phx_close")
	rec.expect(t, "room:1 a: shutdown: duplicate_join")
	renewed.AssertReply(renewed.Push("ping", map[string]any{"x": 1}), "ok")
	// A push on the old join_ref is stale and dropped without a reply.
	old.RefuteReply(old.Push("ping", nil), "ok")
}

func TestConnect(t *testing.T) {
	ct, rec := setup(t)
	if _, err := ct.Connect(nil, plume.ConnectInfo{}); !errors.Is(err, plume.ErrRefused) {
		t.Fatalf("no user: err = %v", err)
	}
	if _, err := ct.Connect(plume.Params{"user": "x"}, plume.ConnectInfo{UserAgent: "banned"}); err == nil || err.Error() != "banned client" {
		t.Fatalf("banned: err = %v", err)
	}
	c, err := ct.Connect(map[string]any{"user": "ann"}, plume.ConnectInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Conn().ID != "user_socket:ann" || c.Conn().Params.String("user") != "ann" || c.Conn().Vsn() != "2.0.0" {
		t.Fatalf("conn %q %v %s", c.Conn().ID, c.Conn().Params, c.Conn().Vsn())
	}
	if ct.Endpoint().Connections() != 1 {
		t.Fatalf("%d connections", ct.Endpoint().Connections())
	}
	ch := join(t, c, "room:1")
	if got := ch.JoinReply().Map()["user"]; got != "ann" {
		t.Fatalf("user %v", got)
	}

	// Disconnecting the socket id closes the connection (1001).
	if err := ct.Endpoint().Disconnect(context.Background(), "user_socket:ann"); err != nil {
		t.Fatal(err)
	}
	c.AssertDisconnect(plume.CloseGoingAway)
	rec.expect(t, "room:1 ann: shutdown: closed")
	if ct.Endpoint().Connections() != 0 {
		t.Fatalf("%d connections", ct.Endpoint().Connections())
	}
}

func TestCloseFromChannel(t *testing.T) {
	ct, rec := setup(t)
	c := ct.Socket("", map[string]any{"user_id": "a"})
	ch := join(t, c, "room:1")
	ch.Push("hang_up", nil)
	c.AssertDisconnect(plume.CloseNormal)
	rec.expect(t, "room:1 a: shutdown: closed")
}

func TestShutdown(t *testing.T) {
	ct, rec := setup(t)
	c := ct.Socket("", map[string]any{"user_id": "a"})
	join(t, c, "room:1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ct.Endpoint().Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.AssertDisconnect(plume.CloseServiceRestart)
	rec.expect(t, "room:1 a: shutdown: draining")
	if _, err := ct.Connect(plume.Params{"user": "b"}, plume.ConnectInfo{}); !errors.Is(err, plume.ErrDraining) {
		t.Fatalf("connect while draining: err = %v", err)
	}
}

func TestPatterns(t *testing.T) {
	// Refutations here look at a message that is already in, so they need
	// not watch for long.
	ct, _ := setupWith(t, channeltest.Options{RefuteTimeout: time.Millisecond})
	ch := join(t, ct.Socket("", nil), "room:1")
	payload := map[string]any{"a": 1, "b": map[string]any{"c": []any{1, 2}, "d": "x"}, "e": nil, "f": 1.5, "g": true}
	type pt struct {
		A int `json:"a"`
		B struct {
			C []int `json:"c"`
		} `json:"b"`
	}
	for _, tc := range []struct {
		want  []any
		match bool
	}{
		{nil, true},
		{[]any{nil}, true},
		{[]any{map[string]any{}}, true},
		{[]any{map[string]any{"a": 1}}, true},
		{[]any{map[string]any{"a": 1.0}}, true},
		{[]any{map[string]any{"a": 2}}, false},
		{[]any{map[string]any{"a": "1"}}, false},
		{[]any{map[string]any{"b": map[string]any{"d": "x"}}}, true},
		{[]any{map[string]any{"b": map[string]any{"c": []any{1}}}}, false},
		{[]any{map[string]any{"b": map[string]any{"c": []int{1, 2}}}}, true},
		{[]any{map[string]any{"e": nil}}, true},
		{[]any{map[string]any{"z": nil}}, false},
		{[]any{map[string]any{"f": 1.5, "g": true}}, true},
		{[]any{map[string]any{"g": false}}, false},
		{[]any{[]any{}}, false},
		{[]any{"str"}, false},
		{[]any{[]byte{1}}, false},
		{[]any{func(m map[string]any) bool { return m["a"] == 1.0 }}, true},
		{[]any{func(m map[string]any) bool { return m["a"] == 2.0 }}, false},
		{[]any{func(p pt) bool { return p.A == 1 && len(p.B.C) == 2 }}, true},
		{[]any{func(p []int) bool { return true }}, false}, // does not decode
		{[]any{func(p plume.Payload) bool { return !p.IsBinary() }}, true},
		{[]any{func(b []byte) bool { return true }}, false}, // not binary
		{[]any{map[string]any{"a": 1}, func(m map[string]any) bool { return m["g"] == true }}, true},
		{[]any{map[string]any{"a": 1}, func(m map[string]any) bool { return m["g"] == false }}, false},
		{[]any{struct {
			A int `json:"a"`
		}{1}}, true},
		{[]any{plume.JSONPayload([]byte(`{"b":{"d":"x"}}`))}, true},
	} {
		ch.Push("push_me", payload)
		// Messages are handled in order: once this reply is in, the push is.
		ch.AssertReply(ch.Push("ok_empty", nil), "ok")
		if tc.match {
			ch.AssertPush("pushed", tc.want...)
		} else {
			ch.RefutePush("pushed", tc.want...)
			ch.AssertPush("pushed") // consume it
		}
	}
}

func TestOptions(t *testing.T) {
	ep := plume.NewEndpoint(plume.Options{})
	ct, ft := failing(t, channeltest.Options{Endpoint: ep, AssertTimeout: 30 * time.Millisecond, RefuteTimeout: 20 * time.Millisecond})
	if ct.Endpoint() != ep {
		t.Fatal("Endpoint not used")
	}
	ch, err := ct.Socket("", nil).Join("room:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if msg := fails(t, ft, func() { ch.AssertPush("never") }); !strings.Contains(msg, "within 30ms") {
		t.Fatalf("failure %q", msg)
	}
	ch.AssertPush("welcome")
	ch.RefutePush("never")
}

// fatalT records the test kit's t.Fatalf instead of failing the test.
type fatalT struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalT) Fatalf(format string, a ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, a...)
	f.mu.Unlock()
	runtime.Goexit()
}

// failing returns a Harness whose failures [fails] reports.
func failing(t *testing.T, opts ...channeltest.Options) (*channeltest.Harness, *fatalT) {
	leakcheck.Check(t)
	ft := &fatalT{TB: t}
	return channeltest.New(ft, newSocket(&recorder{}), opts...), ft
}

// fails runs f, which must fail ft's test with Fatalf, and returns the
// failure message.
func fails(t *testing.T, ft *fatalT, f func()) string {
	t.Helper()
	ft.mu.Lock()
	ft.msg = ""
	ft.mu.Unlock()
	done := make(chan bool)
	go func() {
		completed := false
		defer func() { done <- completed }()
		f()
		completed = true
	}()
	if <-done {
		t.Fatal("the assertion did not fail")
	}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.msg
}

func TestFailureMessages(t *testing.T) {
	ct, ft := failing(t)
	c := ct.Socket("", nil)
	ch, err := c.Join("room:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	ch.AssertPush("welcome")
	ch.Push("push_me", map[string]any{"x": 1})
	ref := ch.Push("ping", map[string]any{"y": 2})
	// The channel handles messages in order: once this reply is in, the
	// others are too.
	ch.AssertReply(ch.Push("ok_empty", nil), "ok")

	for _, tc := range []struct {
		name string
		f    func()
		want []string
	}{
		{"AssertPush", func() { ch.AssertPush("pushed", map[string]any{"x": 2}) }, []string{
			`AssertPush: no push "pushed" matching {"x":2} on "room:1" within 100ms`,
			`messages received and not yet asserted:`,
			`"room:1" push "joining" {"early":true}`,
			`"room:1" push "pushed" {"x":1}`,
			`"room:1" reply to ref 3: "ok" {"y":2}`,
		}},
		{"AssertReply", func() { ch.AssertReply(ref, "error") }, []string{
			`AssertReply: no "error" reply to ref 3 on "room:1"`,
			`"room:1" reply to ref 3: "ok" {"y":2}`,
		}},
		{"RefutePush", func() { ch.RefutePush("pushed", func(m map[string]any) bool { return true }) }, []string{
			`RefutePush: unexpected push "pushed" matching func(map[string]interface {}) bool:`,
			`"room:1" push "pushed" {"x":1}`,
		}},
		{"RefuteReply", func() { ch.RefuteReply(ref, "ok") }, []string{
			`RefuteReply: unexpected "ok" reply to ref 3`,
		}},
		{"AssertBroadcast", func() { ch.AssertBroadcast("x") }, []string{
			`AssertBroadcast: the test is not subscribed to "room:1"`,
		}},
		{"bad predicate", func() { ch.AssertPush("pushed", func(a, b int) bool { return true }) }, []string{
			`AssertPush: want func(int, int) bool: a predicate must be a non-nil func(T) bool`,
		}},
		{"bad want", func() { ch.AssertPush("pushed", make(chan int)) }, []string{
			`AssertPush: want chan int: json: unsupported type`,
		}},
		{"AssertClose", func() { ch.AssertClose() }, []string{
			`AssertClose: no phx_close on "room:1"`,
		}},
		{"AssertError", func() { ch.AssertError() }, []string{
			`AssertError: no phx_error on "room:1"`,
		}},
		{"AssertDisconnect", func() { c.AssertDisconnect(1000) }, []string{
			`AssertDisconnect(1000): the connection is still open after 100ms`,
		}},
		{"BroadcastFrom", func() { ch.BroadcastFrom("x", "not an object") }, []string{
			`BroadcastFrom "x" on "room:1": plume: push and broadcast payloads must be a JSON object`,
		}},
		{"Push", func() { ch.Push("x", make(chan int)) }, []string{
			`x on "room:1": payload: json: unsupported type: chan int`,
		}},
	} {
		msg := fails(t, ft, tc.f)
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: failure message\n%s\ndoes not contain\n%s", tc.name, msg, w)
			}
		}
	}
	// Failed assertions consume nothing.
	ch.AssertPush("pushed", map[string]any{"x": 1})
	ch.AssertReply(ref, "ok", map[string]any{"y": 2})

	sub := ct.Subscribe("feed")
	fails(t, ft, func() { sub.AssertBroadcast("item") })
	if !strings.Contains(ft.msg, `AssertBroadcast: no broadcast "item" on "feed" within 100ms`) ||
		!strings.Contains(ft.msg, "broadcasts received and not yet asserted: none") {
		t.Errorf("failure message %s", ft.msg)
	}
	ct.Endpoint().Broadcast(context.Background(), "feed", "item", map[string]any{"id": 1})
	fails(t, ft, func() { sub.RefuteBroadcast("item", map[string]any{"id": 1}) })
	if !strings.Contains(ft.msg, `RefuteBroadcast: unexpected broadcast "item" matching {"id":1} on "feed":`) ||
		!strings.Contains(ft.msg, `"feed" broadcast "item" {"id":1}`) {
		t.Errorf("failure message %s", ft.msg)
	}

	c.Close()
	fails(t, ft, func() { ch.Push("ping", nil) })
	if !strings.Contains(ft.msg, `ping on "room:1": the connection is closed`) {
		t.Errorf("failure message %s", ft.msg)
	}
	fails(t, ft, func() { c.AssertDisconnect(1000) })
	if !strings.Contains(ft.msg, `AssertDisconnect(1000): the test closed the connection`) {
		t.Errorf("failure message %s", ft.msg)
	}
}

func TestNewFails(t *testing.T) {
	ft := &fatalT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		channeltest.New(ft, nil)
	}()
	<-done
	if ft.msg != "channeltest: New: nil socket" {
		t.Fatalf("message %q", ft.msg)
	}
}
