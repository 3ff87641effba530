package plume_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/plumehq/plume"
)

type lpLobby struct{}

func (lpLobby) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	return map[string]string{"welcome": topic}, nil
}

// A long-poll client speaks plain HTTP to <mount>/longpoll: a GET opens a
// session (status 410 with its token), POSTs carry frames, and GETs collect
// what the server sent. phoenix.js's LongPoll transport does exactly this.
func ExampleSocket_longPoll() {
	sock := &plume.Socket{LongPollWindow: 5 * time.Second}
	sock.Channel("room:*", func() plume.ChannelHandler { return lpLobby{} })
	ep := plume.NewEndpoint(plume.Options{})
	ep.Mount("/socket", sock)
	srv := httptest.NewServer(ep)
	defer srv.Close()
	defer ep.Shutdown(context.Background())

	var reply struct {
		Status   int      `json:"status"`
		Token    string   `json:"token"`
		Messages []string `json:"messages"`
	}
	res, _ := http.Get(srv.URL + "/socket/longpoll?vsn=2.0.0")
	json.NewDecoder(res.Body).Decode(&reply)
	res.Body.Close()
	fmt.Println("open:", reply.Status)

	session := srv.URL + "/socket/longpoll?vsn=2.0.0&token=" + reply.Token
	res, _ = http.Post(session, "application/x-ndjson", strings.NewReader(`["1","1","room:lobby","phx_join",{}]`))
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println("post:", string(body))

	res, _ = http.Get(session)
	json.NewDecoder(res.Body).Decode(&reply)
	res.Body.Close()
	fmt.Println("poll:", reply.Status, reply.Messages)
	// Output:
	// open: 410
	// post: {"status":200}
	// poll: 200 [["1","1","room:lobby","phx_reply",{"response":{"welcome":"room:lobby"},"status":"ok"}]]
}
