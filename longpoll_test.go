package plume_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/pubsub"
)

// lpWindow is the long-poll window of most raw HTTP tests: long enough
// that a session never expires between two requests of a test on a loaded
// machine (no test waits for it). Tests of the window itself set a shorter
// one.
const lpWindow = 5 * time.Second

// lpEnv is an endpoint with a long-poll socket behind an httptest.Server.
type lpEnv struct {
	t       *testing.T
	ep      *plume.Endpoint
	srv     *httptest.Server
	reasons chan string // Terminate reasons, "topic reason"
	release chan struct{}
}

// lpRoom is the test channel. Join blocks while the payload has "block";
// HandleIn events: ping (echo), shout (broadcast "shouted"), bin (reports a
// binary payload), binreply (replies binary), whoami (reports assigns).
type lpRoom struct{ env *lpEnv }

func (r *lpRoom) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	m := p.Map()
	if m["block"] != nil {
		<-r.env.release
	}
	if m["refuse"] != nil {
		return nil, plume.RefuseJoin(map[string]string{"reason": "refused"})
	}
	return nil, nil
}

func (r *lpRoom) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	switch event {
	case "ping":
		return plume.ReplyOK(p), nil
	case "shout":
		return plume.ReplyOK(nil), ch.Broadcast("shouted", p)
	case "bin":
		if !p.IsBinary() {
			return plume.ReplyError(map[string]string{"reason": "not binary"}), nil
		}
		return plume.ReplyOK(map[string]any{"size": len(p.Bytes()), "bytes": fmt.Sprint(p.Bytes())}), nil
	case "binreply":
		return plume.ReplyOK(plume.Binary{1, 2, 3}), nil
	case "whoami":
		return plume.ReplyOK(map[string]any{"auth": ch.Assigns["auth"], "x": ch.Assigns["x"], "transport": ch.Conn().TransportName()}), nil
	}
	return plume.ReplyError(map[string]string{"reason": "unknown event"}), nil
}

func (r *lpRoom) Terminate(ch *plume.Channel, reason error) {
	select {
	case r.env.reasons <- ch.Topic() + " " + reason.Error():
	default:
	}
}

// newLPEnv serves sock (with the test channel on "room:*") at /socket. Its
// Connect refuses user=bad, sets the socket id "user:<user>" and assigns the
// auth token and the X-Test header.
func newLPEnv(t *testing.T, sock *plume.Socket, opts plume.Options) *lpEnv {
	t.Helper()
	return newLPEnvWrapped(t, sock, opts, nil)
}

// newLPEnvWrapped is newLPEnv with the endpoint served through wrap.
func newLPEnvWrapped(t *testing.T, sock *plume.Socket, opts plume.Options, wrap func(*plume.Endpoint) http.Handler) *lpEnv {
	t.Helper()
	env := &lpEnv{t: t, reasons: make(chan string, 100), release: make(chan struct{})}
	if sock.LongPollWindow == 0 {
		sock.LongPollWindow = lpWindow
	}
	if sock.Connect == nil {
		sock.Connect = func(ctx context.Context, c *plume.Conn) error {
			user, _ := c.Params["user"].(string)
			if user == "bad" {
				return plume.ErrRefused
			}
			if user != "" {
				c.ID = "user:" + user
			}
			c.Assign("auth", c.Info.AuthToken)
			c.Assign("x", c.Info.XHeaders.Get("X-Test"))
			return nil
		}
	}
	sock.Channel("room:*", func() plume.ChannelHandler { return &lpRoom{env: env} })
	env.ep = plume.NewEndpoint(opts)
	env.ep.Mount("/socket", sock)
	var h http.Handler = env.ep
	if wrap != nil {
		h = wrap(env.ep)
	}
	env.srv = httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := env.ep.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		env.srv.Close()
		env.srv.Client().CloseIdleConnections()
	})
	return env
}

// waitPolls waits until n polls are under way.
func (env *lpEnv) waitPolls(n int) {
	env.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for plume.LongPollPolls(env.ep) != n {
		if time.Now().After(deadline) {
			env.t.Fatalf("want %d polls under way, have %d", n, plume.LongPollPolls(env.ep))
		}
		time.Sleep(time.Millisecond)
	}
}

// waitConnections waits until the endpoint has n connections.
func (env *lpEnv) waitConnections(n int) {
	env.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for env.ep.Connections() != n {
		if time.Now().After(deadline) {
			env.t.Fatalf("want %d connections, have %d", n, env.ep.Connections())
		}
		time.Sleep(time.Millisecond)
	}
}

// expectReason waits for a channel's Terminate.
func (env *lpEnv) expectReason(want string) {
	env.t.Helper()
	select {
	case got := <-env.reasons:
		if got != want {
			env.t.Fatalf("terminate: want %q, got %q", want, got)
		}
	case <-time.After(5 * time.Second):
		env.t.Fatalf("terminate: want %q, got nothing", want)
	}
}

// lpResp is a decoded long-poll reply.
type lpResp struct {
	code     int // HTTP status
	header   http.Header
	body     string
	Status   int       `json:"status"`
	Token    string    `json:"token"`
	Messages *[]string `json:"messages"`
}

func (r lpResp) msgs() []string {
	if r.Messages == nil {
		return nil
	}
	return *r.Messages
}

// lpClient speaks raw HTTP to <srv>/socket/longpoll.
type lpClient struct {
	t     *testing.T
	env   *lpEnv
	query string // without token
	token string
	hdr   http.Header
}

func (env *lpEnv) client(query string) *lpClient {
	return &lpClient{t: env.t, env: env, query: query}
}

func (c *lpClient) url(token string) string {
	u := c.env.srv.URL + "/socket/longpoll?" + c.query
	if token != "" {
		u += "&token=" + url.QueryEscape(token)
	}
	return u
}

func (c *lpClient) do(method, rawURL string, hdr http.Header, body string) lpResp {
	c.t.Helper()
	resp, err := c.try(method, rawURL, hdr, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	return resp
}

func (c *lpClient) try(method, rawURL string, hdr http.Header, body string) (lpResp, error) {
	return c.tryCtx(context.Background(), method, rawURL, hdr, body)
}

func (c *lpClient) tryCtx(ctx context.Context, method, rawURL string, hdr http.Header, body string) (lpResp, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return lpResp{}, err
	}
	for k, v := range c.hdr {
		req.Header[k] = v
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: c.env.srv.Client().Transport}
	res, err := hc.Do(req)
	if err != nil {
		return lpResp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return lpResp{}, err
	}
	out := lpResp{code: res.StatusCode, header: res.Header, body: string(b)}
	if res.Header.Get("Content-Type") == "application/json; charset=utf-8" {
		if err := json.Unmarshal(b, &out); err != nil {
			return out, fmt.Errorf("bad JSON %q: %v", b, err)
		}
	}
	return out, nil
}

// open starts a session and keeps its token.
func (c *lpClient) open() lpResp {
	c.t.Helper()
	r := c.do("GET", c.url(""), nil, "")
	if r.code != 200 || r.Status != 410 || r.Token == "" || r.Messages == nil || len(*r.Messages) != 0 {
		c.t.Fatalf("open: want 200 {status:410,token,messages:[]}, got %d %s", r.code, r.body)
	}
	c.token = r.Token
	return r
}

// get polls with the client's token, taking any token the reply carries.
func (c *lpClient) get() lpResp {
	c.t.Helper()
	r := c.do("GET", c.url(c.token), nil, "")
	if r.code != 200 {
		c.t.Fatalf("GET: HTTP %d %s", r.code, r.body)
	}
	if (r.Status == 200 || r.Status == 204) && r.Token != "" {
		c.token = r.Token
	}
	return r
}

// post sends body with a content type.
func (c *lpClient) post(contentType, body string) lpResp {
	c.t.Helper()
	r := c.do("POST", c.url(c.token), http.Header{"Content-Type": {contentType}}, body)
	if r.code != 200 {
		c.t.Fatalf("POST: HTTP %d %s", r.code, r.body)
	}
	return r
}

func (c *lpClient) postOK(lines ...string) {
	c.t.Helper()
	if r := c.post("application/x-ndjson", strings.Join(lines, "\n")); r.body != `{"status":200}` {
		c.t.Fatalf("POST: want {\"status\":200}, got %s", r.body)
	}
}

func (c *lpClient) expectPostStatus(status int, contentType, body string) {
	c.t.Helper()
	want := fmt.Sprintf(`{"status":%d}`, status)
	if r := c.post(contentType, body); r.body != want {
		c.t.Fatalf("POST: want %s, got %s", want, r.body)
	}
}

// collect polls until n messages have arrived.
func (c *lpClient) collect(n int) []string {
	c.t.Helper()
	var got []string
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		r := c.get()
		switch r.Status {
		case 200:
			got = append(got, r.msgs()...)
		case 204:
		default:
			c.t.Fatalf("poll: want 200 or 204, got %s (after %q)", r.body, got)
		}
	}
	if len(got) != n {
		c.t.Fatalf("want %d messages, got %d: %q", n, len(got), got)
	}
	return got
}

func (c *lpClient) expectMessages(want ...string) {
	c.t.Helper()
	got := c.collect(len(want))
	for i := range want {
		if got[i] != want[i] {
			c.t.Fatalf("message %d:\nwant %s\ngot  %s", i, want[i], got[i])
		}
	}
}

// pump polls without a break, as phoenix.js does, and forwards every
// message; a poll that is not 200 or 204 is forwarded as "ERR <body>" and
// ends it. stop waits for the poller to end.
func (c *lpClient) pump() (msgs <-chan string, stop func()) {
	out := make(chan string, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	token := c.token
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			r, err := c.tryCtx(ctx, "GET", c.url(token), nil, "")
			if ctx.Err() != nil {
				return
			}
			if err != nil || (r.Status != 200 && r.Status != 204) {
				out <- fmt.Sprintf("ERR %v %s", err, r.body)
				return
			}
			for _, m := range r.msgs() {
				out <- m
			}
		}
	}()
	return out, func() { cancel(); <-done }
}

// lpExpectFrom requires the next messages on msgs to be want.
func lpExpectFrom(t *testing.T, msgs <-chan string, want ...string) {
	t.Helper()
	for i, w := range want {
		select {
		case got := <-msgs:
			if got != w {
				t.Fatalf("message %d:\nwant %s\ngot  %s", i, w, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d: want %s, got nothing", i, w)
		}
	}
}

func (c *lpClient) join(topic string) {
	c.t.Helper()
	c.postOK(`["1","1","` + topic + `","phx_join",{}]`)
	c.expectMessages(`["1","1","` + topic + `","phx_reply",{"response":{},"status":"ok"}]`)
}

func lpCheckHeaders(t *testing.T, r lpResp) {
	t.Helper()
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin": "*",
		"Content-Type":                "application/json; charset=utf-8",
		"Cache-Control":               "no-store",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("header %s: want %q, got %q", k, want, got)
		}
	}
}

func TestLongPollOpenSession(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{}, plume.Options{})
	c := env.client("vsn=2.0.0")
	r := c.open()
	lpCheckHeaders(t, r)
	if !strings.HasPrefix(r.body, `{"messages":[],"status":410,"token":"`) {
		t.Fatalf("body: %s", r.body)
	}
	if n := env.ep.Connections(); n != 1 {
		t.Fatalf("connections: want 1, got %d", n)
	}
	// phoenix.js's first GET ends in "&" (token null), or a client may send
	// an empty token: both open another session.
	for _, u := range []string{c.url("") + "&", c.url("") + "&token="} {
		r := c.do("GET", u, nil, "")
		if r.Status != 410 || r.Token == "" || r.Token == c.token {
			t.Fatalf("GET %s: %s", u, r.body)
		}
	}
	if n := env.ep.Connections(); n != 3 {
		t.Fatalf("connections: want 3, got %d", n)
	}
}

func TestLongPollRefused(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{}, plume.Options{})
	for _, q := range []string{"vsn=2.0.0&user=bad", "vsn=3.0.0", "vsn="} {
		c := env.client(q)
		r := c.do("GET", c.url(""), nil, "")
		lpCheckHeaders(t, r)
		if r.code != 200 || r.body != `{"status":403}` {
			t.Fatalf("%s: want 200 {\"status\":403}, got %d %s", q, r.code, r.body)
		}
	}
	// The origin check applies to new sessions and to every later request.
	c := env.client("vsn=2.0.0")
	evil := http.Header{"Origin": {"http://evil.example"}}
	if r := c.do("GET", c.url(""), evil, ""); r.body != `{"status":403}` {
		t.Fatalf("bad origin: %s", r.body)
	}
	c.open()
	if r := c.do("GET", c.url(c.token), evil, ""); r.body != `{"status":403}` {
		t.Fatalf("poll with bad origin: %s", r.body)
	}
	if r := c.do("POST", c.url(c.token), evil, `[null,"1","phoenix","heartbeat",{}]`); r.body != `{"status":403}` {
		t.Fatalf("post with bad origin: %s", r.body)
	}
	same := http.Header{"Origin": {env.srv.URL}}
	if r := c.do("POST", c.url(c.token), same, `[null,"1","phoenix","heartbeat",{}]`); r.body != `{"status":200}` {
		t.Fatalf("post with own origin: %s", r.body)
	}
	if n := env.ep.Connections(); n != 1 {
		t.Fatalf("connections: want 1, got %d", n)
	}
}

func TestLongPollJoinPushReply(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{}, plume.Options{})
	c := env.client("vsn=2.0.0")
	c.open()
	// A single frame with a JSON content type, as phoenix.js 1.7 did.
	c.expectPostStatus(200, "application/json", `["1","1","room:1","phx_join",{}]`)
	r := c.get()
	lpCheckHeaders(t, r)
	if want := `{"messages":["[\"1\",\"1\",\"room:1\",\"phx_reply\",{\"response\":{},\"status\":\"ok\"}]"],"status":200,"token":"` + c.token + `"}`; r.body != want {
		t.Fatalf("\nwant %s\ngot  %s", want, r.body)
	}
	// An ndjson batch: heartbeat, text push, binary push (base64), and a
	// push whose handler broadcasts.
	bin := []byte{0, 1, 1, 6, 3}
	bin = append(bin, "12room:1bin"...)
	bin = append(bin, 1, 2, 3)
	c.postOK(
		`[null,"2","phoenix","heartbeat",{}]`,
		`["1","3","room:1","ping",{"x":1}]`,
		base64.StdEncoding.EncodeToString(bin),
		`["1","4","room:1","shout",{"m":"hi"}]`,
	)
	c.expectMessages(
		`[null,"2","phoenix","phx_reply",{"response":{},"status":"ok"}]`,
		`["1","3","room:1","phx_reply",{"response":{"x":1},"status":"ok"}]`,
		`["1","2","room:1","phx_reply",{"response":{"bytes":"[1 2 3]","size":3},"status":"ok"}]`,
		`[null,null,"room:1","shouted",{"m":"hi"}]`,
		`["1","4","room:1","phx_reply",{"response":{},"status":"ok"}]`,
	)
	// Broadcasts from the server arrive in polls too.
	if err := env.ep.Broadcast(context.Background(), "room:1", "news", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	c.expectMessages(`[null,null,"room:1","news",{"n":1}]`)
	// The token also works in the x-phoenix-longpoll-token header alone.
	h := http.Header{"X-Phoenix-Longpoll-Token": {c.token}, "Content-Type": {"application/x-ndjson"}}
	if r := c.do("POST", c.url(""), h, `[null,"5","phoenix","heartbeat",{}]`); r.body != `{"status":200}` {
		t.Fatalf("POST with header token: %s", r.body)
	}
	r = c.do("GET", c.url(""), h, "")
	if len(r.msgs()) != 1 || r.msgs()[0] != `[null,"5","phoenix","phx_reply",{"response":{},"status":"ok"}]` {
		t.Fatalf("GET with header token: %s", r.body)
	}
	// Leaving ends the channel.
	c.postOK(`["1","6","room:1","phx_leave",{}]`)
	c.expectMessages(`["1","6","room:1","phx_reply",{"response":{},"status":"ok"}]`, `["1","1","room:1","phx_close",{}]`)
	env.expectReason("room:1 shutdown: left")
}

func TestLongPollV1(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{}, plume.Options{})
	c := env.client("vsn=1.0.0")
	c.open()
	c.expectPostStatus(200, "application/json", `{"topic":"room:v1","event":"phx_join","payload":{},"ref":"1","join_ref":"1"}`)
	c.expectMessages(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"room:v1"}`)
}

func TestLongPollAuthTokenAndHeaders(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{}, plume.Options{})
	c := env.client("vsn=2.0.0")
	c.hdr = http.Header{"X-Phoenix-Authtoken": {"s3cret"}, "X-Test": {"yes"}}
	c.open()
	c.hdr = nil
	c.join("room:a")
	c.postOK(`["1","2","room:a","whoami",{}]`)
	c.expectMessages(`["1","2","room:a","phx_reply",{"response":{"auth":"s3cret","transport":"longpoll","x":"yes"},"status":"ok"}]`)
}

func TestLongPollWindow(t *testing.T) {
	leakcheck.Check(t)
	const window = 500 * time.Millisecond
	env := newLPEnv(t, &plume.Socket{LongPollWindow: window}, plume.Options{})
	c := env.client("vsn=2.0.0")
	c.open()
	start := time.Now()
	r := c.get()
	if r.Status != 204 || r.Token != c.token || r.Messages == nil || len(*r.Messages) != 0 {
		t.Fatalf("idle poll: want {status:204,token,messages:[]}, got %s", r.body)
	}
	lpCheckHeaders(t, r)
	if d := time.Since(start); d < window*9/10 {
		t.Fatalf("idle poll answered after %v, before the %v window", d, window)
	}
}

func TestLongPollPollWakesOnFrame(t *testing.T) {
	leakcheck.Check(t)
	// A long window: the poll must answer when the reply is buffered, not
	// when the window ends (the client gives up after 10s).
	env := newLPEnv(t, &plume.Socket{LongPollWindow: time.Minute}, plume.Options{})
	c := env.client("vsn=2.0.0")
	c.open()
	got := make(chan lpResp, 1)
	go func() {
		r, err := c.try("GET", c.url(c.token), nil, "")
		if err != nil {
			r.body = err.Error()
		}
		got <- r
	}()
	env.waitPolls(1)
	c.postOK(`[null,"1","phoenix","heartbeat",{}]`)
	r := <-got
	if r.Status != 200 || len(r.msgs()) != 1 || r.msgs()[0] != `[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]` {
		t.Fatalf("poll: %s", r.body)
	}
}

func TestLongPollNoSession(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{}, plume.Options{})
	other := newLPEnv(t, &plume.Socket{}, plume.Options{})
	c := env.client("vsn=2.0.0")
	c.open()
	c.join("room:1")
	live := c.token
	oc := other.client("vsn=2.0.0")
	oc.open()

	// flip returns a base64url character other than c.
	flip := func(c byte) byte {
		if c == 'A' {
			return 'B'
		}
		return 'A'
	}
	forged := []byte(live)
	forged[len(forged)-5] = flip(forged[len(forged)-5]) // inside the signature
	dot := strings.IndexByte(live, '.')
	alteredPayload := []byte(live)
	alteredPayload[dot-5] = flip(alteredPayload[dot-5]) // inside the payload
	for name, tok := range map[string]string{
		"none":            "",
		"garbage":         "garbage",
		"forged":          string(forged),
		"altered payload": string(alteredPayload),
		"no signature":    live[:dot],
		"other endpoint":  oc.token, // different key
	} {
		c.token = tok
		c.expectPostStatus(410, "application/x-ndjson", `[null,"9","phoenix","heartbeat",{}]`)
		if tok == "" {
			continue
		}
		r := c.do("GET", c.url(tok), nil, "")
		if r.Status != 410 || r.Token == "" || r.Token == tok || r.Token == live {
			t.Fatalf("%s: GET must open a new session, got %s", name, r.body)
		}
	}
	// None of that reached the live session.
	c.token = live
	c.postOK(`[null,"10","phoenix","heartbeat",{}]`)
	c.expectMessages(`[null,"10","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
	select {
	case reason := <-env.reasons:
		t.Fatalf("channel ended: %s", reason)
	default:
	}
	// A token for another socket of the same endpoint has no session there.
	env.ep.Mount("/other", &plume.Socket{})
	h := http.Header{"Content-Type": {"application/x-ndjson"}}
	if r := c.do("POST", env.srv.URL+"/other/longpoll?vsn=2.0.0&token="+live, h, `[null,"9","phoenix","heartbeat",{}]`); r.body != `{"status":410}` {
		t.Fatalf("other mount: %s", r.body)
	}
}

func TestLongPollOtherNode(t *testing.T) {
	leakcheck.Check(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	psA, _ := pubsub.New(pubsub.Options{NodeName: "a"})
	psB, _ := pubsub.New(pubsub.Options{NodeName: "b"})
	a := newLPEnv(t, &plume.Socket{}, plume.Options{PubSub: psA, LongPollSecret: secret})
	b := newLPEnv(t, &plume.Socket{}, plume.Options{PubSub: psB, LongPollSecret: secret})
	ca := a.client("vsn=2.0.0")
	ca.open()
	// Node b verifies the token, sees that node a owns the session and,
	// until requests are routed across nodes, answers as without a session.
	cb := b.client("vsn=2.0.0")
	cb.token = ca.token
	cb.expectPostStatus(410, "application/x-ndjson", `[null,"1","phoenix","heartbeat",{}]`)
	r := cb.do("GET", cb.url(ca.token), nil, "")
	if r.Status != 410 || r.Token == "" || r.Token == ca.token {
		t.Fatalf("GET on b: %s", r.body)
	}
	// Node a still serves it.
	ca.postOK(`[null,"1","phoenix","heartbeat",{}]`)
	ca.expectMessages(`[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
}

func TestLongPollSlowFrame408(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{LongPollWindow: 500 * time.Millisecond}, plume.Options{})
	c := env.client("vsn=2.0.0")
	c.open()
	msgs, stop := c.pump()
	defer stop()
	// The join blocks past the window: 408, and the heartbeat behind it is
	// dropped.
	c.expectPostStatus(408, "application/x-ndjson", `["1","1","room:1","phx_join",{"block":true}]`+"\n"+`[null,"2","phoenix","heartbeat",{}]`)
	// A POST that cannot start within the window is 408 too, and dropped.
	c.expectPostStatus(408, "application/x-ndjson", `[null,"3","phoenix","heartbeat",{}]`)
	close(env.release)
	lpExpectFrom(t, msgs, `["1","1","room:1","phx_reply",{"response":{},"status":"ok"}]`)
	// The session lives on.
	c.postOK(`[null,"4","phoenix","heartbeat",{}]`)
	lpExpectFrom(t, msgs, `[null,"4","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
}

func TestLongPollMalformed(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{}, plume.Options{})
	for name, post := range map[string][2]string{
		"not json":     {"application/json", "this is not json"},
		"short array":  {"application/x-ndjson", `["1","2","room:1"]`},
		"bad base64":   {"application/x-ndjson", "!!!not base64"},
		"bad binary":   {"application/x-ndjson", base64.StdEncoding.EncodeToString([]byte{7, 1, 1})},
		"invalid utf8": {"application/json", "[null,\"2\",\"phoenix\",\"heartbeat\",{\"a\":\"\xff\"}]"},
	} {
		t.Run(name, func(t *testing.T) {
			c := env.client("vsn=2.0.0")
			c.open()
			c.join("room:1")
			live := c.token
			start := time.Now()
			c.expectPostStatus(408, post[0], post[1])
			if d := time.Since(start); d >= lpWindow {
				t.Fatalf("malformed frame answered after %v: must not wait for the window", d)
			}
			env.expectReason("room:1 shutdown: closed")
			c.expectPostStatus(410, "application/x-ndjson", `[null,"3","phoenix","heartbeat",{}]`)
			r := c.do("GET", c.url(live), nil, "")
			if r.Status != 410 || r.Token == live {
				t.Fatalf("GET after malformed frame: %s", r.body)
			}
		})
	}
}

func TestLongPollTooLarge(t *testing.T) {
	leakcheck.Check(t)
	// MaxFrameSize 1000: a body may hold 100 base64 lines of 1336 bytes.
	env := newLPEnv(t, &plume.Socket{MaxFrameSize: 1000}, plume.Options{})
	big := `["1","2","room:1","ping",{"p":"` + strings.Repeat("x", 1000) + `"}]`
	for name, post := range map[string][2]string{
		"body":        {"application/x-ndjson", strings.Repeat(`[null,"2","phoenix","heartbeat",{}]`+"\n", 4000)},
		"text line":   {"application/x-ndjson", big},
		"binary line": {"application/x-ndjson", base64.StdEncoding.EncodeToString(make([]byte, 1200))},
		"whole body":  {"application/json", big},
	} {
		t.Run(name, func(t *testing.T) {
			c := env.client("vsn=2.0.0")
			c.open()
			c.join("room:1")
			c.expectPostStatus(413, post[0], post[1])
			env.expectReason("room:1 shutdown: closed")
			c.expectPostStatus(410, "application/x-ndjson", `[null,"3","phoenix","heartbeat",{}]`)
		})
	}
	// Just under the limit is fine.
	c := env.client("vsn=2.0.0")
	c.open()
	c.join("room:1")
	head, tail := `["1","2","room:1","ping",{"p":"`, `"}]`
	ok := head + strings.Repeat("x", 1000-len(head)-len(tail)) + tail
	if len(ok) != 1000 {
		t.Fatalf("frame is %d bytes", len(ok))
	}
	c.postOK(ok)
	if got := c.collect(1)[0]; !strings.Contains(got, `"phx_reply"`) {
		t.Fatalf("reply: %s", got)
	}
}

func TestLongPollNDJSONLines(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{}, plume.Options{})
	c := env.client("vsn=2.0.0")
	c.open()
	// 101 lines: only the first 100 are handled.
	var lines []string
	for i := 1; i <= 101; i++ {
		lines = append(lines, fmt.Sprintf(`[null,"%d","phoenix","heartbeat",{}]`, i))
	}
	c.postOK(lines...)
	var want []string
	for i := 1; i <= 100; i++ {
		want = append(want, fmt.Sprintf(`[null,"%d","phoenix","phx_reply",{"response":{},"status":"ok"}]`, i))
	}
	// The next reply is that of the next POST: line 101 was not handled.
	c.postOK(`[null,"next","phoenix","heartbeat",{}]`)
	want = append(want, `[null,"next","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
	c.expectMessages(want...)
	// CRLF and empty lines (a trailing newline) are fine.
	c.postOK("[null,\"a\",\"phoenix\",\"heartbeat\",{}]\r\n\r\n[null,\"b\",\"phoenix\",\"heartbeat\",{}]\r\n")
	c.expectMessages(
		`[null,"a","phoenix","phx_reply",{"response":{},"status":"ok"}]`,
		`[null,"b","phoenix","phx_reply",{"response":{},"status":"ok"}]`,
	)
	// An empty body holds no frame.
	c.expectPostStatus(200, "application/json", "")
}

func TestLongPollCORSAndMethods(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{}, plume.Options{})
	c := env.client("vsn=2.0.0")
	r := c.do("OPTIONS", c.url("x"), http.Header{
		"Origin":                         {"http://example.com"},
		"Access-Control-Request-Method":  {"POST"},
		"Access-Control-Request-Headers": {"content-type, x-phoenix-authtoken"},
	}, "")
	if r.code != 200 || r.body != "" {
		t.Fatalf("OPTIONS: %d %q", r.code, r.body)
	}
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "get, post, options",
		"Access-Control-Allow-Headers": "content-type, x-phoenix-authtoken",
		"Access-Control-Max-Age":       "3600",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("OPTIONS header %s: want %q, got %q", k, want, got)
		}
	}
	for _, m := range []string{"PUT", "DELETE", "PATCH"} {
		r := c.do(m, c.url(""), nil, "")
		if r.code != 400 || r.body != "" || r.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%s: %d %q %v", m, r.code, r.body, r.header)
		}
	}
	if n := env.ep.Connections(); n != 0 {
		t.Fatalf("connections: %d", n)
	}
}

func TestLongPollDisabled(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{DisableLongPoll: true}, plume.Options{})
	c := env.client("vsn=2.0.0")
	if r := c.do("GET", c.url(""), nil, ""); r.code != 404 {
		t.Fatalf("GET: %d %s", r.code, r.body)
	}
}

func TestLongPollExpiry(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{LongPollWindow: 500 * time.Millisecond}, plume.Options{})
	// Polled without a break, a session outlives many windows.
	k := env.client("vsn=2.0.0")
	k.open()
	k.join("room:keep")
	kept, stop := k.pump()
	// Not polled for 1.5 windows, a session ends with its channels.
	c := env.client("vsn=2.0.0")
	c.open()
	c.join("room:1")
	env.expectReason("room:1 shutdown: closed")
	time.Sleep(time.Second) // more windows for the kept session
	stop()
	select {
	case m := <-kept:
		t.Fatalf("kept session: %s", m)
	default:
	}
	c.expectPostStatus(410, "application/x-ndjson", `[null,"1","phoenix","heartbeat",{}]`)
	r := c.do("GET", c.url(c.token), nil, "")
	if r.Status != 410 || r.Token == c.token {
		t.Fatalf("GET after expiry: %s", r.body)
	}
	k.postOK(`[null,"1","phoenix","heartbeat",{}]`)
	k.expectMessages(`[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
}

func TestLongPollDisconnect(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{LongPollWindow: time.Minute}, plume.Options{})
	c := env.client("vsn=2.0.0&user=u1")
	c.open()
	c.join("room:1")
	// A waiting poll learns of the disconnect.
	got := make(chan lpResp, 1)
	go func() {
		r, err := c.try("GET", c.url(c.token), nil, "")
		if err != nil {
			r.body = err.Error()
		}
		got <- r
	}()
	env.waitPolls(1)
	if err := env.ep.Disconnect(context.Background(), "user:u1"); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.body != `{"status":410}` {
		t.Fatalf("waiting poll: %s", r.body)
	}
	env.expectReason("room:1 shutdown: closed")
	c.expectPostStatus(410, "application/x-ndjson", `[null,"1","phoenix","heartbeat",{}]`)

	// Frames buffered before the close are still delivered, then 410.
	c = env.client("vsn=2.0.0&user=u2")
	c.open()
	c.join("room:2")
	env.ep.Broadcast(context.Background(), "room:2", "bye", map[string]int{})
	env.ep.Disconnect(context.Background(), "user:u2")
	env.expectReason("room:2 shutdown: closed")
	if r := c.get(); r.Status != 200 || len(r.msgs()) != 1 || r.msgs()[0] != `[null,null,"room:2","bye",{}]` {
		t.Fatalf("flush: %s", r.body)
	}
	env.waitConnections(0)
	// The session is gone: a GET opens a new one.
	if r := c.do("GET", c.url(c.token), nil, ""); r.Status != 410 || r.Token == c.token {
		t.Fatalf("after flush: %s", r.body)
	}
}

func TestLongPollDrain(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{LongPollWindow: time.Minute}, plume.Options{})
	c := env.client("vsn=2.0.0")
	c.open()
	c.join("room:1")
	idle := env.client("vsn=2.0.0") // a session without channels
	idle.open()
	got := make(chan lpResp, 1)
	go func() {
		r, err := c.try("GET", c.url(c.token), nil, "")
		if err != nil {
			r.body = err.Error()
		}
		got <- r
	}()
	env.waitPolls(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := env.ep.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.body != `{"status":410}` {
		t.Fatalf("waiting poll: %s", r.body)
	}
	env.expectReason("room:1 shutdown: draining")
	if n := env.ep.Connections(); n != 0 {
		t.Fatalf("connections after drain: %d", n)
	}
	// The sessions are gone, and new ones are refused like WebSocket
	// upgrades: 503 without a body, which phoenix.js retries later.
	for _, u := range []string{c.url(""), idle.url(idle.token)} {
		r := c.do("GET", u, nil, "")
		if r.code != 503 || r.body != "" || r.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("GET while drained: %d %q", r.code, r.body)
		}
	}
	idle.expectPostStatus(410, "application/x-ndjson", `[null,"1","phoenix","heartbeat",{}]`)
}

func TestLongPollSlowClient(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{MaxQueueBytes: 1000}, plume.Options{})
	c := env.client("vsn=2.0.0")
	c.open()
	c.join("room:1")
	// Under the limit, frames wait for the poll.
	payload := map[string]string{"p": strings.Repeat("x", 100)}
	for range 3 {
		env.ep.Broadcast(context.Background(), "room:1", "m", payload)
	}
	if got := c.collect(3); len(got) != 3 {
		t.Fatal(got)
	}
	// Past it, the session closes and its frames are dropped.
	for range 20 {
		env.ep.Broadcast(context.Background(), "room:1", "m", payload)
	}
	env.expectReason("room:1 shutdown: closed")
	r := c.do("GET", c.url(c.token), nil, "")
	if r.Status != 410 || r.Token == c.token || len(r.msgs()) != 0 {
		t.Fatalf("GET after overflow: %s", r.body)
	}
}

func TestLongPollBinaryFromServerDropped(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{}, plume.Options{})
	c := env.client("vsn=2.0.0")
	c.open()
	c.join("room:1")
	// The binary reply to "binreply" is dropped; the session goes on.
	c.postOK(`["1","2","room:1","binreply",{}]`, `["1","3","room:1","ping",{}]`)
	c.expectMessages(`["1","3","room:1","phx_reply",{"response":{},"status":"ok"}]`)
	c.postOK(`["1","4","room:1","ping",{}]`)
	c.expectMessages(`["1","4","room:1","phx_reply",{"response":{},"status":"ok"}]`)
}

func TestLongPollConcurrentClients(t *testing.T) {
	leakcheck.Check(t)
	env := newLPEnv(t, &plume.Socket{}, plume.Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := env.client("vsn=2.0.0")
			r, err := c.try("GET", c.url(""), nil, "")
			if err != nil || r.Status != 410 {
				errs <- fmt.Errorf("open: %v %s", err, r.body)
				return
			}
			topic := fmt.Sprintf("room:%d", i)
			h := http.Header{"Content-Type": {"application/x-ndjson"}}
			r, err = c.try("POST", c.url(r.Token), h, `["1","1","`+topic+`","phx_join",{}]`+"\n"+`["1","2","`+topic+`","ping",{"i":1}]`)
			if err != nil || r.body != `{"status":200}` {
				errs <- fmt.Errorf("post: %v %s", err, r.body)
				return
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := env.ep.Connections(); n != 8 {
		t.Fatalf("connections: %d", n)
	}
}
