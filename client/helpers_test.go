package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/client"
)

// ---- an in-process Plume server ----

// testServer is a Plume endpoint with a "room:*" channel that does what
// each test event asks, behind an httptest server.
type testServer struct {
	t   *testing.T
	ep  *plume.Endpoint
	srv *httptest.Server
	h   atomic.Pointer[http.Handler]

	mu       sync.Mutex
	joins    []joinRecord // every join the server saw
	events   []string     // events handled, "topic event"
	connects int
	left     chan string // topics whose channel terminated with ErrLeft
}

type joinRecord struct {
	topic   string
	joinRef string
	payload string
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{t: t, left: make(chan string, 16)}
	ts.ep = ts.newEndpoint()
	var h http.Handler = ts.ep
	ts.h.Store(&h)
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*ts.h.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(ts.srv.Close)
	return ts
}

// newEndpoint builds an endpoint with the test socket; tests that restart
// the "server" swap in a new one with swap.
func (ts *testServer) newEndpoint() *plume.Endpoint {
	sock := &plume.Socket{
		Connect: func(ctx context.Context, c *plume.Conn) error {
			ts.mu.Lock()
			ts.connects++
			ts.mu.Unlock()
			if tok := c.Info.AuthToken; tok != "" && tok != "secret token" {
				return plume.ErrRefused
			}
			if id, _ := c.Params["id"].(string); id != "" {
				c.ID = id
			}
			if user, _ := c.Params["user"].(map[string]any); user != nil {
				c.Assign("user_name", user["name"])
			}
			c.Assign("token", c.Info.AuthToken)
			return nil
		},
	}
	sock.Channel("room:*", func() plume.ChannelHandler { return &room{ts: ts} })
	ep := plume.NewEndpoint(plume.Options{DrainInterval: 10 * time.Millisecond})
	ep.Mount("/socket", sock)
	return ep
}

func (ts *testServer) swap(ep *plume.Endpoint) {
	var h http.Handler = ep
	ts.h.Store(&h)
}

func (ts *testServer) url() string { return "ws" + strings.TrimPrefix(ts.srv.URL, "http") + "/socket" }

func (ts *testServer) joinsOf(topic string) []joinRecord {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []joinRecord
	for _, j := range ts.joins {
		if j.topic == topic {
			out = append(out, j)
		}
	}
	return out
}

func (ts *testServer) eventsSeen() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.events...)
}

func (ts *testServer) connectCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.connects
}

type room struct {
	ts *testServer
}

func (r *room) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	r.ts.mu.Lock()
	r.ts.joins = append(r.ts.joins, joinRecord{topic, ch.JoinRef(), p.String()})
	r.ts.mu.Unlock()
	var params struct {
		Refuse bool `json:"refuse"`
	}
	p.Decode(&params)
	if params.Refuse {
		return nil, plume.RefuseJoin(map[string]string{"reason": "refused"})
	}
	return map[string]any{"topic": topic, "user_name": ch.Assigns["user_name"], "token": ch.Assigns["token"]}, nil
}

func (r *room) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	r.ts.mu.Lock()
	r.ts.events = append(r.ts.events, ch.Topic()+" "+event+" "+p.String())
	r.ts.mu.Unlock()
	switch event {
	case "echo":
		return plume.ReplyOK(p), nil
	case "fail":
		return plume.ReplyError(map[string]string{"why": "failed"}), nil
	case "custom":
		return plume.ReplyStatus("custom", map[string]int{"n": 1}), nil
	case "silent":
		return plume.NoReply, nil
	case "crash":
		panic("crash requested by the test")
	case "shout":
		return plume.ReplyOK(nil), ch.Broadcast("shout", p)
	case "bin_echo":
		if !p.IsBinary() {
			return plume.ReplyError(map[string]string{"why": "not binary"}), nil
		}
		return plume.ReplyOK(plume.Binary(append([]byte("echo:"), p.Bytes()...))), nil
	case "bin_info":
		return plume.ReplyOK(map[string]any{"binary": p.IsBinary(), "bytes": p.Bytes()}), nil
	case "push_bin":
		return plume.ReplyOK(nil), ch.Push("bin", plume.Binary([]byte{0, 1, 2, 255}))
	case "close":
		return plume.ReplyOK(nil), plume.ErrNormal
	}
	return plume.ReplyOK(nil), nil
}

func (r *room) Terminate(ch *plume.Channel, reason error) {
	if errors.Is(reason, plume.ErrLeft) {
		r.ts.left <- ch.Topic()
	}
}

// newSocket returns a client for ts with fast test timings, closed at the
// end of the test.
func newSocket(t *testing.T, endpoint string, opts *client.Options) *client.Socket {
	t.Helper()
	if opts == nil {
		opts = &client.Options{}
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.RejoinAfter == nil {
		opts.RejoinAfter = func(int) time.Duration { return 20 * time.Millisecond }
	}
	s := client.NewSocket(endpoint, opts)
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// recv waits for a value on c.
func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustJSON(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("bad JSON %q: %v", data, err)
	}
	return m
}

// ---- a raw WebSocket server that speaks frames, for what Plume never sends ----

type rawServer struct {
	t     *testing.T
	srv   *httptest.Server
	conns chan *rawConn

	mu  sync.Mutex
	all []*rawConn
	wg  sync.WaitGroup
}

type rawConn struct {
	t      *testing.T
	nc     net.Conn
	query  url.Values
	header http.Header
	in     chan rawFrame
	wmu    sync.Mutex
}

type rawFrame struct {
	text   string
	binary []byte
	closed bool
}

func newRawServer(t *testing.T) *rawServer {
	t.Helper()
	rs := &rawServer{t: t, conns: make(chan *rawConn, 16)}
	rs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := ws.HTTPUpgrader{Protocol: func(p string) bool { return p == "phoenix" }}
		nc, _, _, err := up.Upgrade(r, w)
		if err != nil {
			return
		}
		rc := &rawConn{t: t, nc: nc, query: r.URL.Query(), header: r.Header.Clone(), in: make(chan rawFrame, 64)}
		rs.mu.Lock()
		rs.all = append(rs.all, rc)
		rs.wg.Add(1)
		rs.mu.Unlock()
		rs.conns <- rc
		go func() {
			defer rs.wg.Done()
			defer close(rc.in)
			for {
				data, op, err := wsutil.ReadClientData(nc)
				if err != nil {
					rc.in <- rawFrame{closed: true}
					return
				}
				if op == ws.OpBinary {
					rc.in <- rawFrame{binary: data}
				} else {
					rc.in <- rawFrame{text: string(data)}
				}
			}
		}()
	}))
	t.Cleanup(func() {
		rs.mu.Lock()
		for _, c := range rs.all {
			c.nc.Close()
		}
		rs.mu.Unlock()
		rs.wg.Wait()
		rs.srv.Close()
	})
	return rs
}

func (rs *rawServer) url() string { return "ws" + strings.TrimPrefix(rs.srv.URL, "http") + "/socket" }

func (rs *rawServer) accept() *rawConn {
	rs.t.Helper()
	return recv(rs.t, rs.conns, "a connection")
}

// next returns the next text frame, decoded as a V2 array.
func (c *rawConn) next() []any {
	c.t.Helper()
	for {
		f, ok := <-c.in
		if !ok || f.closed {
			c.t.Fatalf("connection closed while waiting for a frame")
		}
		if f.binary != nil {
			c.t.Fatalf("unexpected binary frame %x", f.binary)
		}
		var arr []any
		if err := json.Unmarshal([]byte(f.text), &arr); err != nil || len(arr) != 5 {
			c.t.Fatalf("bad frame %s", f.text)
		}
		return arr
	}
}

// nextEvent returns the next frame, skipping heartbeats.
func (c *rawConn) nextEvent() []any {
	c.t.Helper()
	for {
		arr := c.next()
		if arr[2] == "phoenix" && arr[3] == "heartbeat" {
			continue
		}
		return arr
	}
}

func (c *rawConn) send(frame string) {
	c.t.Helper()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := wsutil.WriteServerText(c.nc, []byte(frame)); err != nil {
		c.t.Fatalf("raw send: %v", err)
	}
}

func (c *rawConn) sendBinary(b []byte) {
	c.t.Helper()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := wsutil.WriteServerBinary(c.nc, b); err != nil {
		c.t.Fatalf("raw send: %v", err)
	}
}

// waitClosed waits until the client closed the connection.
func (c *rawConn) waitClosed() {
	c.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f, ok := <-c.in:
			if !ok || f.closed {
				return
			}
		case <-timeout:
			c.t.Fatalf("connection not closed")
		}
	}
}

func jsonStr(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
