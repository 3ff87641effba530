package client_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/plumehq/plume/client"
	"github.com/plumehq/plume/internal/leakcheck"
)

// phoenix.js 1.8.16 reconnects after every close it did not ask for,
// whatever the code: servers, proxies and load balancers close with 1000
// too.
func TestServerNormalCloseReconnects(t *testing.T) {
	leakcheck.Check(t)
	rs := newRawServer(t)
	s := newSocket(t, rs.url(), &client.Options{ReconnectAfter: func(int) time.Duration { return 5 * time.Millisecond }})
	closes := make(chan client.CloseEvent, 4)
	s.OnClose(func(e client.CloseEvent) { closes <- e })
	go s.Connect(context.Background())
	c := rs.accept()
	c.wmu.Lock()
	ws.WriteFrame(c.nc, ws.NewCloseFrame(ws.NewCloseFrameBody(1000, "bye")))
	c.wmu.Unlock()
	if e := recv(t, closes, "close"); e.Code != 1000 || e.Reason != "bye" || !e.WasClean {
		t.Fatalf("close %+v", e)
	}
	c.waitClosed()
	rs.accept()
}

func TestURLFuncMovesToAnotherServer(t *testing.T) {
	leakcheck.Check(t)
	a, b := newRawServer(t), newRawServer(t)
	var n atomic.Int32
	s := newSocket(t, "", &client.Options{
		URL: func() string {
			if n.Add(1) == 1 {
				return a.url()
			}
			return b.url()
		},
		ReconnectAfter: func(int) time.Duration { return 5 * time.Millisecond },
	})
	go s.Connect(context.Background())
	ca := a.accept()
	ca.nc.Close() // the node goes away without a close frame
	b.accept()
}

func TestFragmentsPingsAndLimits(t *testing.T) {
	leakcheck.Check(t)
	rs := newRawServer(t)
	s := newSocket(t, rs.url(), &client.Options{MaxMessageSize: 1000})
	got := make(chan string, 4)
	s.OnMessage(func(m client.Message) { got <- m.Event + " " + string(m.Payload) })
	closes := make(chan client.CloseEvent, 4)
	s.OnClose(func(e client.CloseEvent) { closes <- e })
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	c := rs.accept()
	c.wmu.Lock()
	// A ping between the fragments of a message.
	msg := []byte(`[null,null,"room:f","frag",{"x":"` + strings.Repeat("y", 200) + `"}]`)
	ws.WriteFrame(c.nc, ws.NewFrame(ws.OpText, false, msg[:50]))
	ws.WriteFrame(c.nc, ws.NewPingFrame([]byte("hi")))
	ws.WriteFrame(c.nc, ws.NewFrame(ws.OpContinuation, true, msg[50:]))
	c.wmu.Unlock()
	if g := recv(t, got, "fragmented message"); g != `frag {"x":"`+strings.Repeat("y", 200)+`"}` {
		t.Fatalf("got %s", g)
	}
	// A message over MaxMessageSize closes the connection with 1009.
	c.send(`[null,null,"room:f","big",{"x":"` + strings.Repeat("z", 2000) + `"}]`)
	if e := recv(t, closes, "close"); e.Code != 1009 {
		t.Fatalf("close %+v", e)
	}
	select {
	case g := <-got:
		t.Fatalf("oversized message delivered: %.40s", g)
	default:
	}
}

func TestPingNotConnected(t *testing.T) {
	leakcheck.Check(t)
	s := client.NewSocket("ws://127.0.0.1:1/socket", nil)
	defer s.Close()
	if _, err := s.Ping(context.Background()); err != client.ErrNotConnected {
		t.Fatalf("ping: %v", err)
	}
}

func TestConnectContextAndDialErrors(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// An already-done context returns at once, and the socket still
	// connects in the background.
	if err := s.Connect(ctx); err != nil && err != context.Canceled {
		t.Fatalf("connect: %v", err)
	}
	waitFor(t, "open", s.IsConnected)

	bad := newSocket(t, "ftp://example.com/socket", nil)
	if err := bad.Connect(ctxT(t)); err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Fatalf("connect: %v", err)
	}
	bad.Close()
	if err := bad.Connect(ctxT(t)); err != client.ErrClosed {
		t.Fatalf("connect after close: %v", err)
	}
}

func TestCloseFromHandler(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := client.NewSocket(ts.url(), nil)
	done := make(chan error, 1)
	s.OnOpen(func() { done <- s.Close() })
	go s.Connect(context.Background())
	if err := recv(t, done, "close from handler"); err != nil {
		t.Fatal(err)
	}
}

func Example() {
	// A Plume or Phoenix endpoint; here the test server of this package.
	ts := newExampleServer()
	defer ts.Close()

	ctx := context.Background()
	sock := client.NewSocket(ts.url, &client.Options{
		Params: func() map[string]any { return map[string]any{"user": "ana"} },
	})
	defer sock.Close()
	if err := sock.Connect(ctx); err != nil {
		fmt.Println("connect:", err)
		return
	}
	ch := sock.Channel("room:lobby", map[string]any{"nick": "ana"})
	if _, err := ch.Join(ctx); err != nil {
		fmt.Println("join:", err)
		return
	}
	reply, err := ch.Push(ctx, "echo", map[string]string{"body": "hello"})
	if err != nil {
		fmt.Println("push:", err)
		return
	}
	fmt.Println(reply.Status, string(reply.Response))
	// Output: ok {"body":"hello"}
}
