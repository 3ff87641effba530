package broadcastapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/broadcastapi"
	"github.com/plumehq/plume/pubsub"
)

// A service broadcasts to the clients of a Plume server over HTTP.
func Example() {
	// The Plume server: sockets at /socket, the broadcast API beside them.
	ep := plume.NewEndpoint(plume.Options{})
	mux := http.NewServeMux()
	mux.Handle("/socket/", ep)
	mux.Handle("/api/broadcast", broadcastapi.New(ep, broadcastapi.Options{Secret: "change-me-to-32-random-bytes...."}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Stand-in for a joined channel: print what reaches room:lobby.
	ep.PubSub().Subscribe("room:lobby", pubsub.Func(func(m *pubsub.Message) {
		fmt.Printf("%s %s %s\n", m.Topic, m.Event, m.Payload)
	}))

	// Another service, which knows only the URL and the secret.
	c := &broadcastapi.Client{URL: srv.URL + "/api/broadcast", Secret: "change-me-to-32-random-bytes...."}
	err := c.Broadcast(context.Background(), "room:lobby", "new_msg", map[string]string{"body": "hello"})
	fmt.Println("error:", err)

	err = c.Broadcast(context.Background(), "", "new_msg", nil)
	fmt.Println("error:", err)
	// Output:
	// room:lobby new_msg {"body":"hello"}
	// error: <nil>
	// error: broadcastapi: HTTP 422: topic is empty
}
