package plume_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// rawClient is a WebSocket client that speaks frames, for tests of what
// phoenix.js never sends.
type rawClient struct {
	t  testing.TB
	nc net.Conn
}

func dialRaw(t testing.TB, srv *httptest.Server, query string, hdr http.Header) *rawClient {
	t.Helper()
	c, err := tryDial(srv, query, hdr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return &rawClient{t: t, nc: c}
}

func tryDial(srv *httptest.Server, query string, hdr http.Header) (net.Conn, error) {
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket/websocket?" + query
	d := ws.Dialer{Timeout: 5 * time.Second}
	if hdr != nil {
		d.Header = ws.HandshakeHeaderHTTP(hdr)
	}
	c, _, _, err := d.Dial(context.Background(), url)
	return c, err
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if err := wsutil.WriteClientText(c.nc, []byte(s)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *rawClient) sendBinary(b []byte) {
	c.t.Helper()
	if err := wsutil.WriteClientBinary(c.nc, b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// frame is one server message or close.
type frame struct {
	text   string
	binary []byte
	close  int
}

func (c *rawClient) read(timeout time.Duration) (frame, error) {
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	for {
		h, err := ws.ReadHeader(c.nc)
		if err != nil {
			return frame{}, err
		}
		payload := make([]byte, h.Length)
		if _, err := ioReadFull(c.nc, payload); err != nil {
			return frame{}, err
		}
		switch h.OpCode {
		case ws.OpText:
			return frame{text: string(payload)}, nil
		case ws.OpBinary:
			return frame{binary: payload}, nil
		case ws.OpClose:
			code := 1005
			if len(payload) >= 2 {
				code = int(payload[0])<<8 | int(payload[1])
			}
			return frame{close: code}, nil
		}
	}
}

// expect reads the next frame and requires it to equal want.
func (c *rawClient) expect(want string) {
	c.t.Helper()
	f, err := c.read(2 * time.Second)
	if err != nil {
		c.t.Fatalf("want %s, got error %v", want, err)
	}
	if f.text != want {
		c.t.Fatalf("\nwant %s\ngot  %s (binary %x close %d)", want, f.text, f.binary, f.close)
	}
}

func (c *rawClient) expectClose(code int) {
	c.t.Helper()
	f, err := c.read(3 * time.Second)
	if err != nil {
		c.t.Fatalf("want close %d, got error %v", code, err)
	}
	if f.close != code {
		c.t.Fatalf("want close %d, got %+v", code, f)
	}
}

func (c *rawClient) expectNothing(d time.Duration) {
	c.t.Helper()
	f, err := c.read(d)
	if err == nil {
		c.t.Fatalf("want nothing, got %+v", f)
	}
}

func (c *rawClient) Close() { c.nc.Close() }
