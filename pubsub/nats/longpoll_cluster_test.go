package nats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/pubsub"
	"github.com/plumehq/plume/pubsub/nats"
)

// lpRoom is the test channel: ping echoes, shout broadcasts "shouted".
type lpRoom struct{}

func (lpRoom) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) { return nil, nil }

func (lpRoom) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	switch event {
	case "ping":
		return plume.ReplyOK(p), nil
	case "shout":
		return plume.ReplyOK(nil), ch.Broadcast("shouted", p)
	}
	return plume.ReplyError(map[string]string{"reason": "unknown event"}), nil
}

type lpResp struct {
	body     string
	Status   int      `json:"status"`
	Token    string   `json:"token"`
	Messages []string `json:"messages"`
}

// TestLongPollAcrossNodes: a long-poll session opened on one node is used
// only through another, the two joined by NATS: join, pushes with replies,
// and broadcasts (from the channel, and from the other node's endpoint)
// all travel through polls that land on the node without the session.
func TestLongPollAcrossNodes(t *testing.T) {
	leakcheck.Check(t)
	ns := embedded(t, -1)
	t.Cleanup(func() { // after the nodes' cleanups
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	secret := []byte("0123456789abcdef0123456789abcdef")
	type node struct {
		nc  *natsgo.Conn
		ps  *pubsub.PubSub
		ep  *plume.Endpoint
		srv *httptest.Server
	}
	start := func(name string) *node {
		nc, err := natsgo.Connect(ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		a, err := nats.New(nats.Options{Conn: nc, NodeName: name, Prefix: "lp"})
		if err != nil {
			t.Fatal(err)
		}
		ps, err := pubsub.New(pubsub.Options{Adapter: a})
		if err != nil {
			t.Fatal(err)
		}
		// The node's direct subject is subscribed once the server has
		// answered a ping.
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		ep := plume.NewEndpoint(plume.Options{PubSub: ps, LongPollSecret: secret})
		sock := &plume.Socket{LongPollWindow: 2 * time.Second}
		sock.Channel("room:*", func() plume.ChannelHandler { return lpRoom{} })
		ep.Mount("/socket", sock)
		n := &node{nc: nc, ps: ps, ep: ep, srv: httptest.NewServer(ep)}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := ep.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			n.srv.Close()
			n.srv.Client().CloseIdleConnections()
			ps.Close()
			nc.Close()
		})
		return n
	}
	a, b := start("node-a"), start("node-b")

	token := ""
	do := func(n *node, method, body string) lpResp {
		t.Helper()
		u := n.srv.URL + "/socket/longpoll?vsn=2.0.0"
		if token != "" {
			u += "&token=" + url.QueryEscape(token)
		}
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		hc := &http.Client{Timeout: 10 * time.Second, Transport: n.srv.Client().Transport}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		r := lpResp{body: string(raw)}
		if err := json.Unmarshal(raw, &r); err != nil || res.StatusCode != 200 {
			t.Fatalf("%s: HTTP %d %q", method, res.StatusCode, raw)
		}
		return r
	}
	post := func(n *node, lines ...string) {
		t.Helper()
		if r := do(n, "POST", strings.Join(lines, "\n")); r.body != `{"status":200}` {
			t.Fatalf("POST: %s", r.body)
		}
	}
	expect := func(n *node, want ...string) {
		t.Helper()
		var got []string
		deadline := time.Now().Add(5 * time.Second)
		for len(got) < len(want) && time.Now().Before(deadline) {
			r := do(n, "GET", "")
			if r.Status != 200 && r.Status != 204 {
				t.Fatalf("poll: %s (after %q)", r.body, got)
			}
			got = append(got, r.Messages...)
			token = r.Token
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("messages:\nwant %q\ngot  %q", want, got)
		}
	}
	reply := func(ref, response string) string {
		return fmt.Sprintf(`["1","%s","room:1","phx_reply",{"response":%s,"status":"ok"}]`, ref, response)
	}

	r := do(a, "GET", "")
	if r.Status != 410 || r.Token == "" {
		t.Fatalf("open: %s", r.body)
	}
	token = r.Token
	post(b, `["1","1","room:1","phx_join",{}]`)
	expect(b, reply("1", "{}"))
	post(b, `["1","2","room:1","ping",{"n":2}]`, `["1","3","room:1","shout",{"m":"hi"}]`)
	expect(b, reply("2", `{"n":2}`), `[null,null,"room:1","shouted",{"m":"hi"}]`, reply("3", "{}"))
	// A broadcast from node b's endpoint reaches the channel on node a
	// through NATS (once node a's subscription to room:1 is in place), and
	// comes back to the client through a poll on node b.
	if err := a.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.ep.Broadcast(context.Background(), "room:1", "news", map[string]string{"from": "b"}); err != nil {
		t.Fatal(err)
	}
	expect(b, `[null,null,"room:1","news",{"from":"b"}]`)
	if a.ep.Connections() != 1 || b.ep.Connections() != 0 {
		t.Fatalf("connections: a %d, b %d", a.ep.Connections(), b.ep.Connections())
	}
}
