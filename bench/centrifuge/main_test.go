package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// client is a raw protocol-v2 JSON client, as plume bench speaks it.
type client struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, url string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, br, _, err := ws.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if br == nil {
		br = bufio.NewReader(nc)
	}
	return &client{t: t, nc: nc, br: br}
}

// readWriter reads what the handshake left buffered, then the socket.
type readWriter struct {
	io.Reader
	io.Writer
}

func (c *client) send(s string) {
	c.t.Helper()
	if err := wsutil.WriteClientText(c.nc, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// await reads frames until one contains want, and returns it.
func (c *client) await(want string) string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		b, err := wsutil.ReadServerText(readWriter{c.br, c.nc})
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", want, err)
		}
		if strings.Contains(string(b), want) {
			return string(b)
		}
	}
}

func TestServer(t *testing.T) {
	node, h, err := newServer(options{queueBytes: 8 << 20, readBuffer: 1024, writeBufferPool: true, writeTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		node.Shutdown(ctx)
	})
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	// Anonymous connect, subscribe to any channel, publish from another
	// (unsubscribed) connection: the publication is pushed to subscribers.
	sub := dial(t, url)
	sub.send(`{"id":1,"connect":{}}` + "\n" + `{"id":2,"subscribe":{"channel":"bench:0"}}`)
	sub.await(`{"id":2,"subscribe":{}}`)
	pub := dial(t, url)
	pub.send(`{"id":1,"connect":{}}`)
	pub.await(`{"id":1,"connect":`)
	pub.send(`{"id":1,"publish":{"channel":"bench:0","data":{"p":"00001"}}}`)
	pub.await(`{"id":1,"publish":{}}`)
	sub.await(`{"push":{"channel":"bench:0","pub":{"data":{"p":"00001"}}}}`)

	// Presence channels: the connect data names the user, join pushes and
	// the presence command carry it.
	a := dial(t, url)
	a.send(`{"id":1,"connect":{"data":{"user":"u000001"}}}` + "\n" + `{"id":2,"subscribe":{"channel":"presence:0"}}`)
	a.await(`"join":{"info":{"user":"u000001"`)
	b := dial(t, url)
	b.send(`{"id":1,"connect":{"data":{"user":"u000002"}}}` + "\n" + `{"id":2,"subscribe":{"channel":"presence:0"}}`)
	a.await(`"join":{"info":{"user":"u000002"`)
	b.send(`{"id":3,"presence":{"channel":"presence:0"}}`)
	list := b.await(`{"id":3,"presence":`)
	if !strings.Contains(list, `"user":"u000001"`) || !strings.Contains(list, `"user":"u000002"`) {
		t.Fatalf("presence %s", list)
	}
}
