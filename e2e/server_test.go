package e2e

import (
	"context"
	"errors"
	"fmt"
	"github.com/plumehq/plume/internal/testenv"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plumehq/plume"
)

// rec is one thing the server saw.
type rec struct {
	kind     string // connect, refused, join, in, terminate
	topic    string
	joinRef  string
	event    string
	socketID string
	payload  plume.Payload
	refused  bool  // join: refused
	reason   error // terminate: the reason
	params   plume.Params
	token    string
	at       time.Time // when it was recorded
}

func (r rec) String() string {
	switch r.kind {
	case "connect", "refused":
		return fmt.Sprintf("%s params=%v token=%q", r.kind, r.params, r.token)
	case "terminate":
		return fmt.Sprintf("terminate %s join_ref=%s reason=%v", r.topic, r.joinRef, r.reason)
	}
	return fmt.Sprintf("%s %s join_ref=%s event=%s refused=%v payload=%s", r.kind, r.topic, r.joinRef, r.event, r.refused, r.payload)
}

// recorder collects what the server side saw, for the Go assertions.
type recorder struct {
	mu      sync.Mutex
	recs    []rec
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) add(x rec) {
	x.at = time.Now()
	r.mu.Lock()
	r.recs = append(r.recs, x)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// list returns the records of kind (and topic, unless "").
func (r *recorder) list(kind, topic string) []rec {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []rec
	for _, x := range r.recs {
		if x.kind == kind && (topic == "" || x.topic == topic) {
			out = append(out, x)
		}
	}
	return out
}

func (r *recorder) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, x := range r.recs {
		b.WriteString("  " + x.String() + "\n")
	}
	return b.String()
}

// waitN waits until at least n records of kind on topic exist and returns
// them.
func (r *recorder) waitN(t *testing.T, kind, topic string, n int) []rec {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if l := r.list(kind, topic); len(l) >= n {
			return l
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("server: waited 5s for %d %q record(s) on topic %q; the server saw:\n%s", n, kind, topic, r.dump())
		}
	}
}

// testChannel is the channel every test topic routes to. What it does is
// chosen by the topic prefix (join) and the event name (handle_in).
type testChannel struct {
	rec *recorder
}

func copyPayload(p plume.Payload) plume.Payload {
	b := append([]byte(nil), p.Bytes()...)
	if p.IsBinary() {
		return plume.BinaryPayload(b)
	}
	return plume.JSONPayload(b)
}

func (c *testChannel) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	r := rec{kind: "join", topic: topic, joinRef: ch.JoinRef(), socketID: ch.SocketID(), payload: copyPayload(p)}
	switch {
	case strings.HasPrefix(topic, "private:"):
		var m struct{ Token string }
		if err := p.Decode(&m); err != nil || m.Token != "letmein" {
			r.refused = true
			c.rec.add(r)
			return nil, plume.RefuseJoin(map[string]string{"reason": "unauthorized"})
		}
	case strings.HasPrefix(topic, "nope:"):
		r.refused = true
		c.rec.add(r)
		return nil, errors.New("nope")
	}
	c.rec.add(r)
	return map[string]any{"topic": topic, "params": p}, nil
}

// binaryReply is what the "binary" event answers: 0xff, then the received
// bytes reversed.
func binaryReply(in []byte) []byte {
	out := []byte{0xff}
	for i := len(in) - 1; i >= 0; i-- {
		out = append(out, in[i])
	}
	return out
}

var (
	pushedBinary      = []byte{0, 1, 2, 250, 251, 252}
	broadcastedBinary = []byte{9, 8, 7, 0, 255}
)

func (c *testChannel) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	c.rec.add(rec{kind: "in", topic: ch.Topic(), joinRef: ch.JoinRef(), event: event, payload: copyPayload(p)})
	switch event {
	case "echo":
		return plume.ReplyOK(p), nil
	case "fail":
		return plume.ReplyError(map[string]string{"why": "you asked"}), nil
	case "custom":
		return plume.ReplyStatus("accepted", map[string]bool{"queued": true}), nil
	case "silent":
		return plume.NoReply, nil
	case "crash":
		panic("crash requested by the client")
	case "binary":
		if !p.IsBinary() {
			return plume.ReplyError(map[string]string{"why": "want binary"}), nil
		}
		return plume.ReplyOK(plume.Binary(binaryReply(p.Bytes()))), nil
	case "push_binary":
		if err := ch.Push("bin_push", plume.Binary(pushedBinary)); err != nil {
			return plume.ReplyError(map[string]string{"why": err.Error()}), nil
		}
		return plume.ReplyOK(nil), nil
	case "broadcast_binary":
		if err := ch.Broadcast("bin_bc", plume.Binary(broadcastedBinary)); err != nil {
			return plume.ReplyError(map[string]string{"why": err.Error()}), nil
		}
		return plume.ReplyOK(nil), nil
	case "broadcast", "broadcast_from":
		var err error
		if event == "broadcast" {
			err = ch.Broadcast("shout", p)
		} else {
			err = ch.BroadcastFrom("shout_from", p)
		}
		if err != nil {
			return plume.ReplyError(map[string]string{"why": err.Error()}), nil
		}
		return plume.ReplyOK(nil), nil
	case "close_conn":
		ch.Conn().Close()
		return plume.NoReply, nil
	case "stop":
		return plume.ReplyOK(nil), plume.ErrNormal
	case "fail_stop":
		return plume.ReplyOK(nil), errors.New("stopping with an error")
	}
	return plume.ReplyError(map[string]string{"why": "unknown event " + event}), nil
}

func (c *testChannel) Terminate(ch *plume.Channel, reason error) {
	c.rec.add(rec{kind: "terminate", topic: ch.Topic(), joinRef: ch.JoinRef(), reason: reason})
}

// node is one endpoint with the test socket mounted at /socket.
type node struct {
	ep   *plume.Endpoint
	sock *plume.Socket
	rec  *recorder
}

// newNode builds an endpoint. Connect records every connection; params
// refuse=<anything> refuses it, user_id=<id> sets the socket id
// "user_socket:<id>".
func newNode(logs *testenv.Buffer, opts plume.Options, tweak func(*plume.Socket)) *node {
	n := &node{rec: newRecorder()}
	n.sock = &plume.Socket{
		Connect: func(ctx context.Context, c *plume.Conn) error {
			r := rec{kind: "connect", params: c.Params, token: c.Info.AuthToken}
			if c.Params.String("refuse") != "" {
				r.kind = "refused"
				n.rec.add(r)
				return plume.ErrRefused
			}
			if id := c.Params.String("user_id"); id != "" {
				c.ID = "user_socket:" + id
			}
			n.rec.add(r)
			return nil
		},
	}
	for _, pattern := range []string{"echo:*", "private:*", "nope:*"} {
		n.sock.Channel(pattern, func() plume.ChannelHandler { return &testChannel{rec: n.rec} })
	}
	if tweak != nil {
		tweak(n.sock)
	}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n.ep = plume.NewEndpoint(opts)
	n.ep.Mount("/socket", n.sock)
	return n
}

// testServer is an httptest.Server in front of a node; swap replaces the
// node new requests go to (a rolling deploy behind one address).
type testServer struct {
	*node
	url  string // ws://127.0.0.1:port/socket
	srv  *httptest.Server
	cur  atomic.Pointer[node]
	logs *testenv.Buffer
}

func startServer(t *testing.T, tweak func(*plume.Socket)) *testServer {
	t.Helper()
	requireNode(t) // skip before starting anything
	ts := &testServer{logs: &testenv.Buffer{}}
	ts.node = newNode(ts.logs, plume.Options{}, tweak)
	ts.cur.Store(ts.node)
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.cur.Load().ep.ServeHTTP(w, r)
	}))
	ts.url = "ws" + strings.TrimPrefix(ts.srv.URL, "http") + "/socket"
	t.Cleanup(func() {
		ts.srv.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", ts.logs.String())
		}
	})
	return ts
}

func (ts *testServer) swap(n *node) { ts.cur.Store(n) }
