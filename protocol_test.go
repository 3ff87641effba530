package plume_test

// Raw-frame tests of the core runtime over real WebSocket connections. Every
// expected frame is written out byte for byte; where the Phoenix 1.7
// transcripts (/work/shared/reference/phoenix-1.7-transcripts.md) have the
// same exchange, the frames are copied from there, with Phoenix 1.8's rules
// where the two differ (stale join_refs are dropped, "disconnect" closes with
// 1001).

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/internal/leakcheck"
)

// phxErrorPayload is the payload of phx_error. Phoenix up to 1.8.9 (and the
// 1.7 transcripts) send {}; 1.8.10+ send {"reason":"channel_crash"}.
const phxErrorPayload = `{"reason":"channel_crash"}`

// ptTerm is one Terminate call.
type ptTerm struct {
	topic   string
	joinRef string
	reason  error
}

// ptServer is an endpoint with the test channels mounted at /socket, served
// over a real listener.
type ptServer struct {
	t     *testing.T
	ep    *plume.Endpoint
	sock  *plume.Socket
	srv   *httptest.Server
	terms chan ptTerm
	conns chan ptConn
	logs  *ptLogs
}

// ptConn is what Connect saw of a connection.
type ptConn struct {
	params    plume.Params
	info      plume.ConnectInfo
	vsn       string
	transport string
}

type ptConfig struct {
	socket  func(*plume.Socket)
	options func(*plume.Options)
	// listener wraps the server's listener.
	listener func(net.Listener) net.Listener
}

// newPTServer starts a server whose socket routes:
//
//	room:*, campaign:*  ptChannel (events below)
//	intercept:*         ptInterceptChannel (intercepts "modify" and "drop")
//	plain:*             a channel with only Join
//
// Connect assigns "user" from the user param, sets c.ID from the id param,
// refuses when the refuse param is present and panics on the panic param.
func newPTServer(t *testing.T, cfg ptConfig) *ptServer {
	t.Helper()
	s := &ptServer{
		t:     t,
		terms: make(chan ptTerm, 1024),
		conns: make(chan ptConn, 1024),
		logs:  &ptLogs{},
	}
	sock := &plume.Socket{
		Connect: func(ctx context.Context, c *plume.Conn) error {
			if _, ok := c.Params["refuse"]; ok {
				return plume.ErrRefused
			}
			if _, ok := c.Params["panic"]; ok {
				panic("connect panic")
			}
			c.ID = c.Params.String("id")
			if u := c.Params.String("user"); u != "" {
				c.Assign("user", u)
			}
			s.conns <- ptConn{c.Params, c.Info, c.Vsn(), c.TransportName()}
			return nil
		},
	}
	newCh := func() plume.ChannelHandler { return &ptChannel{s: s} }
	sock.Channel("room:*", newCh)
	sock.Channel("campaign:*", newCh)
	sock.Channel("intercept:*", func() plume.ChannelHandler { return &ptInterceptChannel{ptChannel{s: s}} })
	sock.Channel("plain:*", func() plume.ChannelHandler { return ptPlainChannel{} })
	opts := plume.Options{Logger: slog.New(s.logs)}
	if cfg.socket != nil {
		cfg.socket(sock)
	}
	if cfg.options != nil {
		cfg.options(&opts)
	}
	s.ep = plume.NewEndpoint(opts)
	s.ep.Mount("/socket", sock)
	s.sock = sock
	s.srv = httptest.NewUnstartedServer(s.ep)
	if cfg.listener != nil {
		s.srv.Listener = cfg.listener(s.srv.Listener)
	}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

// dial connects a raw client that fails t, and is closed when the server's
// test ends (not t, which may be a subtest: connections of earlier subtests
// stay open so that their channels' Terminate calls come at the very end).
func (s *ptServer) dial(t testing.TB, query string) *rawClient {
	t.Helper()
	c := dialRaw(t, s.srv, query, nil)
	s.t.Cleanup(c.Close)
	return c
}

// dialV2 connects with vsn=2.0.0 and extra query params.
func (s *ptServer) dialV2(t testing.TB, extra string) *rawClient {
	t.Helper()
	q := "vsn=2.0.0"
	if extra != "" {
		q += "&" + extra
	}
	return s.dial(t, q)
}

// expectTerm waits for the next Terminate call and checks it.
func (s *ptServer) expectTerm(t testing.TB, topic, joinRef string, reason error) {
	t.Helper()
	select {
	case tm := <-s.terms:
		if tm.topic != topic || tm.joinRef != joinRef || !errors.Is(tm.reason, reason) {
			t.Fatalf("Terminate(%s %s, %v), want Terminate(%s %s, %v)", tm.topic, tm.joinRef, tm.reason, topic, joinRef, reason)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("no Terminate(%s %s, %v)", topic, joinRef, reason)
	}
}

// expectNoTerm requires that no Terminate call has been made.
func (s *ptServer) expectNoTerm(t testing.TB) {
	t.Helper()
	select {
	case tm := <-s.terms:
		t.Fatalf("unexpected Terminate(%s %s, %v)", tm.topic, tm.joinRef, tm.reason)
	default:
	}
}

// ptLogs is a slog.Handler that keeps messages, so that tests can see what
// the endpoint logged (e.g. the slow-client warning).
type ptLogs struct {
	mu   sync.Mutex
	msgs []string
}

func (l *ptLogs) Enabled(context.Context, slog.Level) bool { return true }
func (l *ptLogs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}
func (l *ptLogs) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *ptLogs) WithGroup(string) slog.Handler      { return l }

func (l *ptLogs) contains(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, sub) {
			return true
		}
	}
	return false
}

// ptChannel is the test channel. Join options (JSON payload keys):
//
//	reply         returned as the join reply
//	refuse        RefuseJoin(refuse)
//	error         errors.New(error)
//	panic         panics
//	push_in_join  pushes "joined" from Join (sent after the reply)
//	after_join    Send("after_join"): HandleInfo pushes "after_join"
type ptChannel struct {
	s       *ptServer
	release chan struct{} // see "async"
}

func (h *ptChannel) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	var o struct {
		Reply      any            `json:"reply"`
		Refuse     map[string]any `json:"refuse"`
		Error      string         `json:"error"`
		Panic      bool           `json:"panic"`
		PushInJoin bool           `json:"push_in_join"`
		AfterJoin  bool           `json:"after_join"`
	}
	if !p.IsBinary() {
		_ = p.Decode(&o)
	}
	switch {
	case o.Panic:
		panic("join panic")
	case o.Refuse != nil:
		return nil, plume.RefuseJoin(o.Refuse)
	case o.Error != "":
		return nil, errors.New(o.Error)
	}
	if o.PushInJoin {
		if err := ch.Push("joined", map[string]string{"topic": topic}); err != nil {
			return nil, err
		}
	}
	if o.AfterJoin {
		ch.Send("after_join")
	}
	return o.Reply, nil
}

// HandleIn events:
//
//	echo, ping      reply ok with the payload (binary in, binary out)
//	ok_empty        reply ok, no payload
//	error           reply error {"reason":"bad"}
//	error_empty     reply error, no payload
//	status          reply status "accepted" with the payload
//	status_only     reply status "pending", no payload
//	noreply         no reply
//	async           reply from another goroutine via SocketRef, once the
//	                channel has handled "release" (which does not reply)
//	inspect         reply {"binary":bool,"hex":...} about the payload
//	push            push "pushed" with the payload
//	push_binary     push "bin" with bytes 1 2 3
//	broadcast       broadcast "shout" with the payload, reply ok
//	broadcast_from  broadcast_from "shout" with the payload, reply ok
//	bad_payloads    try non-object payloads, reply with the errors seen
//	send            Send("sent"): HandleInfo pushes "sent"
//	send_after      SendAfter(20ms, "later")
//	send_cancel     SendAfter(1h, "cancelled") and cancel it
//	subscribe       Subscribe(payload.topic)
//	stop            reply ok and stop with ErrNormal
//	stop_noreply    stop with Shutdown("bye"), no reply
//	stop_outside    reply ok; another goroutine calls Stop(Shutdown("outside"))
//	fail            stop with a plain error, no reply
//	fail_reply      reply ok and stop with a plain error
//	panic           panic
func (h *ptChannel) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	switch event {
	case "echo", "ping":
		return plume.ReplyOK(p), nil
	case "ok_empty":
		return plume.ReplyOK(nil), nil
	case "error":
		return plume.ReplyError(map[string]string{"reason": "bad"}), nil
	case "error_empty":
		return plume.ReplyError(nil), nil
	case "status":
		return plume.ReplyStatus("accepted", p), nil
	case "status_only":
		return plume.ReplyStatus("pending", nil), nil
	case "noreply":
		return plume.NoReply, nil
	case "async":
		ref, err := ch.SocketRef()
		if err != nil {
			return plume.Reply{}, err
		}
		release := make(chan struct{})
		h.release = release
		go func() {
			<-release
			ref.Reply(plume.ReplyOK(map[string]bool{"async": true}))
		}()
		return plume.NoReply, nil
	case "release":
		close(h.release)
		return plume.NoReply, nil
	case "inspect":
		return plume.ReplyOK(map[string]any{"binary": p.IsBinary(), "hex": hex.EncodeToString(p.Bytes())}), nil
	case "push":
		return plume.NoReply, ch.Push("pushed", p)
	case "push_binary":
		return plume.NoReply, ch.Push("bin", plume.Binary{1, 2, 3})
	case "broadcast":
		if err := ch.Broadcast("shout", p); err != nil {
			return plume.Reply{}, err
		}
		return plume.ReplyOK(nil), nil
	case "broadcast_from":
		if err := ch.BroadcastFrom("shout", p); err != nil {
			return plume.Reply{}, err
		}
		return plume.ReplyOK(nil), nil
	case "bad_payloads":
		_, refErr := ch.SocketRef()
		return plume.ReplyOK(map[string]bool{
			"push":           errors.Is(ch.Push("x", "a string"), plume.ErrBadPayload),
			"push_array":     errors.Is(ch.Push("x", []int{1}), plume.ErrBadPayload),
			"push_raw":       errors.Is(ch.Push("x", json.RawMessage(`"s"`)), plume.ErrBadPayload),
			"push_echo":      errors.Is(ch.Push("x", p), plume.ErrBadPayload),
			"broadcast":      errors.Is(ch.Broadcast("x", 42), plume.ErrBadPayload),
			"broadcast_from": errors.Is(ch.BroadcastFrom("x", true), plume.ErrBadPayload),
			"socket_ref_ok":  refErr == nil,
		}), nil
	case "send":
		ch.Send("sent")
		return plume.ReplyOK(nil), nil
	case "send_after":
		ch.SendAfter(20*time.Millisecond, "later")
		return plume.ReplyOK(nil), nil
	case "send_cancel":
		cancel := ch.SendAfter(time.Hour, "cancelled")
		return plume.ReplyOK(map[string]bool{"cancelled": cancel()}), nil
	case "subscribe":
		var o struct{ Topic string }
		if err := p.Decode(&o); err != nil {
			return plume.Reply{}, err
		}
		if err := ch.Subscribe(o.Topic); err != nil {
			return plume.Reply{}, err
		}
		return plume.ReplyOK(nil), nil
	case "stop":
		return plume.ReplyOK(map[string]string{"bye": "now"}), plume.ErrNormal
	case "stop_noreply":
		return plume.NoReply, plume.Shutdown("bye")
	case "stop_outside":
		go ch.Stop(plume.Shutdown("outside"))
		return plume.ReplyOK(nil), nil
	case "fail":
		return plume.NoReply, errors.New("boom")
	case "fail_reply":
		return plume.ReplyOK(nil), errors.New("boom")
	case "panic":
		panic("handle_in panic")
	}
	return plume.ReplyError(map[string]string{"reason": "unknown event " + event}), nil
}

// HandleInfo pushes what it gets: strings as an event of that name, and
// broadcasts from subscribed topics as "info".
func (h *ptChannel) HandleInfo(ch *plume.Channel, msg any) error {
	switch m := msg.(type) {
	case string:
		_, refErr := ch.SocketRef()
		return ch.Push(m, map[string]any{"info": m, "no_socket_ref": errors.Is(refErr, plume.ErrNoMessage)})
	case plume.Broadcast:
		return ch.Push("info", map[string]any{"topic": m.Topic, "event": m.Event, "payload": m.Payload})
	}
	return fmt.Errorf("unexpected message %T", msg)
}

func (h *ptChannel) Terminate(ch *plume.Channel, reason error) {
	h.s.terms <- ptTerm{ch.Topic(), ch.JoinRef(), reason}
}

// ptInterceptChannel intercepts "modify" (pushed with a "for" key naming the
// connection's user) and "drop" (pushed only to user bob).
type ptInterceptChannel struct{ ptChannel }

func (h *ptInterceptChannel) Intercept() []string { return []string{"modify", "drop"} }

func (h *ptInterceptChannel) HandleOut(ch *plume.Channel, event string, p plume.Payload) error {
	user, _ := ch.Assigns["user"].(string)
	switch event {
	case "modify":
		m := p.Map()
		m["for"] = user
		return ch.Push(event, m)
	case "drop":
		if user == "bob" {
			return ch.Push(event, p)
		}
		return nil
	}
	return fmt.Errorf("HandleOut for %q, which is not intercepted", event)
}

// ptPlainChannel has only Join.
type ptPlainChannel struct{}

func (ptPlainChannel) Join(*plume.Channel, string, plume.Payload) (any, error) { return nil, nil }

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVsnNegotiation(t *testing.T) {
	leakcheck.Check(t)
	s := newPTServer(t, ptConfig{})

	t.Run("missing vsn is V1", func(t *testing.T) {
		// N.1: V1 frames work, a V2 array is malformed.
		c := s.dial(t, "")
		c.send(`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`)
		c.expect(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"phoenix"}`)
		c.send(`[null,"1","phoenix","heartbeat",{}]`)
		c.expectClose(plume.CloseInternalError)
	})
	t.Run("1.0.0 is V1", func(t *testing.T) {
		c := s.dial(t, "vsn=1.0.0")
		c.send(`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`)
		c.expect(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"phoenix"}`)
	})
	t.Run("2.0.0 is V2", func(t *testing.T) {
		c := s.dial(t, "vsn=2.0.0")
		c.send(`[null,"1","phoenix","heartbeat",{}]`)
		c.expect(`[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
		c.send(`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`)
		c.expectClose(plume.CloseInternalError)
	})
	t.Run("~> 2.0.0 and the last vsn", func(t *testing.T) {
		for _, q := range []string{"vsn=2.0.1", "vsn=2.0.3-dev", "vsn=1.0.0&vsn=2.0.0"} {
			c := s.dial(t, q)
			c.send(`[null,"1","phoenix","heartbeat",{}]`)
			c.expect(`[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
		}
		c := s.dial(t, "vsn=2.0.0&vsn=1.0.1")
		c.send(`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`)
		c.expect(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"phoenix"}`)
	})
	// N.2: refused before the upgrade with 403 and an empty body; so is a
	// vsn that is not a string.
	for _, q := range []string{"vsn=2.1.0", "vsn=1.1.0", "vsn=3.0.0", "vsn=garbage", "vsn=", "vsn=2.0", "vsn=%202.0.0", "user=1&vsn=0.9.0", "vsn=2.0.0-rc.1", "vsn[]=2.0.0", "vsn[a]=2.0.0"} {
		t.Run(q, func(t *testing.T) {
			hs := tryUpgrade(t, s.srv, q, nil)
			if hs.status != http.StatusForbidden || hs.body != "" {
				t.Fatalf("status %d body %q, want 403 and no body", hs.status, hs.body)
			}
		})
	}
	// Nothing joined, so nothing terminated.
	s.expectNoTerm(t)
}

func TestV1Frames(t *testing.T) {
	leakcheck.Check(t)
	s := newPTServer(t, ptConfig{})
	c := s.dial(t, "vsn=1.0.0")
	other := s.dial(t, "vsn=1.0.0")

	// V1.1
	c.send(`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`)
	c.expect(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"phoenix"}`)
	// V1.2: join with join_ref; the push made in Join follows the reply, ref null.
	c.send(`{"topic":"room:v","event":"phx_join","payload":{"push_in_join":true},"ref":"2","join_ref":"2"}`)
	c.expect(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"2","topic":"room:v"}`)
	c.expect(`{"event":"joined","payload":{"topic":"room:v"},"ref":null,"topic":"room:v"}`)
	// V1.3: join without the join_ref key; the ref stands in.
	c.send(`{"topic":"room:v2","event":"phx_join","payload":{"reply":{"hello":"v1"}},"ref":"3"}`)
	c.expect(`{"event":"phx_reply","payload":{"response":{"hello":"v1"},"status":"ok"},"ref":"3","topic":"room:v2"}`)
	// Pushes without a join_ref (as V1 clients send them) reach the channel.
	c.send(`{"topic":"room:v2","event":"echo","payload":{"x":[1,2]},"ref":"4"}`)
	c.expect(`{"event":"phx_reply","payload":{"response":{"x":[1,2]},"status":"ok"},"ref":"4","topic":"room:v2"}`)
	c.send(`{"topic":"room:v2","event":"push","payload":{"p":0},"ref":"5"}`)
	c.expect(`{"event":"pushed","payload":{"p":0},"ref":null,"topic":"room:v2"}`)
	// (Phoenix keeps a null join_ref for such a join at the socket level: it
	// would drop a later push that names join_ref "3", and send its
	// phx_close and phx_error with "ref":null. Plume uses "3" throughout;
	// those frames are left out here.)
	// V1.4: unmatched topic.
	c.send(`{"topic":"nope:1","event":"phx_join","payload":{},"ref":"4","join_ref":"4"}`)
	c.expect(`{"event":"phx_reply","payload":{"response":{"reason":"unmatched topic"},"status":"error"},"ref":"4","topic":"nope:1"}`)
	// V1.4: refused join.
	c.send(`{"topic":"room:denied","event":"phx_join","payload":{"refuse":{"reason":"unauthorized"}},"ref":"5","join_ref":"5"}`)
	c.expect(`{"event":"phx_reply","payload":{"response":{"reason":"unauthorized"},"status":"error"},"ref":"5","topic":"room:denied"}`)
	// V1.5: replies, pushes and broadcasts. A broadcast made in HandleIn
	// reaches the sender before the reply.
	other.send(`{"topic":"room:v","event":"phx_join","payload":{},"ref":"1","join_ref":"1"}`)
	other.expect(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"room:v"}`)
	c.send(`{"topic":"room:v","event":"broadcast","payload":{"amount":7,"donor":"Vic"},"ref":"6","join_ref":"2"}`)
	c.expect(`{"event":"shout","payload":{"amount":7,"donor":"Vic"},"ref":null,"topic":"room:v"}`)
	c.expect(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"6","topic":"room:v"}`)
	other.expect(`{"event":"shout","payload":{"amount":7,"donor":"Vic"},"ref":null,"topic":"room:v"}`)
	c.send(`{"topic":"room:v","event":"error","payload":{"amount":7},"ref":"7","join_ref":"2"}`)
	c.expect(`{"event":"phx_reply","payload":{"response":{"reason":"bad"},"status":"error"},"ref":"7","topic":"room:v"}`)
	c.send(`{"topic":"room:v","event":"ping","payload":{"p":1},"ref":"8","join_ref":"2"}`)
	c.expect(`{"event":"phx_reply","payload":{"response":{"p":1},"status":"ok"},"ref":"8","topic":"room:v"}`)
	c.send(`{"topic":"room:v","event":"push","payload":{"p":2},"ref":"9","join_ref":"2"}`)
	c.expect(`{"event":"pushed","payload":{"p":2},"ref":null,"topic":"room:v"}`)
	// V1.7: push to a topic not joined.
	c.send(`{"topic":"campaign:zzz","event":"ping","payload":{},"ref":"9"}`)
	c.expect(`{"event":"phx_reply","payload":{"response":{"reason":"unmatched topic"},"status":"error"},"ref":"9","topic":"campaign:zzz"}`)
	// V1.8: duplicate join: new reply, then phx_close for the old join (ref = old join_ref).
	c.send(`{"topic":"room:v","event":"phx_join","payload":{},"ref":"10","join_ref":"10"}`)
	c.expect(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"10","topic":"room:v"}`)
	c.expect(`{"event":"phx_close","payload":{},"ref":"2","topic":"room:v"}`)
	s.expectTerm(t, "room:v", "2", plume.ErrDuplicateJoin)
	// V1.9: leave: reply, then phx_close with ref = join_ref.
	c.send(`{"topic":"room:v","event":"phx_leave","payload":{},"ref":"11","join_ref":"10"}`)
	c.expect(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"11","topic":"room:v"}`)
	c.expect(`{"event":"phx_close","payload":{},"ref":"10","topic":"room:v"}`)
	s.expectTerm(t, "room:v", "10", plume.ErrLeft)
	// A crash: phx_error with ref = join_ref.
	c.send(`{"topic":"room:v3","event":"phx_join","payload":{},"ref":"12","join_ref":"12"}`)
	c.expect(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"12","topic":"room:v3"}`)
	c.send(`{"topic":"room:v3","event":"panic","payload":{},"ref":"13","join_ref":"12"}`)
	c.expect(`{"event":"phx_error","payload":` + phxErrorPayload + `,"ref":"12","topic":"room:v3"}`)
	c.send(`{"topic":"room:v3","event":"ping","payload":{},"ref":"14"}`)
	c.expect(`{"event":"phx_reply","payload":{"response":{"reason":"unmatched topic"},"status":"error"},"ref":"14","topic":"room:v3"}`)
	c.expectNothing(50 * time.Millisecond)
	// V1.10: a missing key closes the connection; the other one is unaffected.
	c.send(`{"topic":"phoenix","event":"heartbeat","payload":{}}`)
	c.expectClose(plume.CloseInternalError)
	other.send(`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"2"}`)
	other.expect(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"2","topic":"phoenix"}`)
}

func TestV2Binary(t *testing.T) {
	leakcheck.Check(t)
	s := newPTServer(t, ptConfig{})
	c := s.dialV2(t, "")
	c.send(`["2","2","campaign:x","phx_join",{}]`)
	c.expect(`["2","2","campaign:x","phx_reply",{"response":{},"status":"ok"}]`)

	// V2.11: a kind 0 push gets a kind 1 reply with the same bytes...
	c.sendBinary(mustHex(t, "00 01 02 0a 04 32 32 30 63 61 6d 70 61 69 67 6e 3a 78 70 69 6e 67 de ad be ef 00 01"))
	c.expectBinary(mustHex(t, "01 01 02 0a 02 32 32 30 63 61 6d 70 61 69 67 6e 3a 78 6f 6b de ad be ef 00 01"))
	// ...and an empty payload works too.
	c.sendBinary(mustHex(t, "00 01 02 0a 04 32 32 31 63 61 6d 70 61 69 67 6e 3a 78 70 69 6e 67"))
	c.expectBinary(mustHex(t, "01 01 02 0a 02 32 32 31 63 61 6d 70 61 69 67 6e 3a 78 6f 6b"))
	// The channel sees bytes, flagged binary.
	c.sendBinary(append([]byte{0, 1, 2, 10, 7}, []byte("222campaign:xinspect\xde\xad\xbe\xef")...))
	c.expect(`["2","22","campaign:x","phx_reply",{"response":{"binary":true,"hex":"deadbeef"},"status":"ok"}]`)
	c.send(`["2","23","campaign:x","inspect",{"a":1}]`)
	c.expect(`["2","23","campaign:x","phx_reply",{"response":{"binary":false,"hex":"7b2261223a317d"},"status":"ok"}]`)
	// A binary push: kind 0, 4-byte header, no ref.
	c.send(`["2","24","campaign:x","push_binary",{}]`)
	c.expectBinary(append([]byte{0, 1, 10, 3}, []byte("2campaign:xbin\x01\x02\x03")...))
	// A binary broadcast: kind 2, to every V2 subscriber.
	other := s.dialV2(t, "")
	other.send(`["7","7","campaign:x","phx_join",{}]`)
	other.expect(`["7","7","campaign:x","phx_reply",{"response":{},"status":"ok"}]`)
	if err := s.ep.Broadcast(context.Background(), "campaign:x", "bcast", plume.Binary{9, 8}); err != nil {
		t.Fatal(err)
	}
	want := append([]byte{2, 10, 5}, []byte("campaign:xbcast\x09\x08")...)
	c.expectBinary(want)
	other.expectBinary(want)
	// An empty binary broadcast.
	if err := s.ep.Broadcast(context.Background(), "campaign:x", "e", plume.Binary{}); err != nil {
		t.Fatal(err)
	}
	c.expectBinary(append([]byte{2, 10, 1}, []byte("campaign:xe")...))
	other.expectBinary(append([]byte{2, 10, 1}, []byte("campaign:xe")...))
	// A binary push on an unmatched topic gets the JSON unmatched reply.
	c.sendBinary(append([]byte{0, 1, 2, 6, 4}, []byte("230nope:1ping")...))
	c.expect(`[null,"30","nope:1","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`)
	// A binary push with an empty join_ref has join_ref "" (not null), which
	// is stale: dropped without a reply.
	c.sendBinary(append([]byte{0, 0, 2, 10, 4}, []byte("31campaign:xping")...))
	c.expectNothing(100 * time.Millisecond)
	c.send(`[null,"32","phoenix","heartbeat",{}]`)
	c.expect(`[null,"32","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
}

func TestRouting(t *testing.T) {
	leakcheck.Check(t)
	s := newPTServer(t, ptConfig{})

	t.Run("heartbeat", func(t *testing.T) {
		c := s.dialV2(t, "")
		// V2.1, and join_ref is null in the reply whatever was sent.
		c.send(`[null,"1","phoenix","heartbeat",{}]`)
		c.expect(`[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
		c.send(`["5",6,"phoenix","heartbeat",{"x":1}]`)
		c.expect(`[null,6,"phoenix","phx_reply",{"response":{},"status":"ok"}]`)
		// V2.22: extra elements are ignored.
		c.send(`["1","1","phoenix","heartbeat",{},"extra"]`)
		c.expect(`[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
	})

	t.Run("unmatched topic", func(t *testing.T) {
		c := s.dialV2(t, "")
		// V2.4: join_ref null even though the client sent one.
		c.send(`["4","4","nope:1","phx_join",{}]`)
		c.expect(`[null,"4","nope:1","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`)
		// V2.15
		c.send(`[null,"24","campaign:zzz","new_donation",{"amount":1,"donor":"A"}]`)
		c.expect(`[null,"24","campaign:zzz","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`)
		c.send(`["99","25","campaign:zzz","ping",{}]`)
		c.expect(`[null,"25","campaign:zzz","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`)
	})

	t.Run("leave unjoined", func(t *testing.T) {
		c := s.dialV2(t, "")
		// V2.18: ok, echoing join_ref and ref.
		c.send(`[null,"32","campaign:never","phx_leave",{}]`)
		c.expect(`[null,"32","campaign:never","phx_reply",{"response":{},"status":"ok"}]`)
		c.send(`["7","33","nope:2","phx_leave",{}]`)
		c.expect(`["7","33","nope:2","phx_reply",{"response":{},"status":"ok"}]`)
		s.expectNoTerm(t)
	})

	t.Run("refs echoed with their type", func(t *testing.T) {
		c := s.dialV2(t, "")
		c.send(`[1,1,"room:n","phx_join",{}]`)
		c.expect(`[1,1,"room:n","phx_reply",{"response":{},"status":"ok"}]`)
		c.send(`[1,2.5,"room:n","echo","s"]`)
		c.expect(`[1,2.5,"room:n","phx_reply",{"response":"s","status":"ok"}]`)
		c.send(`[1,"\u0033","room:n","echo",{}]`)
		c.expect(`[1,"3","room:n","phx_reply",{"response":{},"status":"ok"}]`)
		// "1" is not 1: a string join_ref is stale for a number join.
		c.send(`["1","4","room:n","echo",{}]`)
		c.expectNothing(50 * time.Millisecond)
		c.send(`[1,5,"room:n","push",{"p":1}]`)
		c.expect(`[1,null,"room:n","pushed",{"p":1}]`)
	})

	t.Run("stale and null join_ref", func(t *testing.T) {
		c := s.dialV2(t, "")
		c.send(`["2","2","room:1","phx_join",{}]`)
		c.expect(`["2","2","room:1","phx_reply",{"response":{},"status":"ok"}]`)
		// Phoenix 1.8 drops a stale join_ref silently, pushes and leaves alike.
		c.send(`["999","26","room:1","ping",{"a":1}]`)
		c.send(`["999","27","room:1","phx_leave",{}]`)
		c.expectNothing(100 * time.Millisecond)
		// A null join_ref is accepted; the reply carries the channel's join_ref
		// (Phoenix replies with socket.join_ref).
		c.send(`[null,"28","room:1","ping",{"a":1}]`)
		c.expect(`["2","28","room:1","phx_reply",{"response":{"a":1},"status":"ok"}]`)
		c.send(`["2","29","room:1","ping",{"a":2}]`)
		c.expect(`["2","29","room:1","phx_reply",{"response":{"a":2},"status":"ok"}]`)
		c.send(`[null,"30","room:1","phx_leave",{}]`)
		c.expect(`["2","30","room:1","phx_reply",{"response":{},"status":"ok"}]`)
		c.expect(`["2","2","room:1","phx_close",{}]`)
		s.expectTerm(t, "room:1", "2", plume.ErrLeft)
	})

	t.Run("duplicate join", func(t *testing.T) {
		c := s.dialV2(t, "")
		c.send(`["2","2","room:d","phx_join",{"after_join":true}]`)
		c.expect(`["2","2","room:d","phx_reply",{"response":{},"status":"ok"}]`)
		c.expect(`["2",null,"room:d","after_join",{"info":"after_join","no_socket_ref":true}]`)
		// V2.17: the new reply first, then phx_close for the old join_ref,
		// then what the new channel pushes after its join.
		c.send(`["30","30","room:d","phx_join",{"push_in_join":true,"after_join":true}]`)
		c.expect(`["30","30","room:d","phx_reply",{"response":{},"status":"ok"}]`)
		c.expect(`["2","2","room:d","phx_close",{}]`)
		c.expect(`["30",null,"room:d","joined",{"topic":"room:d"}]`)
		c.expect(`["30",null,"room:d","after_join",{"info":"after_join","no_socket_ref":true}]`)
		s.expectTerm(t, "room:d", "2", plume.ErrDuplicateJoin)
		// The old join_ref is now stale.
		c.send(`["2","31","room:d","ping",{}]`)
		c.expectNothing(50 * time.Millisecond)
		c.send(`["30","32","room:d","ping",{}]`)
		c.expect(`["30","32","room:d","phx_reply",{"response":{},"status":"ok"}]`)
		// A refused rejoin still closes the old channel, after the reply.
		c.send(`["40","40","room:d","phx_join",{"refuse":{"reason":"no"}}]`)
		c.expect(`["40","40","room:d","phx_reply",{"response":{"reason":"no"},"status":"error"}]`)
		c.expect(`["30","30","room:d","phx_close",{}]`)
		s.expectTerm(t, "room:d", "30", plume.ErrDuplicateJoin)
		c.send(`["30","41","room:d","ping",{}]`)
		c.expect(`[null,"41","room:d","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`)
		c.expectNothing(50 * time.Millisecond)
	})

	t.Run("leave then rejoin at once", func(t *testing.T) {
		// phoenix.js may send a leave and a join of the same topic back to
		// back. The old join must be closed exactly once.
		c := s.dialV2(t, "")
		c.send(`["2","2","room:lr","phx_join",{}]`)
		c.expect(`["2","2","room:lr","phx_reply",{"response":{},"status":"ok"}]`)
		for i := 0; i < 20; i++ {
			old, next := fmt.Sprint(2+2*i), fmt.Sprint(4+2*i)
			c.send(fmt.Sprintf(`[%q,%q,"room:lr","phx_leave",{}]`, old, old+"l"))
			c.send(fmt.Sprintf(`[%q,%q,"room:lr","phx_join",{}]`, next, next))
			got := map[string]bool{}
			for j := 0; j < 3; j++ {
				f, err := c.read(2 * time.Second)
				if err != nil {
					t.Fatalf("round %d: %v (got %v)", i, err, got)
				}
				got[f.text] = true
			}
			want := map[string]bool{
				fmt.Sprintf(`[%q,%q,"room:lr","phx_reply",{"response":{},"status":"ok"}]`, old, old+"l"): true,
				fmt.Sprintf(`[%q,%q,"room:lr","phx_close",{}]`, old, old):                                true,
				fmt.Sprintf(`[%q,%q,"room:lr","phx_reply",{"response":{},"status":"ok"}]`, next, next):   true,
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d:\ngot  %v\nwant %v", i, got, want)
			}
			<-s.terms
		}
		c.expectNothing(100 * time.Millisecond)
	})

	t.Run("leave", func(t *testing.T) {
		c := s.dialV2(t, "")
		c.send(`["3","3","campaign:y","phx_join",{}]`)
		c.expect(`["3","3","campaign:y","phx_reply",{"response":{},"status":"ok"}]`)
		// V2.18
		c.send(`["3","31","campaign:y","phx_leave",{}]`)
		c.expect(`["3","31","campaign:y","phx_reply",{"response":{},"status":"ok"}]`)
		c.expect(`["3","3","campaign:y","phx_close",{}]`)
		s.expectTerm(t, "campaign:y", "3", plume.ErrLeft)
		c.send(`["3","32","campaign:y","ping",{}]`)
		c.expect(`[null,"32","campaign:y","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`)
		// Rejoin works.
		c.send(`["4","33","campaign:y","phx_join",{}]`)
		c.expect(`["4","33","campaign:y","phx_reply",{"response":{},"status":"ok"}]`)
	})

	t.Run("stop and crash", func(t *testing.T) {
		c := s.dialV2(t, "")
		join := func(jr string) {
			t.Helper()
			c.send(fmt.Sprintf(`[%q,%q,"room:s","phx_join",{}]`, jr, jr))
			c.expect(fmt.Sprintf(`[%q,%q,"room:s","phx_reply",{"response":{},"status":"ok"}]`, jr, jr))
		}
		unjoined := func(ref string) {
			t.Helper()
			c.send(fmt.Sprintf(`[null,%q,"room:s","ping",{}]`, ref))
			c.expect(fmt.Sprintf(`[null,%q,"room:s","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`, ref))
		}
		// Graceful stop with a reply: reply, then phx_close.
		join("1")
		c.send(`["1","2","room:s","stop",{}]`)
		c.expect(`["1","2","room:s","phx_reply",{"response":{"bye":"now"},"status":"ok"}]`)
		c.expect(`["1","1","room:s","phx_close",{}]`)
		s.expectTerm(t, "room:s", "1", plume.ErrNormal)
		unjoined("3")
		// Graceful stop without a reply.
		join("4")
		c.send(`["4","5","room:s","stop_noreply",{}]`)
		c.expect(`["4","4","room:s","phx_close",{}]`)
		select {
		case tm := <-s.terms:
			var se *plume.ShutdownError
			if !errors.As(tm.reason, &se) || se.Reason != "bye" {
				t.Fatalf("Terminate reason %v, want shutdown: bye", tm.reason)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("no Terminate")
		}
		unjoined("6")
		// Stop from another goroutine.
		join("60")
		c.send(`["60","61","room:s","stop_outside",{}]`)
		c.expect(`["60","61","room:s","phx_reply",{"response":{},"status":"ok"}]`)
		c.expect(`["60","60","room:s","phx_close",{}]`)
		select {
		case tm := <-s.terms:
			var se *plume.ShutdownError
			if !errors.As(tm.reason, &se) || se.Reason != "outside" {
				t.Fatalf("Terminate reason %v, want shutdown: outside", tm.reason)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("no Terminate")
		}
		unjoined("62")
		// A plain error is a crash: phx_error; Terminate still runs (as for
		// Phoenix's {:stop, reason, socket}).
		join("7")
		c.send(`["7","8","room:s","fail",{}]`)
		c.expect(`["7","7","room:s","phx_error",` + phxErrorPayload + `]`)
		select {
		case tm := <-s.terms:
			if tm.reason == nil || tm.reason.Error() != "boom" {
				t.Fatalf("Terminate reason %v, want boom", tm.reason)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("no Terminate")
		}
		unjoined("9")
		// A reply and an error: the reply first.
		join("10")
		c.send(`["10","11","room:s","fail_reply",{}]`)
		c.expect(`["10","11","room:s","phx_reply",{"response":{},"status":"ok"}]`)
		c.expect(`["10","10","room:s","phx_error",` + phxErrorPayload + `]`)
		<-s.terms
		unjoined("12")
		// V2.19: a panic: phx_error, no Terminate, and the topic is unjoined.
		join("13")
		c.send(`["13","14","room:s","panic",{}]`)
		c.expect(`["13","13","room:s","phx_error",` + phxErrorPayload + `]`)
		unjoined("15")
		s.expectNoTerm(t)
		// A channel without HandleIn crashes on any event.
		c.send(`["16","16","plain:1","phx_join",{}]`)
		c.expect(`["16","16","plain:1","phx_reply",{"response":{},"status":"ok"}]`)
		c.send(`["16","17","plain:1","ping",{}]`)
		c.expect(`["16","16","plain:1","phx_error",` + phxErrorPayload + `]`)
		// The connection itself is fine.
		c.send(`[null,"18","phoenix","heartbeat",{}]`)
		c.expect(`[null,"18","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
	})

	t.Run("join results", func(t *testing.T) {
		c := s.dialV2(t, "")
		// V2.5: refused with a payload; join_ref is echoed.
		c.send(`["5","5","room:j","phx_join",{"refuse":{"reason":"unauthorized"}}]`)
		c.expect(`["5","5","room:j","phx_reply",{"response":{"reason":"unauthorized"},"status":"error"}]`)
		// Any other error replies {"reason": err.Error()}.
		c.send(`["6","6","room:j","phx_join",{"error":"no way"}]`)
		c.expect(`["6","6","room:j","phx_reply",{"response":{"reason":"no way"},"status":"error"}]`)
		// A panic in Join.
		c.send(`["7","7","room:j","phx_join",{"panic":true}]`)
		c.expect(`["7","7","room:j","phx_reply",{"response":{"reason":"join crashed"},"status":"error"}]`)
		// None of them joined.
		c.send(`["7","8","room:j","ping",{}]`)
		c.expect(`[null,"8","room:j","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`)
		// A join reply payload; pushes made in Join come after the reply.
		c.send(`["9","9","room:j","phx_join",{"reply":{"welcome":[1,"two"]},"push_in_join":true}]`)
		c.expect(`["9","9","room:j","phx_reply",{"response":{"welcome":[1,"two"]},"status":"ok"}]`)
		c.expect(`["9",null,"room:j","joined",{"topic":"room:j"}]`)
		// The route pattern "room:*" matches "room:" too.
		c.send(`["10","10","room:","phx_join",{}]`)
		c.expect(`["10","10","room:","phx_reply",{"response":{},"status":"ok"}]`)
		c.expectNothing(50 * time.Millisecond)
		s.expectNoTerm(t)
	})

	t.Run("max channels default 100", func(t *testing.T) {
		c := s.dialV2(t, "")
		for i := 1; i <= 100; i++ {
			c.send(fmt.Sprintf(`["%d","%d","room:%d","phx_join",{}]`, i, i, i))
			c.expect(fmt.Sprintf(`["%d","%d","room:%d","phx_reply",{"response":{},"status":"ok"}]`, i, i, i))
		}
		c.send(`["101","101","room:101","phx_join",{}]`)
		c.expect(`["101","101","room:101","phx_reply",{"response":{"reason":"too many channels joined"},"status":"error"}]`)
		// Unmatched topics are still reported as such.
		c.send(`["102","102","nope:1","phx_join",{}]`)
		c.expect(`[null,"102","nope:1","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`)
		// A rejoin of a joined topic is not a 101st channel.
		c.send(`["103","103","room:1","phx_join",{}]`)
		c.expect(`["103","103","room:1","phx_reply",{"response":{},"status":"ok"}]`)
		c.expect(`["1","1","room:1","phx_close",{}]`)
		s.expectTerm(t, "room:1", "1", plume.ErrDuplicateJoin)
		// Leaving frees a slot.
		c.send(`["2","104","room:2","phx_leave",{}]`)
		c.expect(`["2","104","room:2","phx_reply",{"response":{},"status":"ok"}]`)
		c.expect(`["2","2","room:2","phx_close",{}]`)
		s.expectTerm(t, "room:2", "2", plume.ErrLeft)
		c.send(`["105","105","room:101","phx_join",{}]`)
		c.expect(`["105","105","room:101","phx_reply",{"response":{},"status":"ok"}]`)
		c.Close()
		for i := 0; i < 100; i++ {
			select {
			case tm := <-s.terms:
				if !errors.Is(tm.reason, plume.ErrClosed) {
					t.Fatalf("Terminate(%s, %v), want ErrClosed", tm.topic, tm.reason)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("only %d channels terminated", i)
			}
		}
	})
}

func TestMaxChannelsCustom(t *testing.T) {
	leakcheck.Check(t)
	s := newPTServer(t, ptConfig{socket: func(s *plume.Socket) { s.MaxChannels = 2 }})
	c := s.dialV2(t, "")
	c.send(`["1","1","room:1","phx_join",{}]`)
	c.expect(`["1","1","room:1","phx_reply",{"response":{},"status":"ok"}]`)
	c.send(`["2","2","room:2","phx_join",{}]`)
	c.expect(`["2","2","room:2","phx_reply",{"response":{},"status":"ok"}]`)
	c.send(`["3","3","room:3","phx_join",{}]`)
	c.expect(`["3","3","room:3","phx_reply",{"response":{"reason":"too many channels joined"},"status":"error"}]`)
	// The limit is per connection.
	d := s.dialV2(t, "")
	d.send(`["1","1","room:3","phx_join",{}]`)
	d.expect(`["1","1","room:3","phx_reply",{"response":{},"status":"ok"}]`)
}

func TestHandleInResults(t *testing.T) {
	leakcheck.Check(t)
	s := newPTServer(t, ptConfig{})
	c := s.dialV2(t, "")
	c.send(`["1","1","room:h","phx_join",{}]`)
	c.expect(`["1","1","room:h","phx_reply",{"response":{},"status":"ok"}]`)

	t.Run("replies", func(t *testing.T) {
		// V2.10: any JSON value comes back as the response.
		for _, p := range []string{`{"hello":"world","n":[1,2,3]}`, `"just a string"`, `42`, `[1,"two"]`, `null`, `true`, `{}`} {
			c.send(`["1","2","room:h","echo",` + p + `]`)
			c.expect(`["1","2","room:h","phx_reply",{"response":` + p + `,"status":"ok"}]`)
		}
		c.send(`["1","3","room:h","ok_empty",{"x":1}]`)
		c.expect(`["1","3","room:h","phx_reply",{"response":{},"status":"ok"}]`)
		c.send(`["1","4","room:h","error",{}]`)
		c.expect(`["1","4","room:h","phx_reply",{"response":{"reason":"bad"},"status":"error"}]`)
		c.send(`["1","4","room:h","error_empty",{"x":1}]`)
		c.expect(`["1","4","room:h","phx_reply",{"response":{},"status":"error"}]`)
		c.send(`["1","5","room:h","status",{"q":"x"}]`)
		c.expect(`["1","5","room:h","phx_reply",{"response":{"q":"x"},"status":"accepted"}]`)
		c.send(`["1","6","room:h","status_only",{}]`)
		c.expect(`["1","6","room:h","phx_reply",{"response":{},"status":"pending"}]`)
		// A payload is echoed exactly as received, including its spacing.
		c.send(`["1","7","room:h","echo", { "a" : [ 1 , 2 ] } ]`)
		c.expect(`["1","7","room:h","phx_reply",{"response":{ "a" : [ 1 , 2 ] },"status":"ok"}]`)
	})

	t.Run("noreply and async", func(t *testing.T) {
		c.send(`["1","8","room:h","noreply",{}]`)
		c.expectNothing(100 * time.Millisecond)
		// The channel goes on handling messages while the reply is pending.
		c.send(`["1","9","room:h","async",{}]`)
		c.send(`["1","10","room:h","echo",{"e":1}]`)
		c.expect(`["1","10","room:h","phx_reply",{"response":{"e":1},"status":"ok"}]`)
		c.send(`["1","11","room:h","release",{}]`)
		c.expect(`["1","9","room:h","phx_reply",{"response":{"async":true},"status":"ok"}]`)
	})

	t.Run("push", func(t *testing.T) {
		c.send(`["1","10","room:h","push",{"n":1}]`)
		c.expect(`["1",null,"room:h","pushed",{"n":1}]`)
		c.expectNothing(50 * time.Millisecond)
	})

	t.Run("non-object payloads", func(t *testing.T) {
		c.send(`["1","11","room:h","bad_payloads","str"]`)
		c.expect(`["1","11","room:h","phx_reply",{"response":{"broadcast":true,"broadcast_from":true,"push":true,"push_array":true,"push_echo":true,"push_raw":true,"socket_ref_ok":true},"status":"ok"}]`)
		// Nothing else was sent.
		c.expectNothing(100 * time.Millisecond)
		// Endpoint broadcasts refuse them too.
		ctx := context.Background()
		for _, p := range []any{"s", 1, []string{"a"}, json.RawMessage(`[1]`), plume.JSONPayload([]byte(`"x"`))} {
			if err := s.ep.Broadcast(ctx, "room:h", "x", p); !errors.Is(err, plume.ErrBadPayload) {
				t.Fatalf("Broadcast(%#v) = %v, want ErrBadPayload", p, err)
			}
			if err := s.ep.LocalBroadcast("room:h", "x", p); !errors.Is(err, plume.ErrBadPayload) {
				t.Fatalf("LocalBroadcast(%#v) = %v, want ErrBadPayload", p, err)
			}
		}
		c.expectNothing(100 * time.Millisecond)
	})

	t.Run("broadcast and broadcast_from", func(t *testing.T) {
		d := s.dialV2(t, "")
		d.send(`["5","5","room:h","phx_join",{}]`)
		d.expect(`["5","5","room:h","phx_reply",{"response":{},"status":"ok"}]`)
		// broadcast reaches everyone, the sender before its reply (V2.7).
		c.send(`["1","12","room:h","broadcast",{"amount":100}]`)
		c.expect(`[null,null,"room:h","shout",{"amount":100}]`)
		c.expect(`["1","12","room:h","phx_reply",{"response":{},"status":"ok"}]`)
		d.expect(`[null,null,"room:h","shout",{"amount":100}]`)
		// broadcast_from skips the sender's client only.
		c.send(`["1","13","room:h","broadcast_from",{"amount":200}]`)
		c.expect(`["1","13","room:h","phx_reply",{"response":{},"status":"ok"}]`)
		d.expect(`[null,null,"room:h","shout",{"amount":200}]`)
		c.expectNothing(100 * time.Millisecond)
		d.send(`["5","6","room:h","broadcast_from",{"amount":300}]`)
		d.expect(`["5","6","room:h","phx_reply",{"response":{},"status":"ok"}]`)
		c.expect(`[null,null,"room:h","shout",{"amount":300}]`)
		d.expectNothing(100 * time.Millisecond)
		// Endpoint broadcasts, in V1 and V2 form.
		v1 := s.dial(t, "vsn=1.0.0")
		v1.send(`{"topic":"room:h","event":"phx_join","payload":{},"ref":"1"}`)
		v1.expect(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"room:h"}`)
		if err := s.ep.Broadcast(context.Background(), "room:h", "news", map[string]any{"b": 2, "a": "x"}); err != nil {
			t.Fatal(err)
		}
		c.expect(`[null,null,"room:h","news",{"a":"x","b":2}]`)
		d.expect(`[null,null,"room:h","news",{"a":"x","b":2}]`)
		v1.expect(`{"event":"news","payload":{"a":"x","b":2},"ref":null,"topic":"room:h"}`)
		if err := s.ep.LocalBroadcast("room:h", "local", nil); err != nil {
			t.Fatal(err)
		}
		c.expect(`[null,null,"room:h","local",{}]`)
		d.expect(`[null,null,"room:h","local",{}]`)
		v1.expect(`{"event":"local","payload":{},"ref":null,"topic":"room:h"}`)
		d.send(`["5","7","room:h","phx_leave",{}]`)
		d.expect(`["5","7","room:h","phx_reply",{"response":{},"status":"ok"}]`)
		d.expect(`["5","5","room:h","phx_close",{}]`)
		s.expectTerm(t, "room:h", "5", plume.ErrLeft)
		// A left channel gets no more broadcasts.
		if err := s.ep.Broadcast(context.Background(), "room:h", "after", nil); err != nil {
			t.Fatal(err)
		}
		c.expect(`[null,null,"room:h","after",{}]`)
		v1.expect(`{"event":"after","payload":{},"ref":null,"topic":"room:h"}`)
		d.expectNothing(100 * time.Millisecond)
	})

	t.Run("send and send_after", func(t *testing.T) {
		c.send(`["1","14","room:h","send",{}]`)
		c.expect(`["1","14","room:h","phx_reply",{"response":{},"status":"ok"}]`)
		c.expect(`["1",null,"room:h","sent",{"info":"sent","no_socket_ref":true}]`)
		c.send(`["1","15","room:h","send_after",{}]`)
		c.expect(`["1","15","room:h","phx_reply",{"response":{},"status":"ok"}]`)
		c.expect(`["1",null,"room:h","later",{"info":"later","no_socket_ref":true}]`)
		c.send(`["1","16","room:h","send_cancel",{}]`)
		c.expect(`["1","16","room:h","phx_reply",{"response":{"cancelled":true},"status":"ok"}]`)
		c.expectNothing(150 * time.Millisecond)
	})

	t.Run("after_join", func(t *testing.T) {
		d := s.dialV2(t, "")
		d.send(`["1","1","room:aj","phx_join",{"after_join":true,"reply":{"r":1}}]`)
		d.expect(`["1","1","room:aj","phx_reply",{"response":{"r":1},"status":"ok"}]`)
		d.expect(`["1",null,"room:aj","after_join",{"info":"after_join","no_socket_ref":true}]`)
	})

	t.Run("subscribe", func(t *testing.T) {
		c.send(`["1","17","room:h","subscribe",{"topic":"news:1"}]`)
		c.expect(`["1","17","room:h","phx_reply",{"response":{},"status":"ok"}]`)
		if err := s.ep.Broadcast(context.Background(), "news:1", "headline", map[string]int{"t": 1}); err != nil {
			t.Fatal(err)
		}
		c.expect(`["1",null,"room:h","info",{"event":"headline","payload":{"t":1},"topic":"news:1"}]`)
		// Subscribing twice is one subscription.
		c.send(`["1","18","room:h","subscribe",{"topic":"news:1"}]`)
		c.expect(`["1","18","room:h","phx_reply",{"response":{},"status":"ok"}]`)
		if err := s.ep.Broadcast(context.Background(), "news:1", "again", nil); err != nil {
			t.Fatal(err)
		}
		c.expect(`["1",null,"room:h","info",{"event":"again","payload":{},"topic":"news:1"}]`)
		c.expectNothing(100 * time.Millisecond)
		if n := s.ep.PubSub().Subscribers("news:1"); n != 1 {
			t.Fatalf("news:1 has %d subscribers, want 1", n)
		}
		// The subscription ends with the channel.
		c.send(`["1","19","room:h","phx_leave",{}]`)
		c.expect(`["1","19","room:h","phx_reply",{"response":{},"status":"ok"}]`)
		c.expect(`["1","1","room:h","phx_close",{}]`)
		s.expectTerm(t, "room:h", "1", plume.ErrLeft)
		if n := s.ep.PubSub().Subscribers("news:1"); n != 0 {
			t.Fatalf("news:1 has %d subscribers after leave, want 0", n)
		}
		if n := s.ep.PubSub().Subscribers("room:h"); n != 1 { // v1 from the broadcast subtest
			t.Fatalf("room:h has %d subscribers after leave, want 1", n)
		}
	})
}

func TestIntercept(t *testing.T) {
	leakcheck.Check(t)
	s := newPTServer(t, ptConfig{})
	alice := s.dialV2(t, "user=alice")
	bob := s.dialV2(t, "user=bob")
	for _, c := range []*rawClient{alice, bob} {
		c.send(`["3","3","intercept:1","phx_join",{}]`)
		c.expect(`["3","3","intercept:1","phx_reply",{"response":{},"status":"ok"}]`)
	}
	ctx := context.Background()
	// Intercepted: HandleOut pushes per subscriber, with its join_ref.
	if err := s.ep.Broadcast(ctx, "intercept:1", "modify", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	alice.expect(`["3",null,"intercept:1","modify",{"for":"alice","n":1}]`)
	bob.expect(`["3",null,"intercept:1","modify",{"for":"bob","n":1}]`)
	if err := s.ep.Broadcast(ctx, "intercept:1", "drop", map[string]int{"n": 2}); err != nil {
		t.Fatal(err)
	}
	bob.expect(`["3",null,"intercept:1","drop",{"n":2}]`)
	alice.expectNothing(100 * time.Millisecond)
	// Not intercepted: fastlaned unchanged.
	if err := s.ep.Broadcast(ctx, "intercept:1", "plain", map[string]int{"n": 3}); err != nil {
		t.Fatal(err)
	}
	alice.expect(`[null,null,"intercept:1","plain",{"n":3}]`)
	bob.expect(`[null,null,"intercept:1","plain",{"n":3}]`)
	// broadcast_from from a channel skips only the sender, intercepted or not.
	bob.send(`["3","4","intercept:1","broadcast_from",{"n":4}]`)
	bob.expect(`["3","4","intercept:1","phx_reply",{"response":{},"status":"ok"}]`)
	alice.expect(`[null,null,"intercept:1","shout",{"n":4}]`)
	bob.send(`["3","5","intercept:1","push",{"n":5}]`)
	bob.expect(`["3",null,"intercept:1","pushed",{"n":5}]`)
	alice.expectNothing(50 * time.Millisecond)
}

func TestConnect(t *testing.T) {
	leakcheck.Check(t)
	s := newPTServer(t, ptConfig{})

	t.Run("params", func(t *testing.T) {
		s.dial(t, "a[b]=1&a[c][]=x&l[]=1&l[]=2&token=abc%20d&vsn=2.0.0&flag")
		c := <-s.conns
		want := plume.Params{
			"a":     map[string]any{"b": "1", "c": []any{"x"}},
			"l":     []any{"1", "2"},
			"token": "abc d",
			"vsn":   "2.0.0",
			"flag":  "",
		}
		if !reflect.DeepEqual(c.params, want) {
			t.Fatalf("params %#v\nwant %#v", c.params, want)
		}
		if c.vsn != "2.0.0" || c.transport != plume.TransportWebSocket {
			t.Fatalf("vsn %q transport %q", c.vsn, c.transport)
		}
	})

	t.Run("connect info", func(t *testing.T) {
		hdr := http.Header{"X-Request-Id": {"r1"}, "X-Forwarded-For": {"10.0.0.1"}, "User-Agent": {"plume-test/1"}, "Cookie": {"a=b"}}
		rc := dialRaw(t, s.srv, "vsn=2.0.0&q=1", hdr)
		defer rc.Close()
		c := <-s.conns
		info := c.info
		local := rc.nc.LocalAddr().(*net.TCPAddr)
		if info.Peer.Port() != uint16(local.Port) || !info.Peer.Addr().IsLoopback() {
			t.Fatalf("peer %v, want the client's address %v", info.Peer, local)
		}
		host := strings.TrimPrefix(s.srv.URL, "http://")
		if info.URI == nil || info.URI.Scheme != "http" || info.URI.Host != host || info.URI.Path != "/socket/websocket" || info.URI.RawQuery != "vsn=2.0.0&q=1" {
			t.Fatalf("URI %#v", info.URI)
		}
		if got := info.XHeaders; len(got) != 2 || got.Get("X-Request-Id") != "r1" || got.Get("X-Forwarded-For") != "10.0.0.1" {
			t.Fatalf("x headers %v", got)
		}
		if info.UserAgent != "plume-test/1" || info.AuthToken != "" {
			t.Fatalf("user agent %q auth token %q", info.UserAgent, info.AuthToken)
		}
	})

	t.Run("auth token", func(t *testing.T) {
		// phoenix.js: btoa(token) without "=", offered next to "phoenix".
		token := "tok>en?/~" // standard base64 of this uses '+' and '/'
		enc := strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(token)), "=")
		if !strings.ContainsAny(enc, "+/") {
			t.Fatalf("pick a token whose base64 has + or /: %s", enc)
		}
		url := "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/socket/websocket?vsn=2.0.0"
		d := ws.Dialer{Timeout: 5 * time.Second, Protocols: []string{"phoenix", "base64url.bearer.phx." + enc}}
		nc, _, hs, err := d.Dial(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		rc := &rawClient{t: t, nc: nc}
		defer rc.Close()
		if hs.Protocol != "phoenix" {
			t.Fatalf("Sec-WebSocket-Protocol %q, want phoenix", hs.Protocol)
		}
		c := <-s.conns
		if c.info.AuthToken != token {
			t.Fatalf("auth token %q, want %q", c.info.AuthToken, token)
		}
		rc.send(`[null,"1","phoenix","heartbeat",{}]`)
		rc.expect(`[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
		// The same through a plain HTTP handshake: only "phoenix" is echoed.
		h := tryUpgrade(t, s.srv, "vsn=2.0.0", http.Header{"Sec-Websocket-Protocol": {"phoenix, base64url.bearer.phx." + enc}})
		<-s.conns
		if p := h.header.Values("Sec-Websocket-Protocol"); h.status != http.StatusSwitchingProtocols || len(p) != 1 || p[0] != "phoenix" {
			t.Fatalf("status %d protocols %q", h.status, h.header.Values("Sec-Websocket-Protocol"))
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, q := range []string{"vsn=2.0.0&refuse=1", "vsn=2.0.0&panic=1"} {
			hs := tryUpgrade(t, s.srv, q, nil)
			if hs.status != http.StatusForbidden || hs.body != "" {
				t.Fatalf("%s: status %d body %q, want 403", q, hs.status, hs.body)
			}
			_, err := tryDial(s.srv, q, nil)
			var se ws.StatusError
			if !errors.As(err, &se) || int(se) != http.StatusForbidden {
				t.Fatalf("%s: dial error %v, want status 403", q, err)
			}
		}
		if hs := tryUpgrade(t, s.srv, "vsn=2.0.0", nil); hs.status != http.StatusSwitchingProtocols {
			t.Fatalf("status %d, want 101", hs.status)
		}
		<-s.conns
		// Only GET upgrades.
		resp, err := http.Post(s.srv.URL+"/socket/websocket?vsn=2.0.0", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("POST status %d, want 400", resp.StatusCode)
		}
		http.DefaultClient.CloseIdleConnections()
	})

	t.Run("disconnect by id", func(t *testing.T) {
		u1a := s.dialV2(t, "id=user_socket:1")
		<-s.conns
		u1b := s.dialV2(t, "id=user_socket:1")
		<-s.conns
		u2 := s.dialV2(t, "id=user_socket:2")
		<-s.conns
		anon := s.dialV2(t, "")
		<-s.conns
		for _, c := range []*rawClient{u1a, u1b, u2, anon} {
			c.send(`["1","1","room:dis","phx_join",{}]`)
			c.expect(`["1","1","room:dis","phx_reply",{"response":{},"status":"ok"}]`)
		}
		// Other events on the id topic are ignored.
		if err := s.ep.Broadcast(context.Background(), "user_socket:1", "other", nil); err != nil {
			t.Fatal(err)
		}
		u1a.expectNothing(50 * time.Millisecond)
		if err := s.ep.Disconnect(context.Background(), "user_socket:1"); err != nil {
			t.Fatal(err)
		}
		u1a.expectClose(plume.CloseGoingAway)
		u1b.expectClose(plume.CloseGoingAway)
		u1a.Close()
		u1b.Close()
		s.expectTerm(t, "room:dis", "1", plume.ErrClosed)
		s.expectTerm(t, "room:dis", "1", plume.ErrClosed)
		for _, c := range []*rawClient{u2, anon} {
			c.send(`[null,"2","phoenix","heartbeat",{}]`)
			c.expect(`[null,"2","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
		}
		if err := s.ep.Broadcast(context.Background(), "room:dis", "still", nil); err != nil {
			t.Fatal(err)
		}
		u2.expect(`[null,null,"room:dis","still",{}]`)
		anon.expect(`[null,null,"room:dis","still",{}]`)
		s.expectNoTerm(t)
	})
}

// ptMalformed are frames that close the connection with 1011 (§1.8).
var ptMalformed = []struct {
	name   string
	vsn    string
	text   string
	binary []byte
}{
	{name: "not json", vsn: "2.0.0", text: `this is not json`},                                                // V2.21
	{name: "v2 object", vsn: "2.0.0", text: `{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`}, // V2.22
	{name: "v2 four elements", vsn: "2.0.0", text: `["1","1","phoenix","heartbeat"]`},                         // V2.22
	{name: "v2 empty array", vsn: "2.0.0", text: `[]`},
	{name: "v2 number topic", vsn: "2.0.0", text: `["1","1",1,"heartbeat",{}]`},
	{name: "v2 object ref", vsn: "2.0.0", text: `["1",{},"room:m","ping",{}]`},
	{name: "v2 trailing garbage", vsn: "2.0.0", text: `[null,"1","phoenix","heartbeat",{}] x`},
	{name: "v2 bad kind", vsn: "2.0.0", binary: []byte{9, 9, 9}}, // V2.23
	{name: "v2 reply kind", vsn: "2.0.0", binary: append([]byte{1, 1, 1, 6, 2}, "11room:mok"...)},
	{name: "v2 truncated header", vsn: "2.0.0", binary: []byte{0, 1, 1}},
	{name: "v2 truncated fields", vsn: "2.0.0", binary: append([]byte{0, 1, 1, 6, 4}, "11room:m"...)},
	{name: "v2 empty binary", vsn: "2.0.0", binary: []byte{}},
	{name: "v1 missing ref", vsn: "1.0.0", text: `{"topic":"phoenix","event":"heartbeat","payload":{}}`}, // V1.10
	{name: "v1 missing payload", vsn: "1.0.0", text: `{"topic":"phoenix","event":"heartbeat","ref":"1"}`},
	{name: "v1 array", vsn: "1.0.0", text: `[null,"1","phoenix","heartbeat",{}]`},                       // V1.13
	{name: "v1 not json", vsn: "1.0.0", text: `not json`},                                               // V1.12
	{name: "v1 binary", vsn: "1.0.0", binary: append([]byte{0, 1, 1, 7, 9}, "11phoenixheartbeat{}"...)}, // V1.11
}

func TestMalformedFrames(t *testing.T) {
	leakcheck.Check(t)
	s := newPTServer(t, ptConfig{})
	// A bystander on the same topic keeps working through all of it.
	by := s.dialV2(t, "")
	by.send(`["1","1","room:m","phx_join",{}]`)
	by.expect(`["1","1","room:m","phx_reply",{"response":{},"status":"ok"}]`)
	for i, tc := range ptMalformed {
		t.Run(tc.name, func(t *testing.T) {
			c := s.dial(t, "vsn="+tc.vsn)
			if tc.vsn == "2.0.0" {
				c.send(`["7","7","room:m","phx_join",{}]`)
				c.expect(`["7","7","room:m","phx_reply",{"response":{},"status":"ok"}]`)
			} else {
				c.send(`{"topic":"room:m","event":"phx_join","payload":{},"ref":"7"}`)
				c.expect(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"7","topic":"room:m"}`)
			}
			if tc.binary != nil {
				c.sendBinary(tc.binary)
			} else {
				c.send(tc.text)
			}
			c.expectClose(plume.CloseInternalError)
			c.Close() // as phoenix.js would after a close
			// No phx_error or phx_close for the channels of a dead connection.
			s.expectTerm(t, "room:m", "7", plume.ErrClosed)
			by.send(fmt.Sprintf(`["1","b%d","room:m","broadcast",{"i":%d}]`, i, i))
			by.expect(fmt.Sprintf(`[null,null,"room:m","shout",{"i":%d}]`, i))
			by.expect(fmt.Sprintf(`["1","b%d","room:m","phx_reply",{"response":{},"status":"ok"}]`, i))
		})
	}
}

func TestWebSocketFraming(t *testing.T) {
	leakcheck.Check(t)
	s := newPTServer(t, ptConfig{socket: func(s *plume.Socket) { s.MaxFrameSize = 1024 }})

	t.Run("frame too big", func(t *testing.T) {
		c := s.dialV2(t, "")
		c.send(`["1","1","room:f","phx_join",{}]`)
		c.expect(`["1","1","room:f","phx_reply",{"response":{},"status":"ok"}]`)
		// Exactly the limit passes.
		pad := strings.Repeat("x", 1024-len(`["1","2","room:f","echo",{"p":""}]`))
		c.send(`["1","2","room:f","echo",{"p":"` + pad + `"}]`)
		c.expect(`["1","2","room:f","phx_reply",{"response":{"p":"` + pad + `"},"status":"ok"}]`)
		c.send(`["1","3","room:f","echo",{"p":"` + pad + `x"}]`)
		c.expectClose(plume.CloseTooBig)
		c.Close()
		s.expectTerm(t, "room:f", "1", plume.ErrClosed)
	})
	t.Run("fragments too big together", func(t *testing.T) {
		c := s.dialV2(t, "")
		c.sendFrame(ws.OpText, false, []byte(`[null,"1","phoenix","heartbeat",{"p":"`+strings.Repeat("x", 600)))
		c.sendFrame(ws.OpContinuation, true, []byte(strings.Repeat("x", 600)+`"}]`))
		c.expectClose(plume.CloseTooBig)
	})
	t.Run("fragmented message", func(t *testing.T) {
		c := s.dialV2(t, "")
		c.sendFrame(ws.OpText, false, []byte(`[null,"1","pho`))
		c.sendFrame(ws.OpPing, true, []byte("between"))
		c.sendFrame(ws.OpContinuation, false, []byte(`enix","heart`))
		c.sendFrame(ws.OpContinuation, true, []byte(`beat",{}]`))
		op, p, err := c.readFrame(2 * time.Second)
		if err != nil || op != ws.OpPong || string(p) != "between" {
			t.Fatalf("got %v %q %v, want pong", op, p, err)
		}
		c.expect(`[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
	})
	t.Run("ping", func(t *testing.T) {
		c := s.dialV2(t, "")
		c.sendFrame(ws.OpPing, true, []byte("are you there"))
		op, p, err := c.readFrame(2 * time.Second)
		if err != nil || op != ws.OpPong || string(p) != "are you there" {
			t.Fatalf("got %v %q %v, want pong", op, p, err)
		}
		// Unsolicited pongs are ignored.
		c.sendFrame(ws.OpPong, true, nil)
		c.send(`[null,"1","phoenix","heartbeat",{}]`)
		c.expect(`[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
	})
	t.Run("client close is echoed", func(t *testing.T) {
		// N.3
		for _, code := range []ws.StatusCode{1000, 1001, 4000} {
			c := s.dialV2(t, "")
			c.send(`["1","1","room:cc","phx_join",{}]`)
			c.expect(`["1","1","room:cc","phx_reply",{"response":{},"status":"ok"}]`)
			c.sendFrame(ws.OpClose, true, ws.NewCloseFrameBody(code, "bye"))
			c.expectClose(int(code))
			c.Close()
			s.expectTerm(t, "room:cc", "1", plume.ErrClosed)
		}
	})
	t.Run("invalid utf-8", func(t *testing.T) {
		c := s.dialV2(t, "")
		c.send("[null,\"1\",\"phoenix\",\"heartbeat\",{\"a\":\"\xff\"}]")
		c.expectClose(plume.CloseInvalidData)
	})
	t.Run("unmasked frame", func(t *testing.T) {
		c := s.dialV2(t, "")
		if err := ws.WriteFrame(c.nc, ws.NewTextFrame([]byte(`[null,"1","phoenix","heartbeat",{}]`))); err != nil {
			t.Fatal(err)
		}
		c.expectClose(plume.CloseProtocolError)
	})
	// Framing errors close with 1002.
	for _, tc := range []struct {
		name   string
		frames []ws.Frame
	}{
		{"long ping", []ws.Frame{ws.NewPingFrame(make([]byte, 126))}},
		{"fragmented ping", []ws.Frame{ws.NewFrame(ws.OpPing, false, nil)}},
		{"reserved opcode", []ws.Frame{ws.NewFrame(ws.OpCode(3), true, []byte("x"))}},
		{"continuation first", []ws.Frame{ws.NewFrame(ws.OpContinuation, true, []byte("x"))}},
		{"text inside a fragmented message", []ws.Frame{ws.NewFrame(ws.OpText, false, []byte("[")), ws.NewTextFrame([]byte("x"))}},
		{"rsv bit", []ws.Frame{{Header: ws.Header{Fin: true, Rsv: 4, OpCode: ws.OpText, Length: 1}, Payload: []byte("x")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := s.dialV2(t, "")
			for _, fr := range tc.frames {
				if err := ws.WriteFrame(c.nc, ws.MaskFrame(fr)); err != nil {
					t.Fatal(err)
				}
			}
			c.expectClose(plume.CloseProtocolError)
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	leakcheck.Check(t)
	s := newPTServer(t, ptConfig{socket: func(s *plume.Socket) { s.IdleTimeout = 500 * time.Millisecond }})
	c := s.dialV2(t, "")
	c.send(`["1","1","room:i","phx_join",{}]`)
	c.expect(`["1","1","room:i","phx_reply",{"response":{},"status":"ok"}]`)
	// Traffic keeps it open past the timeout...
	for i := 0; i < 8; i++ {
		time.Sleep(100 * time.Millisecond)
		c.send(fmt.Sprintf(`[null,"h%d","phoenix","heartbeat",{}]`, i))
		c.expect(fmt.Sprintf(`[null,"h%d","phoenix","phx_reply",{"response":{},"status":"ok"}]`, i))
	}
	// ...and silence closes it with 1002, as Bandit does.
	c.expectClose(plume.CloseProtocolError)
	c.Close()
	s.expectTerm(t, "room:i", "1", plume.ErrClosed)
}

// smallBufListener shrinks the kernel send buffer of accepted connections so
// that a client that does not read backs up into Plume's queue quickly.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

func TestSlowClient(t *testing.T) {
	leakcheck.Check(t)
	const maxQueue = 64 << 10
	s := newPTServer(t, ptConfig{
		socket:   func(s *plume.Socket) { s.MaxQueueBytes = maxQueue },
		listener: func(l net.Listener) net.Listener { return smallBufListener{l} },
	})
	slow := s.dialV2(t, "")
	if tc, ok := slow.nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(8 << 10)
	}
	fast := s.dialV2(t, "")
	for _, c := range []*rawClient{slow, fast} {
		c.send(`["1","1","room:slow","phx_join",{}]`)
		c.expect(`["1","1","room:slow","phx_reply",{"response":{},"status":"ok"}]`)
	}
	pad := strings.Repeat("p", 1000)
	frame := func(i int) string {
		return fmt.Sprintf(`[null,null,"room:slow","b",{"i":%d,"pad":"%s"}]`, i, pad)
	}
	// Broadcast in rounds smaller than the queue, waiting for the fast client
	// to read each round, until the slow client overflows. Broadcast itself
	// never waits for either client.
	//
	// The slow client starts reading the moment its queue overflows: Plume
	// gives a client that is not reading 1s to take what the kernel holds
	// before it cuts the connection without a close frame.
	type slowResult struct {
		frames int
		close  int
		err    error
	}
	slowDone := make(chan slowResult, 1)
	readSlow := func() {
		var r slowResult
		for {
			f, err := slow.read(5 * time.Second)
			if err != nil {
				r.err = err
				break
			}
			if f.close != 0 {
				r.close = f.close
				break
			}
			if f.text != frame(r.frames) {
				r.err = fmt.Errorf("frame %d is %.80s", r.frames, f.text)
				break
			}
			r.frames++
		}
		slowDone <- r
	}
	const round = 16
	n := 0
	for r := 0; ; r++ {
		if r == 2000 {
			t.Fatal("the slow client never overflowed")
		}
		overflowed := false
		sent := 0
		for i := 0; i < round && !overflowed; i++ {
			if err := s.ep.Broadcast(context.Background(), "room:slow", "b", map[string]any{"i": n + i, "pad": pad}); err != nil {
				t.Fatal(err)
			}
			sent++
			if s.logs.contains("slow client") {
				overflowed = true
				go readSlow()
			}
		}
		for i := 0; i < sent; i++ {
			fast.expect(frame(n + i))
		}
		n += sent
		if overflowed {
			break
		}
	}
	// The slow client got a prefix of the broadcasts with no gaps, then 1013.
	res := <-slowDone
	got := res.frames
	if res.err != nil || res.close != plume.CloseTryAgainLater {
		t.Fatalf("slow client: %d frames, then close %d, error %v; want close 1013", got, res.close, res.err)
	}
	if got >= n {
		t.Fatalf("slow client got all %d frames", n)
	}
	t.Logf("slow client: %d of %d broadcasts, then 1013", got, n)
	slow.Close()
	s.expectTerm(t, "room:slow", "1", plume.ErrClosed)
	// The fast client keeps getting everything.
	for i := 0; i < round; i++ {
		if err := s.ep.Broadcast(context.Background(), "room:slow", "b", map[string]any{"i": n + i, "pad": pad}); err != nil {
			t.Fatal(err)
		}
		fast.expect(frame(n + i))
	}
	fast.send(`[null,"2","phoenix","heartbeat",{}]`)
	fast.expect(`[null,"2","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
}

func TestShutdown(t *testing.T) {
	t.Run("drain", func(t *testing.T) {
		leakcheck.Check(t)
		s := newPTServer(t, ptConfig{options: func(o *plume.Options) {
			o.DrainBatchSize = 1
			o.DrainInterval = 100 * time.Millisecond
		}})
		var clients []*rawClient
		for i := 0; i < 3; i++ {
			c := s.dialV2(t, "")
			c.send(fmt.Sprintf(`["1","1","room:d%d","phx_join",{}]`, i))
			c.expect(fmt.Sprintf(`["1","1","room:d%d","phx_reply",{"response":{},"status":"ok"}]`, i))
			clients = append(clients, c)
		}
		if n := s.ep.Connections(); n != 3 {
			t.Fatalf("%d connections, want 3", n)
		}
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- s.ep.Shutdown(context.Background()) }()
		// The first batch closes at once; meanwhile new connections get 503.
		for !s.ep.Draining() {
			time.Sleep(time.Millisecond)
		}
		if hs := tryUpgrade(t, s.srv, "vsn=2.0.0", nil); hs.status != http.StatusServiceUnavailable {
			t.Fatalf("status %d during drain, want 503", hs.status)
		}
		for _, c := range clients {
			c.expectClose(plume.CloseServiceRestart)
			// Answer the close, as phoenix.js does, so the server finishes now.
			c.sendFrame(ws.OpClose, true, ws.NewCloseFrameBody(plume.CloseServiceRestart, ""))
			c.Close()
		}
		// Channels end with ErrDraining and no phx_close.
		seen := map[string]bool{}
		for i := 0; i < 3; i++ {
			select {
			case tm := <-s.terms:
				if !errors.Is(tm.reason, plume.ErrDraining) {
					t.Fatalf("Terminate(%s, %v), want ErrDraining", tm.topic, tm.reason)
				}
				seen[tm.topic] = true
			case <-time.After(5 * time.Second):
				t.Fatal("missing Terminate")
			}
		}
		if len(seen) != 3 {
			t.Fatalf("terminated %v", seen)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// Three batches of one: two pauses.
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Fatalf("Shutdown took %v, less than two drain intervals", d)
		}
		if n := s.ep.Connections(); n != 0 {
			t.Fatalf("%d connections after Shutdown", n)
		}
		if hs := tryUpgrade(t, s.srv, "vsn=2.0.0", nil); hs.status != http.StatusServiceUnavailable {
			t.Fatalf("status %d after drain, want 503", hs.status)
		}
	})

	t.Run("batches", func(t *testing.T) {
		leakcheck.Check(t)
		// With a long interval only the first batch closes before the
		// context ends the drain.
		s := newPTServer(t, ptConfig{options: func(o *plume.Options) {
			o.DrainBatchSize = 2
			o.DrainInterval = time.Hour
		}})
		var clients []*rawClient
		for i := 0; i < 5; i++ {
			c := s.dialV2(t, "")
			c.send(`[null,"1","phoenix","heartbeat",{}]`)
			c.expect(`[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
			clients = append(clients, c)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.ep.Shutdown(ctx) }()
		closed := make(chan int, len(clients))
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f, err := c.read(time.Second)
				if err != nil {
					closed <- 0
					return
				}
				closed <- f.close
			}()
		}
		wg.Wait()
		close(closed)
		var n1012, none int
		for code := range closed {
			switch code {
			case plume.CloseServiceRestart:
				n1012++
			case 0:
				none++
			default:
				t.Fatalf("close %d", code)
			}
		}
		if n1012 != 2 || none != 3 {
			t.Fatalf("%d closed with 1012 and %d open, want 2 and 3", n1012, none)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Shutdown = %v, want context.Canceled", err)
		}
	})
}
