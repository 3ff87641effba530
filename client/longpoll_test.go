package client_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/plumehq/plume/client"
	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/wire"
)

func TestLongPoll(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), &client.Options{
		Transport: client.TransportLongPoll,
		Params: func() map[string]any {
			return map[string]any{"id": "lp:1", "user": map[string]any{"name": "lp user"}}
		},
		AuthToken:      func() string { return "secret token" },
		ReconnectAfter: func(int) time.Duration { return 10 * time.Millisecond },
	})
	opens := make(chan struct{}, 4)
	s.OnOpen(func() { opens <- struct{}{} })
	closes := make(chan client.CloseEvent, 4)
	s.OnClose(func(e client.CloseEvent) { closes <- e })
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	recv(t, opens, "open")
	ch := s.Channel("room:lp", map[string]int{"a": 1})
	got := make(chan string, 4)
	ch.On("shout", func(m client.Message) { got <- string(m.Payload) })
	r, err := ch.Join(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if resp := mustJSON(t, r.Response); resp["user_name"] != "lp user" || resp["token"] != "secret token" {
		t.Fatalf("join reply %v", resp)
	}
	// Several pushes in flight share POSTs.
	errs := make(chan error, 5)
	for i := range 5 {
		go func() {
			r, err := ch.Push(ctxT(t), "echo", map[string]int{"i": i})
			if err == nil && !r.OK() {
				err = errors.New(r.String())
			}
			errs <- err
		}()
	}
	for range 5 {
		if err := recv(t, errs, "push"); err != nil {
			t.Fatal(err)
		}
	}
	// Binary goes up as base64 lines.
	r, err = ch.Push(ctxT(t), "bin_info", client.Binary{1, 2, 250})
	if err != nil || string(r.Response) != `{"binary":true,"bytes":"AQL6"}` {
		t.Fatalf("binary push: %v %v", err, r)
	}
	if err := ts.ep.Broadcast(ctxT(t), "room:lp", "shout", map[string]string{"to": "all"}); err != nil {
		t.Fatal(err)
	}
	if g := recv(t, got, "broadcast"); g != `{"to":"all"}` {
		t.Fatalf("got %s", g)
	}

	// The server ends the session: the next poll gets 410, the socket
	// reconnects and the channel rejoins with a new join ref.
	first := ch.JoinRef()
	if err := ts.ep.Disconnect(ctxT(t), "lp:1"); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, closes, "close"); e.Code != 3410 {
		t.Fatalf("close %+v, want 3410 session_gone", e)
	}
	recv(t, opens, "reopen")
	waitFor(t, "rejoined", func() bool { return ch.State() == client.StateJoined && ch.JoinRef() != first })
	if r, err := ch.Push(ctxT(t), "echo", map[string]int{"after": 1}); err != nil || !r.OK() {
		t.Fatalf("push after rejoin: %v %v", err, r)
	}
}

func TestLongPollV1AndRefusal(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), &client.Options{Transport: client.TransportLongPoll, Serializer: wire.V1})
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ch := s.Channel("room:lp1", nil)
	if _, err := ch.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if r, err := ch.Push(ctxT(t), "echo", map[string]int{"v": 1}); err != nil || string(r.Response) != `{"v":1}` {
		t.Fatalf("V1 push: %v %v", err, r)
	}
	s.Close()

	bad := newSocket(t, ts.url(), &client.Options{Transport: client.TransportLongPoll, AuthToken: func() string { return "wrong" }})
	err := bad.Connect(ctxT(t))
	var he *client.HandshakeError
	if !errors.As(err, &he) || he.Status != 403 {
		t.Fatalf("connect: %v, want 403", err)
	}
	if !strings.Contains(err.Error(), "403") {
		t.Fatal(err)
	}
}
