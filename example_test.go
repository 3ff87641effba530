package plume_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/client"
)

// Room is a channel: one value per joined topic per connection, so its
// fields need no locks.
type Room struct {
	messages int
}

// Join admits everyone and replies with a greeting.
func (r *Room) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	if p.Map()["user"] == nil {
		return nil, plume.RefuseJoin(map[string]string{"reason": "who are you?"})
	}
	return map[string]string{"welcome": topic}, nil
}

// HandleIn handles "shout" by broadcasting it to everyone on the topic.
func (r *Room) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	switch event {
	case "shout":
		r.messages++
		if err := ch.Broadcast("shout", p); err != nil {
			return plume.ReplyError(map[string]string{"reason": err.Error()}), nil
		}
		return plume.ReplyOK(map[string]int{"count": r.messages}), nil
	}
	return plume.ReplyError(map[string]string{"reason": "unknown event"}), nil
}

// Example serves a channel and talks to it with the Go client, which
// behaves as phoenix.js does.
func Example() {
	sock := &plume.Socket{}
	sock.Channel("room:*", func() plume.ChannelHandler { return &Room{} })
	ep := plume.NewEndpoint(plume.Options{})
	ep.Mount("/socket", sock)
	srv := httptest.NewServer(ep) // or http.ListenAndServe(addr, ep)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := client.NewSocket("ws"+strings.TrimPrefix(srv.URL, "http")+"/socket", nil)
	defer s.Close()
	if err := s.Connect(ctx); err != nil {
		panic(err)
	}

	refused, err := s.Channel("room:lobby", nil).Join(ctx)
	fmt.Println(refused.Status, string(refused.Response), err != nil)

	room := s.Channel("room:lobby", map[string]string{"user": "ann"})
	shouts := make(chan string, 1)
	room.On("shout", func(m client.Message) { shouts <- string(m.Payload) })
	joined, _ := room.Join(ctx)
	fmt.Println(joined.Status, string(joined.Response))

	reply, _ := room.Push(ctx, "shout", map[string]string{"body": "hi"})
	fmt.Println(reply.Status, string(reply.Response))
	fmt.Println("broadcast:", <-shouts)
	// Output:
	// error {"reason":"who are you?"} true
	// ok {"welcome":"room:lobby"}
	// ok {"count":1}
	// broadcast: {"body":"hi"}
}

// ExampleEndpoint_Broadcast sends to every client on a topic from any
// goroutine, as Endpoint.broadcast/3 does.
func ExampleEndpoint_Broadcast() {
	ep := plume.NewEndpoint(plume.Options{})
	go func() {
		err := ep.Broadcast(context.Background(), "room:lobby", "notice", map[string]string{"text": "maintenance at noon"})
		fmt.Println(err)
	}()
	time.Sleep(10 * time.Millisecond)
	// A payload that is not a JSON object is refused, as Phoenix does.
	fmt.Println(ep.Broadcast(context.Background(), "room:lobby", "notice", "just a string"))
	// Output:
	// <nil>
	// plume: push and broadcast payloads must be a JSON object or binary
}
