package plume_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/plumehq/plume/internal/testenv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/telemetry"
)

// codeErr is a Connect error that picks its own close code.
type codeErr int

func (c codeErr) Error() string  { return fmt.Sprintf("code %d", int(c)) }
func (c codeErr) CloseCode() int { return int(c) }

// refusingServer serves a socket with RefuseWithClose whose Connect returns
// the error named by the "refuse" param (nil when absent).
func refusingServer(t *testing.T, refuse map[string]error, opts plume.Options) *httptest.Server {
	t.Helper()
	sock := &plume.Socket{
		RefuseWithClose: true,
		Connect: func(ctx context.Context, c *plume.Conn) error {
			name, _ := c.Params["refuse"].(string)
			if name == "panic" {
				panic("boom")
			}
			return refuse[name]
		},
	}
	sock.Channel("room:*", func() plume.ChannelHandler { return guardedRoom{} })
	ep := plume.NewEndpoint(opts)
	ep.Mount("/socket", sock)
	srv := httptest.NewServer(ep)
	t.Cleanup(srv.Close)
	return srv
}

// dialKeep dials like dialRaw but keeps the bytes that arrived right
// behind the handshake response: a refused connection's close frame does.
func dialKeep(t *testing.T, srv *httptest.Server, query string) *rawClient {
	t.Helper()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket/websocket?" + query
	nc, br, _, err := ws.Dialer{Timeout: 5 * time.Second}.Dial(context.Background(), url)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if br != nil {
		nc = &bufConn{Conn: nc, r: io.MultiReader(br, nc)}
	}
	return &rawClient{t: t, nc: nc}
}

type bufConn struct {
	net.Conn
	r io.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// readClose reads frames until a close frame and returns its code and reason.
func readClose(t *testing.T, c *rawClient) (int, string) {
	t.Helper()
	for {
		op, payload, err := c.readFrame(3 * time.Second)
		if err != nil {
			t.Fatalf("want a close frame, got error %v", err)
		}
		if op != ws.OpClose {
			t.Fatalf("want a close frame, got opcode %v %q", op, payload)
		}
		if len(payload) < 2 {
			t.Fatalf("close frame without code: %x", payload)
		}
		return int(binary.BigEndian.Uint16(payload)), string(payload[2:])
	}
}

func TestRefuseWithCloseCodes(t *testing.T) {
	leakcheck.Check(t)
	long := strings.Repeat("é", 100) // 200 bytes: cut to at most 123
	refuse := map[string]error{
		"unauthorized": fmt.Errorf("token expired: %w", plume.ErrUnauthorized),
		"bare":         plume.ErrUnauthorized,
		"banned":       errors.New("banned"),
		"refused":      plume.ErrRefused,
		"custom":       &plume.CloseError{Code: 4429, Reason: "too many connections"},
		"wrapped":      fmt.Errorf("limit: %w", &plume.CloseError{Code: 4000, Reason: "busy"}),
		"coder":        codeErr(3001),
		"badcode":      codeErr(1000),
		"toohigh":      codeErr(5000),
		"long":         errors.New(long),
		"control":      errors.New("line one\nline\ttwo\x00"),
	}
	srv := refusingServer(t, refuse, plume.Options{})
	cases := []struct {
		name   string
		code   int
		reason string
	}{
		{"unauthorized", plume.CloseUnauthorized, "token expired: unauthorized"},
		{"bare", 4401, "unauthorized"},
		{"banned", plume.CloseForbidden, "banned"},
		{"refused", 4403, "plume: connection refused"},
		{"custom", 4429, "too many connections"},
		{"wrapped", 4000, "limit: busy"},
		{"coder", 3001, "code 3001"},
		{"badcode", 4403, "code 1000"},
		{"toohigh", 4403, "code 5000"},
		{"long", 4403, strings.Repeat("é", 61)},
		{"control", 4403, "line one line two"},
		{"panic", 4403, "connect panicked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialKeep(t, srv, "vsn=2.0.0&refuse="+tc.name)
			defer c.Close()
			code, reason := readClose(t, c)
			if code != tc.code || reason != tc.reason {
				t.Fatalf("close %d %q, want %d %q", code, reason, tc.code, tc.reason)
			}
			if len(reason) > 123 || !utf8.ValidString(reason) {
				t.Fatalf("reason of %d bytes, valid UTF-8 %v", len(reason), utf8.ValidString(reason))
			}
			// Answer the close: the server then drops the connection.
			c.sendFrame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusCode(code), ""))
			if _, _, err := c.readFrame(3 * time.Second); err == nil {
				t.Fatal("connection still open after the close handshake")
			}
		})
	}
}

func TestRefuseWithCloseSendsCloseEvenIfClientWrites(t *testing.T) {
	leakcheck.Check(t)
	srv := refusingServer(t, map[string]error{"banned": errors.New("banned")}, plume.Options{})
	c := dialKeep(t, srv, "vsn=2.0.0&refuse=banned")
	defer c.Close()
	// phoenix.js sends its join as soon as the socket opens: the server
	// must skip it, not treat it as the close answer.
	c.send(`["1","1","room:a","phx_join",{}]`)
	code, reason := readClose(t, c)
	if code != 4403 || reason != "banned" {
		t.Fatalf("close %d %q", code, reason)
	}
	c.sendFrame(ws.OpClose, true, ws.NewCloseFrameBody(4403, ""))
	if _, _, err := c.readFrame(3 * time.Second); err == nil {
		t.Fatal("connection still open after the close handshake")
	}
}

func TestRefuseWithCloseKeeps403ForOriginAndVsn(t *testing.T) {
	leakcheck.Check(t)
	events := &eventLog{}
	srv := refusingServer(t, map[string]error{"banned": errors.New("banned")}, plume.Options{Telemetry: events})
	if hs := tryUpgrade(t, srv, "vsn=9.9.9", nil); hs.status != http.StatusForbidden {
		t.Fatalf("bad vsn: status %d, want 403", hs.status)
	}
	if hs := tryUpgrade(t, srv, "vsn=2.0.0", http.Header{"Origin": {"https://evil.example"}}); hs.status != http.StatusForbidden {
		t.Fatalf("bad origin: status %d, want 403", hs.status)
	}
	if hs := tryUpgrade(t, srv, "vsn=2.0.0&refuse=banned", nil); hs.status != http.StatusSwitchingProtocols {
		t.Fatalf("refused connect: status %d, want 101", hs.status)
	}
	if hs := tryUpgrade(t, srv, "vsn=2.0.0", nil); hs.status != http.StatusSwitchingProtocols {
		t.Fatalf("accepted connect: status %d, want 101", hs.status)
	}
	ev := events.wait(t, telemetry.SocketRefused, func(e telemetry.Event) bool { return e.Reason == "connect" })
	if ev.Err == nil || ev.Err.Error() != "banned" {
		t.Fatalf("refused event %+v", ev)
	}
}

func TestRefuseWithCloseOffStays403(t *testing.T) {
	leakcheck.Check(t)
	sock := &plume.Socket{Connect: func(ctx context.Context, c *plume.Conn) error { return plume.ErrUnauthorized }}
	ep := plume.NewEndpoint(plume.Options{})
	ep.Mount("/socket", sock)
	srv := httptest.NewServer(ep)
	defer srv.Close()
	if hs := tryUpgrade(t, srv, "vsn=2.0.0", nil); hs.status != http.StatusForbidden {
		t.Fatalf("status %d, want 403", hs.status)
	}
}

func TestRefuseWithCloseAcceptsGoodConnect(t *testing.T) {
	leakcheck.Check(t)
	srv := refusingServer(t, nil, plume.Options{})
	c := dialRaw(t, srv, "vsn=2.0.0", nil)
	defer c.Close()
	c.send(`["1","1","room:a","phx_join",{"key":"open"}]`)
	c.expect(`["1","1","room:a","phx_reply",{"response":{},"status":"ok"}]`)
}

// refuseScript connects the official phoenix client with the ws transport
// and prints every close and error it sees as JSON lines. On a 4401 it calls
// socket.disconnect(), as a page would, then waits to show that no retry
// follows.
const refuseScript = `
import { Socket } from "phoenix"
import WebSocket from "ws"
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n")
const socket = new Socket(process.argv[1], {
  transport: WebSocket, params: { refuse: process.argv[2] }, reconnectAfterMs: () => 20,
})
let closes = 0
socket.onOpen(() => out({ ev: "open" }))
socket.onClose((e) => {
  closes++
  out({ ev: "close", code: e.code, reason: e.reason })
  if (e.code === 4401) {
    socket.disconnect()
    setTimeout(() => { out({ ev: "done", closes, connected: socket.isConnected() }); process.exit(0) }, 300)
  } else if (closes === 2) {
    socket.disconnect()
    out({ ev: "done", closes, connected: socket.isConnected() })
    process.exit(0)
  }
})
socket.channel("room:a", {}).join()
socket.connect()
setTimeout(() => { out({ ev: "timeout" }); process.exit(1) }, 10000)
`

func requireNodePhoenix(t *testing.T) {
	t.Helper()
	testenv.Node(t)
}

// runRefuseScript runs refuseScript against srv and returns its JSON lines.
func runRefuseScript(t *testing.T, srv *httptest.Server, refuse string) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket"
	cmd := exec.CommandContext(ctx, "node", "--input-type=module", "-e", refuseScript, url, refuse)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestRefuseWithClosePhoenixJS(t *testing.T) {
	requireNodePhoenix(t)
	leakcheck.Check(t)
	var connects atomic.Int32
	sock := &plume.Socket{
		RefuseWithClose: true,
		Connect: func(ctx context.Context, c *plume.Conn) error {
			connects.Add(1)
			switch c.Params["refuse"] {
			case "unauthorized":
				return fmt.Errorf("token expired: %w", plume.ErrUnauthorized)
			case "banned":
				return errors.New("banned")
			}
			return nil
		},
	}
	sock.Channel("room:*", func() plume.ChannelHandler { return guardedRoom{} })
	ep := plume.NewEndpoint(plume.Options{})
	ep.Mount("/socket", sock)
	srv := httptest.NewServer(ep)
	defer srv.Close()

	t.Run("unauthorized stops retrying", func(t *testing.T) {
		connects.Store(0)
		lines := runRefuseScript(t, srv, "unauthorized")
		want := []string{
			`{"ev":"open"}`,
			`{"code":4401,"ev":"close","reason":"token expired: unauthorized"}`,
			`{"closes":1,"connected":false,"ev":"done"}`,
		}
		assertLines(t, lines, want)
		if n := connects.Load(); n != 1 {
			t.Fatalf("%d connect attempts, want 1: disconnect() in onClose must stop the retries", n)
		}
	})
	t.Run("forbidden", func(t *testing.T) {
		connects.Store(0)
		lines := runRefuseScript(t, srv, "banned")
		want := []string{
			`{"ev":"open"}`,
			`{"code":4403,"ev":"close","reason":"banned"}`,
			`{"ev":"open"}`,
			`{"code":4403,"ev":"close","reason":"banned"}`,
			`{"closes":2,"connected":false,"ev":"done"}`,
		}
		assertLines(t, lines, want)
	})
}

func assertLines(t *testing.T, lines []map[string]any, want []string) {
	t.Helper()
	var got []string
	for _, l := range lines {
		b, _ := json.Marshal(l)
		got = append(got, string(b))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("phoenix.js saw:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
