package presence_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/presence"
	"github.com/plumehq/plume/pubsub"
)

// server is a test endpoint with a "room:*" channel that does presence the
// Phoenix way: after join it pushes presence_state, then tracks.
type server struct {
	t   testing.TB
	ep  *plume.Endpoint
	tr  *presence.Tracker
	srv *httptest.Server
	// chans receives every joined channel, for tests that keep one.
	chans chan *plume.Channel
}

func newServer(t testing.TB, opts presence.Options) *server {
	t.Helper()
	ep := plume.NewEndpoint(plume.Options{DrainInterval: 10 * time.Millisecond})
	tr := presence.New(ep, opts)
	t.Cleanup(func() { tr.Close() })
	return serve(t, ep, tr)
}

// serve mounts the test socket on ep, with tr for presence.
func serve(t testing.TB, ep *plume.Endpoint, tr *presence.Tracker) *server {
	t.Helper()
	s := &server{t: t, ep: ep, tr: tr, chans: make(chan *plume.Channel, 100)}
	sock := &plume.Socket{
		Connect: func(ctx context.Context, c *plume.Conn) error {
			user, _ := c.Params["user"].(string)
			if user == "" {
				return plume.ErrRefused
			}
			c.Assign("user", user)
			c.ID = "user_socket:" + user
			if tab, _ := c.Params["tab"].(string); tab != "" {
				c.ID += ":" + tab
			}
			return nil
		},
	}
	sock.Channel("room:*", func() plume.ChannelHandler { return &room{s: s} })
	s.ep.Mount("/socket", sock)
	s.srv = httptest.NewServer(s.ep)
	t.Cleanup(s.srv.Close)
	return s
}

// wsURL is the socket URL for phoenix.js ("ws://host/socket").
func (s *server) wsURL() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/socket" }

type afterJoin struct{}

type room struct {
	s    *server
	user string
	meta map[string]any
}

func (r *room) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	r.user = ch.Assigns["user"].(string)
	r.meta, _ = p.Map()["meta"].(map[string]any)
	select {
	case r.s.chans <- ch:
	default:
	}
	ch.Send(afterJoin{})
	return nil, nil
}

func (r *room) HandleInfo(ch *plume.Channel, msg any) error {
	if _, ok := msg.(afterJoin); ok {
		if err := ch.Push(presence.StateEvent, r.s.tr.List(ch.Topic())); err != nil {
			return err
		}
		_, err := r.s.tr.Track(ch, r.user, r.meta)
		return err
	}
	return nil
}

func (r *room) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	tr := r.s.tr
	switch event {
	case "update":
		ref, err := tr.Update(ch, r.user, p.Map())
		if err != nil {
			return plume.ReplyError(map[string]string{"reason": err.Error()}), nil
		}
		return plume.ReplyOK(map[string]string{"ref": ref}), nil
	case "untrack":
		tr.Untrack(ch, r.user)
		return plume.ReplyOK(nil), nil
	case "crash":
		return plume.NoReply, errors.New("boom")
	case "panic":
		panic("boom")
	case "kick":
		// Close this socket from the server, as a forced disconnect does;
		// phoenix.js reconnects and rejoins.
		return plume.ReplyOK(nil), r.s.ep.Disconnect(context.Background(), ch.SocketID())
	case "bots":
		// Track n non-channel presences in a burst.
		var req struct {
			N      int    `json:"n"`
			Prefix string `json:"prefix"`
		}
		p.Decode(&req)
		for i := 0; i < req.N; i++ {
			key := fmt.Sprintf("%s%d", req.Prefix, i)
			if _, err := tr.TrackOwner(key, ch.Topic(), key, map[string]any{"bot": true}); err != nil {
				return plume.ReplyError(map[string]string{"reason": err.Error()}), nil
			}
		}
		return plume.ReplyOK(nil), nil
	case "mix":
		// Untrack bots 0..n-1 and track bots 20..20+n-1 in one burst.
		var req struct {
			N      int    `json:"n"`
			Prefix string `json:"prefix"`
		}
		p.Decode(&req)
		for i := 0; i < req.N; i++ {
			tr.UntrackAll(fmt.Sprintf("%s%d", req.Prefix, i))
			key := fmt.Sprintf("%s%d", req.Prefix, 20+i)
			if _, err := tr.TrackOwner(key, ch.Topic(), key, map[string]any{"bot": true}); err != nil {
				return plume.ReplyError(map[string]string{"reason": err.Error()}), nil
			}
		}
		return plume.ReplyOK(nil), nil
	case "list":
		return plume.ReplyOK(tr.List(ch.Topic())), nil
	case "unbots":
		var req struct {
			N      int    `json:"n"`
			Prefix string `json:"prefix"`
		}
		p.Decode(&req)
		for i := 0; i < req.N; i++ {
			tr.UntrackAll(fmt.Sprintf("%s%d", req.Prefix, i))
		}
		return plume.ReplyOK(nil), nil
	}
	return plume.ReplyError(map[string]string{"reason": "unknown event"}), nil
}

// client is a raw WebSocket client speaking V2 frames.
type client struct {
	t  testing.TB
	nc net.Conn
}

// msg is one decoded V2 server frame.
type msg struct {
	JoinRef, Ref, Topic, Event string
	Payload                    json.RawMessage
}

func (s *server) dial(user, tab string) *client {
	s.t.Helper()
	q := url.Values{"vsn": {"2.0.0"}, "user": {user}, "tab": {tab}}
	u := "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/socket/websocket?" + q.Encode()
	nc, _, _, err := ws.Dialer{Timeout: 5 * time.Second}.Dial(context.Background(), u)
	if err != nil {
		s.t.Fatalf("dial: %v", err)
	}
	c := &client{t: s.t, nc: nc}
	s.t.Cleanup(func() { nc.Close() })
	return c
}

func (c *client) send(joinRef, ref, topic, event string, payload any) {
	c.t.Helper()
	b, err := json.Marshal([]any{joinRef, ref, topic, event, payload})
	if err != nil {
		c.t.Fatal(err)
	}
	if err := wsutil.WriteClientText(c.nc, b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next reads the next message; it fails the test on a close or timeout.
func (c *client) next() msg {
	c.t.Helper()
	m, err := c.read(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

var errClosed = errors.New("closed")

func (c *client) read(timeout time.Duration) (msg, error) {
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	for {
		h, err := ws.ReadHeader(c.nc)
		if err != nil {
			return msg{}, err
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(c.nc, payload); err != nil {
			return msg{}, err
		}
		switch h.OpCode {
		case ws.OpClose:
			// Answer and close, as the ws package does.
			wsutil.WriteClientMessage(c.nc, ws.OpClose, payload)
			c.nc.Close()
			return msg{}, errClosed
		case ws.OpText:
			var arr []json.RawMessage
			if err := json.Unmarshal(payload, &arr); err != nil || len(arr) != 5 {
				return msg{}, fmt.Errorf("bad frame %s", payload)
			}
			var m msg
			json.Unmarshal(arr[0], &m.JoinRef)
			json.Unmarshal(arr[1], &m.Ref)
			json.Unmarshal(arr[2], &m.Topic)
			json.Unmarshal(arr[3], &m.Event)
			m.Payload = arr[4]
			return m, nil
		}
	}
}

// expect reads the next message and requires its event.
func (c *client) expect(event string) msg {
	c.t.Helper()
	m := c.next()
	if m.Event != event {
		c.t.Fatalf("want %s, got %s %s", event, m.Event, m.Payload)
	}
	return m
}

// drainUntilClosed reads until the server closes the connection.
func (c *client) drainUntilClosed() {
	c.t.Helper()
	for {
		if _, err := c.read(5 * time.Second); err != nil {
			if err != errClosed {
				c.t.Fatalf("want close, got %v", err)
			}
			return
		}
	}
}

// expectNothing requires that no message arrives for d.
func (c *client) expectNothing(d time.Duration) {
	c.t.Helper()
	if m, err := c.read(d); err == nil {
		c.t.Fatalf("want nothing, got %s %s", m.Event, m.Payload)
	}
}

// join joins topic with a meta, reads the reply and the presence_state, and
// returns the state.
func (c *client) join(joinRef, topic string, meta map[string]any) map[string]presence.Presence {
	c.t.Helper()
	c.send(joinRef, joinRef, topic, "phx_join", map[string]any{"meta": meta})
	r := c.expect("phx_reply")
	if !strings.Contains(string(r.Payload), `"status":"ok"`) {
		c.t.Fatalf("join refused: %s", r.Payload)
	}
	st := c.expect(presence.StateEvent)
	var state map[string]presence.Presence
	if err := json.Unmarshal(st.Payload, &state); err != nil {
		c.t.Fatal(err)
	}
	return state
}

// diff reads the next message and requires a presence_diff.
func (c *client) diff() presence.Diff {
	c.t.Helper()
	return decodeDiff(c.t, c.expect(presence.DiffEvent).Payload)
}

func decodeDiff(t testing.TB, b []byte) presence.Diff {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["joins"]; !ok {
		t.Fatalf("diff without joins: %s", b)
	}
	if _, ok := raw["leaves"]; !ok {
		t.Fatalf("diff without leaves: %s", b)
	}
	var d presence.Diff
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// recorder subscribes to a topic and keeps its presence diffs.
type recorder struct {
	t     testing.TB
	mu    sync.Mutex
	diffs []presence.Diff
	raw   [][]byte
	ch    chan struct{}
}

func record(t testing.TB, ps *pubsub.PubSub, topic string) *recorder {
	r := &recorder{t: t, ch: make(chan struct{}, 1)}
	sub := pubsub.Func(func(m *pubsub.Message) {
		if m.Event != presence.DiffEvent {
			return
		}
		var d presence.Diff
		if err := json.Unmarshal(m.Payload, &d); err != nil {
			t.Errorf("bad diff %s: %v", m.Payload, err)
		}
		r.mu.Lock()
		r.diffs = append(r.diffs, d)
		r.raw = append(r.raw, m.Payload)
		r.mu.Unlock()
		select {
		case r.ch <- struct{}{}:
		default:
		}
	})
	ps.Subscribe(topic, sub)
	t.Cleanup(func() { ps.Unsubscribe(topic, sub) })
	return r
}

// wait waits until n diffs have arrived and returns them.
func (r *recorder) wait(n int) []presence.Diff {
	r.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		if len(r.diffs) >= n {
			out := append([]presence.Diff(nil), r.diffs...)
			r.mu.Unlock()
			return out
		}
		got := len(r.diffs)
		r.mu.Unlock()
		select {
		case <-r.ch:
		case <-deadline:
			r.t.Fatalf("waited for %d diffs, got %d", n, got)
		}
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.diffs)
}

// model is a client's presence state, kept with a Go port of phoenix.js
// Presence.syncDiff, to check that the diffs a client receives add up to
// the server's list.
type model map[string][]map[string]any

// apply is Presence.syncDiff: joins first, then leaves.
func (s model) apply(d presence.Diff) {
	for k, p := range d.Joins {
		cur := s[k]
		joined := map[any]bool{}
		for _, m := range p.Metas {
			joined[m["phx_ref"]] = true
		}
		var metas []map[string]any
		for _, m := range cur {
			if !joined[m["phx_ref"]] {
				metas = append(metas, m)
			}
		}
		s[k] = append(metas, p.Metas...)
	}
	for k, p := range d.Leaves {
		cur, ok := s[k]
		if !ok {
			continue
		}
		left := map[any]bool{}
		for _, m := range p.Metas {
			left[m["phx_ref"]] = true
		}
		var metas []map[string]any
		for _, m := range cur {
			if !left[m["phx_ref"]] {
				metas = append(metas, m)
			}
		}
		if len(metas) == 0 {
			delete(s, k)
		} else {
			s[k] = metas
		}
	}
}

// refs returns key → sorted refs, to compare states.
func refs[P any](m map[string]P, metas func(P) []map[string]any) map[string]string {
	out := map[string]string{}
	for k, p := range m {
		var rs []string
		for _, meta := range metas(p) {
			rs = append(rs, fmt.Sprint(meta["phx_ref"]))
		}
		slices.Sort(rs)
		out[k] = strings.Join(rs, ",")
	}
	return out
}

func listRefs(l map[string]presence.Presence) map[string]string {
	return refs(l, func(p presence.Presence) []map[string]any { return p.Metas })
}

func modelRefs(m model) map[string]string {
	return refs(m, func(p []map[string]any) []map[string]any { return p })
}

// eventually polls cond for up to 10 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			if os.Getenv("PRESENCE_DEBUG") != "" {
				buf := make([]byte, 1<<22)
				os.Stderr.Write(buf[:runtime.Stack(buf, true)])
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
