package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/client"
	"github.com/plumehq/plume/presence"
)

type exampleServer struct {
	*httptest.Server
	url string
	tr  *presence.Tracker
}

func (s *exampleServer) Close() {
	s.Server.Close()
	s.tr.Close()
}

// newExampleServer serves a "room:*" channel that echoes "echo" and does
// presence the Phoenix way.
func newExampleServer() *exampleServer {
	ep := plume.NewEndpoint(plume.Options{})
	tr := presence.New(ep, presence.Options{})
	sock := &plume.Socket{Connect: func(ctx context.Context, c *plume.Conn) error {
		c.Assign("user", c.Params.String("user"))
		return nil
	}}
	sock.Channel("room:*", func() plume.ChannelHandler { return &exampleRoom{presenceRoom{tr: tr}} })
	ep.Mount("/socket", sock)
	srv := httptest.NewServer(ep)
	return &exampleServer{Server: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket", tr: tr}
}

type exampleRoom struct{ presenceRoom }

func (r *exampleRoom) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	if event == "echo" {
		return plume.ReplyOK(p), nil
	}
	return r.presenceRoom.HandleIn(ch, event, p)
}

func ExamplePresence() {
	ts := newExampleServer()
	defer ts.Close()
	ctx := context.Background()

	sock := client.NewSocket(ts.url, &client.Options{
		Params: func() map[string]any { return map[string]any{"user": "ana"} },
	})
	defer sock.Close()
	sock.Connect(ctx)
	ch := sock.Channel("room:lobby", nil)
	p := client.NewPresence(ch, nil)
	// Callbacks run in order on the socket's callback goroutine.
	lines := make(chan string, 8)
	p.OnJoin(func(key string, current, joined *client.PresenceEntry) {
		lines <- fmt.Sprintf("%s joined (%d meta)", key, len(joined.Metas))
	})
	p.OnSync(func() { lines <- fmt.Sprint("synced: ", p.Keys()) })
	ch.Join(ctx)
	for range 3 { // the state (nobody yet), then the diff of our own join
		fmt.Println(<-lines)
	}
	// Output:
	// synced: []
	// ana joined (1 meta)
	// synced: [ana]
}

func ExampleChannel_Push_binary() {
	ts := newExampleServer()
	defer ts.Close()
	ctx := context.Background()

	sock := client.NewSocket(ts.url, nil)
	defer sock.Close()
	sock.Connect(ctx)
	ch := sock.Channel("room:bin", nil)
	ch.Join(ctx)
	// A Binary payload travels in a binary frame, and a binary reply
	// arrives with Reply.Binary set.
	reply, err := ch.Push(ctx, "echo", client.Binary{1, 2, 3})
	fmt.Println(reply.Status, reply.Binary, reply.Response, err)
	// Output: ok true [1 2 3] <nil>
}
