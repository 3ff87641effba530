package plume

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/plumehq/plume/internal/testenv"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/pubsub"
	"github.com/plumehq/plume/pubsub/pubsubtest"
)

// Long-poll across nodes: endpoints on PubSubs joined by the in-memory
// broker of pubsubtest, a request for a session landing on a node that does
// not own it. pubsub/nats has the same over an embedded nats-server.

var lpcSecret = []byte("0123456789abcdef0123456789abcdef")

// lpcNode is one node: an endpoint with a long-poll socket at /socket on
// its own PubSub, behind an httptest.Server.
type lpcNode struct {
	t       *testing.T
	ep      *Endpoint
	ps      *pubsub.PubSub
	srv     *httptest.Server
	reasons chan string
	stopped bool
}

// lpcRoom is the test channel: ping echoes, shout broadcasts "shouted",
// whoami reports assigns, bin reports a binary payload.
type lpcRoom struct{ n *lpcNode }

func (r *lpcRoom) Join(ch *Channel, topic string, p Payload) (any, error) { return nil, nil }

func (r *lpcRoom) HandleIn(ch *Channel, event string, p Payload) (Reply, error) {
	switch event {
	case "ping":
		return ReplyOK(p), nil
	case "shout":
		return ReplyOK(nil), ch.Broadcast("shouted", p)
	case "whoami":
		return ReplyOK(map[string]any{"auth": ch.Assigns["auth"], "x": ch.Assigns["x"], "transport": ch.Conn().TransportName()}), nil
	case "bin":
		return ReplyOK(map[string]any{"size": len(p.Bytes()), "bytes": fmt.Sprint(p.Bytes())}), nil
	}
	return ReplyError(map[string]string{"reason": "unknown event"}), nil
}

func (r *lpcRoom) Terminate(ch *Channel, reason error) {
	select {
	case r.n.reasons <- ch.Topic() + " " + reason.Error():
	default:
	}
}

// lpcCluster starts n nodes on one in-memory broker, sharing the secret,
// with a short answer margin so that a dead owner is noticed quickly; cfg
// adjusts each node's socket.
func lpcCluster(t *testing.T, n int, window time.Duration, cfg ...func(*Socket)) []*lpcNode {
	t.Helper()
	nodes := make([]*lpcNode, n)
	for i, a := range pubsubtest.NewCluster(n) {
		ps, err := pubsub.New(pubsub.Options{Adapter: a})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = lpcStart(t, ps, lpcSecret, window, cfg...)
	}
	return nodes
}

// lpcStart starts a node on ps, which it closes at the end of the test.
func lpcStart(t *testing.T, ps *pubsub.PubSub, secret []byte, window time.Duration, cfg ...func(*Socket)) *lpcNode {
	t.Helper()
	t.Cleanup(func() { ps.Close() })
	nd := &lpcNode{t: t, ps: ps, reasons: make(chan string, 100)}
	nd.ep = NewEndpoint(Options{PubSub: ps, LongPollSecret: secret})
	nd.ep.lp.cl.timeout = 300 * time.Millisecond
	sock := &Socket{LongPollWindow: window, Connect: func(ctx context.Context, c *Conn) error {
		if user, _ := c.Params["user"].(string); user != "" {
			c.ID = "user:" + user
		}
		c.Assign("auth", c.Info.AuthToken)
		c.Assign("x", c.Info.XHeaders.Get("X-Test"))
		return nil
	}}
	for _, f := range cfg {
		f(sock)
	}
	sock.Channel("room:*", func() ChannelHandler { return &lpcRoom{n: nd} })
	nd.ep.Mount("/socket", sock)
	nd.srv = httptest.NewServer(nd.ep)
	t.Cleanup(nd.stop)
	return nd
}

// kill stops the node and closes its PubSub, taking it out of the cluster.
func (nd *lpcNode) kill() {
	nd.stop()
	nd.ps.Close()
}

// stop shuts the endpoint and its server down.
func (nd *lpcNode) stop() {
	if nd.stopped {
		return
	}
	nd.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nd.ep.Shutdown(ctx); err != nil {
		nd.t.Errorf("shutdown: %v", err)
	}
	nd.srv.Close()
	nd.srv.Client().CloseIdleConnections()
}

func (nd *lpcNode) waitPolls(n int) {
	nd.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for LongPollPolls(nd.ep) != n {
		if time.Now().After(deadline) {
			nd.t.Fatalf("want %d polls under way, have %d", n, LongPollPolls(nd.ep))
		}
		time.Sleep(time.Millisecond)
	}
}

func (nd *lpcNode) expectReason(want string) {
	nd.t.Helper()
	select {
	case got := <-nd.reasons:
		if got != want {
			nd.t.Fatalf("terminate: want %q, got %q", want, got)
		}
	case <-time.After(5 * time.Second):
		nd.t.Fatalf("terminate: want %q, got nothing", want)
	}
}

// lpcResp is a decoded long-poll reply.
type lpcResp struct {
	code     int
	body     string
	Status   int      `json:"status"`
	Token    string   `json:"token"`
	Messages []string `json:"messages"`
}

// lpcClient is one long-poll client whose requests go to any node.
type lpcClient struct {
	t     *testing.T
	token string
}

func (c *lpcClient) try(ctx context.Context, nd *lpcNode, method, contentType, body string) (lpcResp, error) {
	u := nd.srv.URL + "/socket/longpoll?vsn=2.0.0&user=u1"
	if c.token != "" {
		u += "&token=" + url.QueryEscape(c.token)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return lpcResp{}, err
	}
	req.Header.Set("X-Phoenix-AuthToken", "secret-auth")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: nd.srv.Client().Transport}
	res, err := hc.Do(req)
	if err != nil {
		return lpcResp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return lpcResp{}, err
	}
	r := lpcResp{code: res.StatusCode, body: string(b)}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r); err != nil {
			return r, fmt.Errorf("bad JSON %q: %v", b, err)
		}
	}
	return r, nil
}

func (c *lpcClient) do(nd *lpcNode, method, contentType, body string) lpcResp {
	c.t.Helper()
	r, err := c.try(context.Background(), nd, method, contentType, body)
	if err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
	if r.code != 200 {
		c.t.Fatalf("%s: HTTP %d %s", method, r.code, r.body)
	}
	return r
}

// open starts a session on nd and keeps its token.
func (c *lpcClient) open(nd *lpcNode) {
	c.t.Helper()
	c.token = ""
	r := c.do(nd, "GET", "", "")
	if r.Status != 410 || r.Token == "" || r.Messages == nil || len(r.Messages) != 0 {
		c.t.Fatalf("open: %s", r.body)
	}
	c.token = r.Token
}

// post sends ndjson lines to nd and requires {"status":200}.
func (c *lpcClient) post(nd *lpcNode, lines ...string) {
	c.t.Helper()
	if r := c.do(nd, "POST", "application/x-ndjson", strings.Join(lines, "\n")); r.body != `{"status":200}` {
		c.t.Fatalf("POST: want {\"status\":200}, got %s", r.body)
	}
}

// expect polls nd until the messages have arrived, taking new tokens.
func (c *lpcClient) expect(nd *lpcNode, want ...string) {
	c.t.Helper()
	var got []string
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		r := c.do(nd, "GET", "", "")
		switch r.Status {
		case 200:
			got = append(got, r.Messages...)
		case 204:
		default:
			c.t.Fatalf("poll: want 200 or 204, got %s (after %q)", r.body, got)
		}
		if r.Token == "" {
			c.t.Fatalf("poll without a token: %s", r.body)
		}
		c.token = r.Token
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		c.t.Fatalf("messages:\nwant %q\ngot  %q", want, got)
	}
}

func lpcReply(ref, topic, status, response string) string {
	return `["1","` + ref + `","` + topic + `","phx_reply",{"response":` + response + `,"status":"` + status + `"}]`
}

// TestLongPollClusterForward: a session opened on node 1 is used only
// through node 2: join, pushes with replies (text and binary), a broadcast
// from the channel and one from either endpoint all travel through the
// poll on node 2.
func TestLongPollClusterForward(t *testing.T) {
	leakcheck.Check(t)
	nodes := lpcCluster(t, 2, 2*time.Second)
	a, b := nodes[0], nodes[1]
	c := &lpcClient{t: t}
	c.open(a)
	c.post(b, `["1","1","room:1","phx_join",{}]`)
	c.expect(b, lpcReply("1", "room:1", "ok", "{}"))
	c.post(b, `["1","2","room:1","ping",{"n":2}]`, `["1","3","room:1","whoami",{}]`)
	c.expect(b,
		lpcReply("2", "room:1", "ok", `{"n":2}`),
		lpcReply("3", "room:1", "ok", `{"auth":"secret-auth","transport":"longpoll","x":""}`))
	// A binary push: base64 in ndjson, forwarded as is.
	bin := []byte{0, 1, 1, 6, 3}
	bin = append(bin, "14room:1bin"...)
	bin = append(bin, 9, 8, 250)
	c.post(b, base64.StdEncoding.EncodeToString(bin))
	c.expect(b, lpcReply("4", "room:1", "ok", `{"bytes":"[9 8 250]","size":3}`))
	c.post(b, `["1","5","room:1","shout",{"m":"hi"}]`)
	c.expect(b, `[null,null,"room:1","shouted",{"m":"hi"}]`, lpcReply("5", "room:1", "ok", "{}"))
	ctx := context.Background()
	if err := b.ep.Broadcast(ctx, "room:1", "news", map[string]int{"from": 2}); err != nil {
		t.Fatal(err)
	}
	c.expect(b, `[null,null,"room:1","news",{"from":2}]`)
	if err := a.ep.Broadcast(ctx, "room:1", "news", map[string]int{"from": 1}); err != nil {
		t.Fatal(err)
	}
	c.expect(b, `[null,null,"room:1","news",{"from":1}]`)
	// A poll waiting on node 2 wakes for a frame on node 1.
	done := make(chan lpcResp, 1)
	go func() {
		r, _ := c.try(ctx, b, "GET", "", "")
		done <- r
	}()
	a.waitPolls(1)
	a.ep.LocalBroadcast("room:1", "late", map[string]int{})
	if r := <-done; r.Status != 200 || len(r.Messages) != 1 || r.Messages[0] != `[null,null,"room:1","late",{}]` {
		t.Fatalf("waiting poll: %s", r.body)
	}
	// The session lives on node 1 only, and still answers there.
	if a.ep.Connections() != 1 || b.ep.Connections() != 0 {
		t.Fatalf("connections: node 1 %d, node 2 %d", a.ep.Connections(), b.ep.Connections())
	}
	c.post(a, `["1","6","room:1","ping",{}]`)
	c.expect(a, lpcReply("6", "room:1", "ok", "{}"))
}

// TestLongPollClusterAlternating: every request goes to the other node
// than the one before, with a poller running alongside the pushes, as
// behind a round-robin balancer.
func TestLongPollClusterAlternating(t *testing.T) {
	leakcheck.Check(t)
	nodes := lpcCluster(t, 2, 2*time.Second)
	c := &lpcClient{t: t}
	c.open(nodes[1])
	c.post(nodes[0], `["1","1","room:alt","phx_join",{}]`)
	c.expect(nodes[1], lpcReply("1", "room:alt", "ok", "{}"))
	const pushes = 40
	got := make(chan string, 2*pushes)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		poller := &lpcClient{t: t, token: c.token}
		for i := 0; ctx.Err() == nil; i++ {
			r, err := poller.try(ctx, nodes[i%2], "GET", "", "")
			if ctx.Err() != nil {
				return
			}
			if err != nil || r.Status != 200 && r.Status != 204 {
				got <- fmt.Sprintf("ERR %v %s", err, r.body)
				return
			}
			poller.token = r.Token
			for _, m := range r.Messages {
				got <- m
			}
		}
	}()
	defer func() { cancel(); wg.Wait() }()
	for i := range pushes {
		ref := fmt.Sprint(i + 2)
		c.post(nodes[i%2], `["1","`+ref+`","room:alt","ping",{"i":`+fmt.Sprint(i)+`}]`)
		want := lpcReply(ref, "room:alt", "ok", `{"i":`+fmt.Sprint(i)+`}`)
		select {
		case m := <-got:
			if m != want {
				t.Fatalf("push %d:\nwant %s\ngot  %s", i, want, m)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("push %d: no reply", i)
		}
	}
	if nodes[0].ep.Connections() != 0 || nodes[1].ep.Connections() != 1 {
		t.Fatal("the session moved")
	}
}

// TestLongPollClusterOwnerStops: when the owner goes away, a poll waiting
// through another node ends with 410, and later requests there are
// answered as for a dead session: POST 410, GET a new session.
func TestLongPollClusterOwnerStops(t *testing.T) {
	leakcheck.Check(t)
	nodes := lpcCluster(t, 2, 300*time.Millisecond)
	a, b := nodes[0], nodes[1]
	c := &lpcClient{t: t}
	c.open(a)
	c.post(b, `["1","1","room:1","phx_join",{}]`)
	c.expect(b, lpcReply("1", "room:1", "ok", "{}"))
	old := c.token
	done := make(chan lpcResp, 1)
	go func() {
		r, _ := c.try(context.Background(), b, "GET", "", "")
		done <- r
	}()
	a.waitPolls(1)
	a.kill()
	a.expectReason("room:1 shutdown: draining")
	if r := <-done; r.body != `{"status":410}` {
		t.Fatalf("poll waiting while the owner stopped: %s", r.body)
	}
	// Nobody answers for the session now: the request times out.
	if r := c.do(b, "POST", "application/x-ndjson", `["1","2","room:1","ping",{}]`); r.body != `{"status":410}` {
		t.Fatalf("POST for a session of a stopped node: %s", r.body)
	}
	r := c.do(b, "GET", "", "")
	if r.Status != 410 || r.Token == "" || r.Token == old {
		t.Fatalf("GET for a session of a stopped node: %s", r.body)
	}
	if b.ep.Connections() != 1 {
		t.Fatalf("node 2 has %d connections, want the new session", b.ep.Connections())
	}
	c.token = r.Token
	c.post(b, `["1","1","room:1","phx_join",{}]`)
	c.expect(b, lpcReply("1", "room:1", "ok", "{}"))
}

// TestLongPollClusterSessionGone: the owner is up but the session has
// ended: the other node is told so at once and answers as locally.
func TestLongPollClusterSessionGone(t *testing.T) {
	leakcheck.Check(t)
	nodes := lpcCluster(t, 2, 2*time.Second)
	a, b := nodes[0], nodes[1]
	c := &lpcClient{t: t}
	c.open(a)
	c.post(b, `["1","1","room:1","phx_join",{}]`)
	c.expect(b, lpcReply("1", "room:1", "ok", "{}"))
	old := c.token
	if err := b.ep.Disconnect(context.Background(), "user:u1"); err != nil {
		t.Fatal(err)
	}
	a.expectReason("room:1 shutdown: closed")
	if r := c.do(b, "POST", "application/x-ndjson", `["1","2","room:1","ping",{}]`); r.body != `{"status":410}` {
		t.Fatalf("POST for a gone session: %s", r.body)
	}
	r := c.do(b, "GET", "", "")
	if r.Status != 410 || r.Token == "" || r.Token == old || b.ep.Connections() != 1 {
		t.Fatalf("GET for a gone session: %s", r.body)
	}
}

// TestLongPollClusterForgedNode: the node a token names is covered by its
// signature: a token altered to name another node is refused before any
// routing, and the session it was made from is left alone.
func TestLongPollClusterForgedNode(t *testing.T) {
	leakcheck.Check(t)
	nodes := lpcCluster(t, 2, 2*time.Second)
	a, b := nodes[0], nodes[1]
	c := &lpcClient{t: t}
	c.open(a)
	c.post(a, `["1","1","room:1","phx_join",{}]`)
	payload, sig, _ := strings.Cut(c.token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || !strings.HasSuffix(string(raw), "node1") {
		t.Fatalf("token payload %q: %v", raw, err)
	}
	for _, node := range []string{"node2", "node3", "node1x"} {
		forged := base64.RawURLEncoding.EncodeToString(append(raw[:len(raw)-len("node1"):len(raw)-len("node1")], node...)) + "." + sig
		if _, err := b.ep.lp.verify(forged, time.Now().UnixMilli()); err != errLPTokenInvalid {
			t.Fatalf("forged token naming %s: %v", node, err)
		}
		f := &lpcClient{t: t, token: forged}
		if r := f.do(b, "POST", "application/x-ndjson", `["1","2","room:1","ping",{}]`); r.body != `{"status":410}` {
			t.Fatalf("POST with a token forged to name %s: %s", node, r.body)
		}
		if r := f.do(b, "GET", "", ""); r.Status != 410 || r.Token == "" || r.Token == forged {
			t.Fatalf("GET with a token forged to name %s: %s", node, r.body)
		}
		if r := f.do(a, "GET", "", ""); r.Status != 410 || r.Token == "" || r.Token == forged {
			t.Fatalf("GET on node 1 with a token forged to name %s: %s", node, r.body)
		}
	}
	// The join reply is still waiting for the real client.
	c.expect(b, lpcReply("1", "room:1", "ok", "{}"))
	// Another secret: the token verifies nowhere.
	ps, _ := pubsub.New(pubsub.Options{NodeName: "node1"})
	other := lpcStart(t, ps, []byte("another secret, another cluster."), time.Second)
	if _, err := other.ep.lp.verify(c.token, time.Now().UnixMilli()); err != errLPTokenInvalid {
		t.Fatalf("token under another secret: %v", err)
	}
}

// TestLongPollClusterCancel: a client that gives up a poll waiting through
// another node ends the poll on the owner, so the frame that arrives next
// is not taken for nobody.
func TestLongPollClusterCancel(t *testing.T) {
	leakcheck.Check(t)
	nodes := lpcCluster(t, 2, 5*time.Second)
	a, b := nodes[0], nodes[1]
	c := &lpcClient{t: t}
	c.open(a)
	c.post(b, `["1","1","room:1","phx_join",{}]`)
	c.expect(b, lpcReply("1", "room:1", "ok", "{}"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.try(ctx, b, "GET", "", "")
	}()
	a.waitPolls(1)
	cancel()
	<-done
	a.waitPolls(0)
	a.ep.LocalBroadcast("room:1", "after", map[string]int{})
	c.expect(b, `[null,null,"room:1","after",{}]`)
}

// TestLongPollClusterForwarderStops: a node shutting down while a poll it
// forwarded waits answers "nothing yet" with the client's token, which the
// owner still honours.
func TestLongPollClusterForwarderStops(t *testing.T) {
	leakcheck.Check(t)
	nodes := lpcCluster(t, 2, 5*time.Second)
	a, b := nodes[0], nodes[1]
	c := &lpcClient{t: t}
	c.open(a)
	done := make(chan lpcResp, 1)
	go func() {
		r, _ := c.try(context.Background(), b, "GET", "", "")
		done <- r
	}()
	a.waitPolls(1)
	if err := b.ep.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.Status != 204 || r.Token != c.token || r.Messages == nil || len(r.Messages) != 0 {
		t.Fatalf("poll on the stopping node: %s", r.body)
	}
	a.waitPolls(0)
	c.post(a, `["1","1","room:1","phx_join",{}]`)
	c.expect(a, lpcReply("1", "room:1", "ok", "{}"))
	// The stopped node no longer forwards: a POST finds no session there.
	if r := c.do(b, "POST", "application/x-ndjson", `[null,"2","phoenix","heartbeat",{}]`); r.body != `{"status":410}` {
		t.Fatalf("POST on the stopped node: %s", r.body)
	}
}

// TestLongPollClusterTooBig: a body too large for the socket, sent to
// another node, ends the session on its owner as a local one would.
func TestLongPollClusterTooBig(t *testing.T) {
	leakcheck.Check(t)
	nodes := lpcCluster(t, 2, 2*time.Second, func(s *Socket) { s.MaxFrameSize = 64 })
	a, b := nodes[0], nodes[1]
	c := &lpcClient{t: t}
	c.open(a)
	c.post(b, `["1","1","room:1","phx_join",{}]`)
	c.expect(b, lpcReply("1", "room:1", "ok", "{}"))
	if r := c.do(b, "POST", "application/x-ndjson", strings.Repeat("x", 20000)); r.body != `{"status":413}` {
		t.Fatalf("POST too large: %s", r.body)
	}
	a.expectReason("room:1 shutdown: closed")
	if r := c.do(b, "GET", "", ""); r.Status != 410 || r.Token == "" || r.Token == c.token {
		t.Fatalf("poll after the close: %s", r.body)
	}
}

// TestLongPollClusterLargeBuffer: a forwarded poll takes a bounded share
// of a large buffer; the rest comes with the next polls, in order.
func TestLongPollClusterLargeBuffer(t *testing.T) {
	leakcheck.Check(t)
	nodes := lpcCluster(t, 2, 2*time.Second, func(s *Socket) { s.MaxQueueBytes = 4 << 20 })
	a, b := nodes[0], nodes[1]
	c := &lpcClient{t: t}
	c.open(a)
	c.post(b, `["1","1","room:1","phx_join",{}]`)
	c.expect(b, lpcReply("1", "room:1", "ok", "{}"))
	const count = 40
	big := strings.Repeat("y", 32<<10)
	for i := range count {
		a.ep.LocalBroadcast("room:1", "big", map[string]any{"i": i, "s": big})
	}
	var want []string
	for i := range count {
		want = append(want, fmt.Sprintf(`[null,null,"room:1","big",{"i":%d,"s":"%s"}]`, i, big))
	}
	polls := 0
	var got []string
	for len(got) < count && polls < 50 {
		r := c.do(b, "GET", "", "")
		polls++
		if r.Status != 200 || len(r.body) > 2*lpForwardMaxReply {
			t.Fatalf("poll %d: status %d, %d bytes", polls, r.Status, len(r.body))
		}
		got = append(got, r.Messages...)
		c.token = r.Token
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %d messages, want %d in order", len(got), count)
	}
	if polls < 2 {
		t.Fatalf("1.3 MB of frames came in %d forwarded poll", polls)
	}
}

// TestLongPollClusterSharedPubSub: two endpoints on one PubSub (one node
// name) each answer for their own sessions when requests come from
// another node, and a session neither has is gone.
func TestLongPollClusterSharedPubSub(t *testing.T) {
	leakcheck.Check(t)
	as := pubsubtest.NewCluster(2)
	psA, err := pubsub.New(pubsub.Options{Adapter: as[0]})
	if err != nil {
		t.Fatal(err)
	}
	psB, err := pubsub.New(pubsub.Options{Adapter: as[1]})
	if err != nil {
		t.Fatal(err)
	}
	a := lpcStart(t, psA, lpcSecret, 2*time.Second)
	b1 := lpcStart(t, psB, lpcSecret, 2*time.Second)
	b2 := lpcStart(t, psB, lpcSecret, 2*time.Second)
	c1, c2 := &lpcClient{t: t}, &lpcClient{t: t}
	c1.open(b1)
	c2.open(b2)
	for i, c := range []*lpcClient{c1, c2} {
		ref := fmt.Sprint(i + 1)
		c.post(a, `["1","`+ref+`","room:1","phx_join",{}]`)
		c.expect(a, lpcReply(ref, "room:1", "ok", "{}"))
	}
	if b1.ep.Connections() != 1 || b2.ep.Connections() != 1 || a.ep.Connections() != 0 {
		t.Fatal("sessions moved")
	}
	// Once b2 stops, its session is gone, answered by b1 at once.
	b2.stop()
	r := c2.do(a, "GET", "", "")
	if r.Status != 410 || r.Token == c2.token || a.ep.Connections() != 1 {
		t.Fatalf("GET for a session of a stopped endpoint: %s", r.body)
	}
	c1.post(a, `["1","3","room:1","ping",{}]`)
	c1.expect(a, lpcReply("3", "room:1", "ok", "{}"))
}

// TestLongPollClusterNoAdapter: without an adapter the owner cannot be
// reached; the request is answered as for a dead session at once.
func TestLongPollClusterNoAdapter(t *testing.T) {
	leakcheck.Check(t)
	a := lpcStart(t, pubsub.NewLocal(), lpcSecret, 2*time.Second)
	b := lpcStart(t, pubsub.NewLocal(), lpcSecret, 2*time.Second)
	c := &lpcClient{t: t}
	c.open(a)
	if r := c.do(b, "POST", "application/x-ndjson", `[null,"1","phoenix","heartbeat",{}]`); r.body != `{"status":410}` {
		t.Fatalf("POST: %s", r.body)
	}
	if r := c.do(b, "GET", "", ""); r.Status != 410 || r.Token == c.token {
		t.Fatalf("GET: %s", r.body)
	}
}

func TestLPForwardWire(t *testing.T) {
	f := &lpForward{id: 1<<63 + 5, wait: 1500 * time.Millisecond, flags: lpFlagNDJSON, sid: newLPID(), from: "node-ä", mount: "/socket", body: []byte("a\nb")}
	g, ok := lpUnmarshalForward(f.marshal())
	if !ok || g.id != f.id || g.wait != f.wait || g.flags != f.flags || g.sid != f.sid || g.from != f.from || g.mount != f.mount || string(g.body) != "a\nb" {
		t.Fatalf("round trip: %+v %v", g, ok)
	}
	p := f.marshal()
	for n := range len(p) - len(f.body) {
		if _, ok := lpUnmarshalForward(p[:n]); ok {
			t.Fatalf("truncated to %d bytes: accepted", n)
		}
	}
}

// TestLongPollClusterNodeClient runs phoenix.js's LongPoll through a
// round-robin proxy in front of two nodes: every request goes to the other
// node than the one before.
func TestLongPollClusterNodeClient(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		lpcSkip(t, "node is not installed")
	}
	if _, err := os.Stat("node_modules/phoenix/package.json"); err != nil {
		lpcSkip(t, "node_modules/phoenix is missing (make js)")
	}
	leakcheck.Check(t)
	nodes := lpcCluster(t, 2, 2*time.Second)
	var targets []*url.URL
	for _, nd := range nodes {
		u, _ := url.Parse(nd.srv.URL)
		targets = append(targets, u)
	}
	var next atomic.Uint64
	var hits [2]atomic.Int64
	tr := &http.Transport{}
	proxy := &httputil.ReverseProxy{
		Transport: tr,
		ErrorLog:  log.New(io.Discard, "", 0), // aborted polls
		Rewrite: func(pr *httputil.ProxyRequest) {
			i := next.Add(1) % 2
			hits[i].Add(1)
			pr.SetURL(targets[i])
		},
	}
	front := httptest.NewServer(proxy)
	defer func() {
		front.Close()
		tr.CloseIdleConnections()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "longpoll", "basic.mjs"), "ws"+strings.TrimPrefix(front.URL, "http")+"/socket")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	defer func() {
		cancel()
		for range lines {
		}
		cmd.Wait()
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case got, ok := <-lines:
			if !ok {
				t.Fatalf("script ended before %s; stderr:\n%s", want, stderr.String())
			}
			if got != want {
				t.Fatalf("script:\nwant %s\ngot  %s\nstderr:\n%s", want, got, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("script: no %s in time; stderr:\n%s", want, stderr.String())
		}
	}
	expect(`joined`)
	expect(`{"ping":{"status":"ok","response":{"a":1}}}`)
	expect(`{"whoami":{"status":"ok","response":{"auth":"tok-js","transport":"longpoll","x":""}}}`)
	expect(`{"bin":{"status":"ok","response":{"bytes":"[1 2 3 250]","size":4}}}`)
	expect(`{"shout":"ok","shouted":{"m":"hi"}}`)
	expect(`ready for news`)
	if err := nodes[1].ep.Broadcast(context.Background(), "room:js", "news", map[string]string{"from": "go"}); err != nil {
		t.Fatal(err)
	}
	expect(`{"news":{"from":"go"}}`)
	expect(`ready for disconnect`)
	if err := nodes[0].ep.Disconnect(context.Background(), "user:js1"); err != nil {
		t.Fatal(err)
	}
	expect(`{"close":3410}`)
	expect(`rejoined`)
	expect(`{"ping":{"status":"ok","response":{"b":2}}}`)
	expect(`{"close":1005}`)
	expect(`done`)
	for line := range lines {
		t.Errorf("script: unexpected line %s", line)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("script: %v; stderr:\n%s", err, stderr.String())
	}
	if hits[0].Load() < 5 || hits[1].Load() < 5 {
		t.Fatalf("requests per node: %d, %d", hits[0].Load(), hits[1].Load())
	}
}

func lpcSkip(t *testing.T, reason string) {
	t.Helper()
	testenv.SkipOrFail(t, reason)
}
