package plume_test

import (
	"context"
	"io"
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

// The helpers below are for protocol_test.go and friends: frames byte for
// byte, control frames, and handshakes that fail.

// expectBinary reads the next frame and requires a binary frame equal to want.
func (c *rawClient) expectBinary(want []byte) {
	c.t.Helper()
	f, err := c.read(2 * time.Second)
	if err != nil {
		c.t.Fatalf("want binary %x, got error %v", want, err)
	}
	if f.binary == nil || string(f.binary) != string(want) {
		c.t.Fatalf("\nwant binary %x\ngot  binary %x (text %s close %d)", want, f.binary, f.text, f.close)
	}
}

// sendFrame writes one masked client frame with any opcode and FIN bit.
func (c *rawClient) sendFrame(op ws.OpCode, fin bool, payload []byte) {
	c.t.Helper()
	fr := ws.NewFrame(op, fin, append([]byte(nil), payload...))
	if err := ws.WriteFrame(c.nc, ws.MaskFrame(fr)); err != nil {
		c.t.Fatalf("send frame: %v", err)
	}
}

// readFrame reads the next frame of any kind, control frames included.
func (c *rawClient) readFrame(timeout time.Duration) (ws.OpCode, []byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	h, err := ws.ReadHeader(c.nc)
	if err != nil {
		return 0, nil, err
	}
	payload := make([]byte, h.Length)
	if _, err := ioReadFull(c.nc, payload); err != nil {
		return 0, nil, err
	}
	return h.OpCode, payload, nil
}

// handshake is the outcome of an upgrade request made with plain net/http.
type handshake struct {
	status int
	header http.Header
	body   string
}

// tryUpgrade sends a WebSocket upgrade request and reports the response; a
// 101 connection is closed at once.
func tryUpgrade(t testing.TB, srv *httptest.Server, query string, hdr http.Header) handshake {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/socket/websocket?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("upgrade request: %v", err)
	}
	defer resp.Body.Close()
	hs := handshake{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		hs.body = string(b)
	}
	return hs
}
