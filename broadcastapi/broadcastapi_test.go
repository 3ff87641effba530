package broadcastapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/broadcastapi"
	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/pubsub"
)

const secret = "s3cret-s3cret-s3cret-s3cret-s3cret"

type room struct{}

func (room) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) { return nil, nil }

// recorder subscribes to topics on the endpoint's PubSub and records what
// is broadcast there.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Deliver(m *pubsub.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m.Topic+" "+m.Event+" "+string(m.Payload))
	r.mu.Unlock()
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.msgs
	r.msgs = nil
	return out
}

type fixture struct {
	ep  *plume.Endpoint
	api *broadcastapi.Handler
	srv *httptest.Server
	rec *recorder
}

// newFixture serves an endpoint at /socket and its broadcast API at
// /api/broadcast, and records broadcasts on room:1 and room:2.
func newFixture(t *testing.T, epOpts plume.Options, opts broadcastapi.Options) *fixture {
	t.Helper()
	sock := &plume.Socket{}
	sock.Channel("room:*", func() plume.ChannelHandler { return room{} })
	ep := plume.NewEndpoint(epOpts)
	ep.Mount("/socket", sock)
	api := broadcastapi.New(ep, opts)
	mux := http.NewServeMux()
	mux.Handle("/socket/", ep)
	mux.Handle("/api/broadcast", api)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	rec := &recorder{}
	for _, topic := range []string{"room:1", "room:2"} {
		ep.PubSub().Subscribe(topic, rec)
		t.Cleanup(func() { ep.PubSub().Unsubscribe(topic, rec) })
	}
	return &fixture{ep: ep, api: api, srv: srv, rec: rec}
}

// do sends a request to the API and returns the status, the decoded JSON
// body and the response.
func (f *fixture) do(t *testing.T, method string, hdr http.Header, body string) (int, map[string]any, *http.Response) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+"/api/broadcast", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s: body %q is not JSON: %v", resp.Status, data, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	return resp.StatusCode, out, resp
}

func bearer(s string) http.Header {
	return http.Header{"Authorization": {"Bearer " + s}, "Content-Type": {"application/json"}}
}

func signed(s string, at time.Time, body string) http.Header {
	ts := at.Unix()
	return http.Header{
		"Content-Type":               {"application/json"},
		broadcastapi.HeaderTimestamp: {strconv.FormatInt(ts, 10)},
		broadcastapi.HeaderSignature: {broadcastapi.Sign(s, ts, []byte(body))},
	}
}

func TestStatuses(t *testing.T) {
	leakcheck.Check(t)
	f := newFixture(t, plume.Options{}, broadcastapi.Options{
		Secret: secret, PreviousSecrets: []string{"old-secret"}, MaxBodyBytes: 512, MaxBatch: 3,
	})
	const one = `{"topic":"room:1","event":"new_msg","payload":{"body":"hi"}}`
	big := `{"topic":"room:1","event":"e","payload":{"x":"` + strings.Repeat("a", 600) + `"}}`
	now := time.Now()
	cases := []struct {
		name   string
		method string
		hdr    http.Header
		body   string
		status int
		errHas string
		sent   []string
	}{
		{"single", "POST", bearer(secret), one, 200, "", []string{`room:1 new_msg {"body":"hi"}`}},
		{"batch", "POST", bearer(secret),
			`{"messages":[{"topic":"room:1","event":"a","payload":{"n":1}},{"topic":"room:2","event":"b"},{"topic":"room:1","event":"c","payload":{}}]}`,
			200, "", []string{`room:1 a {"n":1}`, `room:2 b {}`, `room:1 c {}`}},
		{"no payload is {}", "POST", bearer(secret), `{"topic":"room:2","event":"ping"}`, 200, "", []string{`room:2 ping {}`}},
		{"charset param", "POST", http.Header{"Authorization": {"Bearer " + secret}, "Content-Type": {"application/json; charset=utf-8"}}, one, 200, "", []string{`room:1 new_msg {"body":"hi"}`}},
		{"previous secret", "POST", bearer("old-secret"), one, 200, "", []string{`room:1 new_msg {"body":"hi"}`}},
		{"bearer scheme case", "POST", http.Header{"Authorization": {"bearer " + secret}, "Content-Type": {"application/json"}}, one, 200, "", []string{`room:1 new_msg {"body":"hi"}`}},
		{"signed", "POST", signed(secret, now, one), one, 200, "", []string{`room:1 new_msg {"body":"hi"}`}},
		{"signed with previous secret", "POST", signed("old-secret", now, one), one, 200, "", []string{`room:1 new_msg {"body":"hi"}`}},

		{"GET", "GET", bearer(secret), "", 405, "use POST", nil},
		{"PUT", "PUT", bearer(secret), one, 405, "use POST", nil},
		{"no credentials", "POST", http.Header{"Content-Type": {"application/json"}}, one, 401, "missing credentials", nil},
		{"wrong bearer", "POST", bearer("nope"), one, 401, "invalid credentials", nil},
		{"empty bearer", "POST", http.Header{"Authorization": {"Bearer"}, "Content-Type": {"application/json"}}, one, 401, "invalid credentials", nil},
		{"secret prefix", "POST", bearer(secret[:10]), one, 401, "invalid credentials", nil},
		{"basic auth", "POST", http.Header{"Authorization": {"Basic dTpw"}, "Content-Type": {"application/json"}}, one, 401, "unsupported authorization scheme", nil},
		{"bad signature", "POST", signed("nope", now, one), one, 401, "invalid signature", nil},
		{"tampered body", "POST", signed(secret, now, one), strings.Replace(one, "hi", "ho", 1), 401, "invalid signature", nil},
		{"signature without v1", "POST", func() http.Header {
			h := signed(secret, now, one)
			h.Set(broadcastapi.HeaderSignature, strings.TrimPrefix(h.Get(broadcastapi.HeaderSignature), "v1="))
			return h
		}(), one, 401, "invalid signature", nil},
		{"signature without timestamp", "POST", func() http.Header {
			h := signed(secret, now, one)
			h.Del(broadcastapi.HeaderTimestamp)
			return h
		}(), one, 401, "X-Plume-Timestamp", nil},
		{"timestamp too old", "POST", signed(secret, now.Add(-6*time.Minute), one), one, 401, "away from the server's clock", nil},
		{"timestamp in the future", "POST", signed(secret, now.Add(6*time.Minute), one), one, 401, "away from the server's clock", nil},
		{"no content type", "POST", http.Header{"Authorization": {"Bearer " + secret}}, one, 415, "application/json", nil},
		{"form content type", "POST", http.Header{"Authorization": {"Bearer " + secret}, "Content-Type": {"application/x-www-form-urlencoded"}}, one, 415, "application/json", nil},
		{"too large", "POST", bearer(secret), big, 413, "larger than 512 bytes", nil},
		{"batch too large", "POST", bearer(secret),
			`{"messages":[{"topic":"room:1","event":"a"},{"topic":"room:1","event":"a"},{"topic":"room:1","event":"a"},{"topic":"room:1","event":"a"}]}`,
			413, "at most 3", nil},
		{"bad JSON", "POST", bearer(secret), `{"topic":`, 400, "invalid JSON", nil},
		{"empty body", "POST", bearer(secret), ``, 400, "empty body", nil},
		{"array body", "POST", bearer(secret), `[1]`, 400, "invalid JSON", nil},
		{"trailing data", "POST", bearer(secret), one + `{}`, 400, "data after the object", nil},
		{"unknown field", "POST", bearer(secret), `{"topic":"room:1","event":"e","payload":{},"topc":1}`, 400, "unknown field", nil},
		{"empty topic", "POST", bearer(secret), `{"topic":"","event":"e"}`, 422, "topic is empty", nil},
		{"empty event", "POST", bearer(secret), `{"topic":"room:1"}`, 422, "event is empty", nil},
		{"array payload", "POST", bearer(secret), `{"topic":"room:1","event":"e","payload":[1]}`, 422, "payload must be a JSON object", nil},
		{"string payload", "POST", bearer(secret), `{"topic":"room:1","event":"e","payload":"x"}`, 422, "payload must be a JSON object", nil},
		{"null payload", "POST", bearer(secret), `{"topic":"room:1","event":"e","payload":null}`, 422, "payload must be a JSON object", nil},
		{"reserved event", "POST", bearer(secret), `{"topic":"room:1","event":"phx_close"}`, 422, "reserved", nil},
		{"both forms", "POST", bearer(secret), `{"topic":"room:1","event":"e","messages":[{"topic":"room:1","event":"e"}]}`, 422, "not both", nil},
		{"empty batch", "POST", bearer(secret), `{"messages":[]}`, 422, "messages is empty", nil},
		{"one invalid in batch sends none", "POST", bearer(secret),
			`{"messages":[{"topic":"room:1","event":"a"},{"topic":"room:2","event":"b","payload":7}]}`,
			422, "messages[1]: payload must be a JSON object", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out, resp := f.do(t, tc.method, tc.hdr, tc.body)
			if status != tc.status {
				t.Fatalf("status %d %v, want %d", status, out, tc.status)
			}
			if tc.status == 200 {
				if n, _ := out["broadcast"].(float64); int(n) != len(tc.sent) {
					t.Fatalf("body %v, want broadcast %d", out, len(tc.sent))
				}
			} else {
				msg, _ := out["error"].(string)
				if !strings.Contains(msg, tc.errHas) {
					t.Fatalf("error %q lacks %q", msg, tc.errHas)
				}
			}
			switch status {
			case 401:
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Fatal("401 without WWW-Authenticate")
				}
			case 405:
				if resp.Header.Get("Allow") != "POST" {
					t.Fatalf("405 with Allow %q", resp.Header.Get("Allow"))
				}
			}
			if got := f.rec.take(); strings.Join(got, "\n") != strings.Join(tc.sent, "\n") {
				t.Fatalf("broadcast:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.sent, "\n"))
			}
		})
	}
}

func TestTooLargeWithoutContentLength(t *testing.T) {
	leakcheck.Check(t)
	f := newFixture(t, plume.Options{}, broadcastapi.Options{Secret: secret, MaxBodyBytes: 64})
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"topic":"room:1","event":"e","payload":{"x":"` + strings.Repeat("a", 200) + `"}}`))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", f.srv.URL+"/api/broadcast", pr)
	req.Header = bearer(secret)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}

func TestRequireSignature(t *testing.T) {
	leakcheck.Check(t)
	f := newFixture(t, plume.Options{}, broadcastapi.Options{Secret: secret, RequireSignature: true})
	const one = `{"topic":"room:1","event":"e"}`
	if status, out, _ := f.do(t, "POST", bearer(secret), one); status != 401 || !strings.Contains(out["error"].(string), "sign the request") {
		t.Fatalf("bearer with RequireSignature: %d %v", status, out)
	}
	if status, out, _ := f.do(t, "POST", signed(secret, time.Now(), one), one); status != 200 {
		t.Fatalf("signed: %d %v", status, out)
	}
}

// TestSignatureReplayOutsideSkew captures a signed request, replays it
// byte for byte within the skew (accepted: the documented window) and after
// it (refused).
func TestSignatureReplayOutsideSkew(t *testing.T) {
	leakcheck.Check(t)
	f := newFixture(t, plume.Options{}, broadcastapi.Options{Secret: secret, MaxSkew: time.Minute})
	clock := time.Now()
	broadcastapi.SetClock(f.api, func() time.Time { return clock })
	const body = `{"topic":"room:1","event":"e","payload":{"n":1}}`
	captured := signed(secret, clock, body)
	if status, out, _ := f.do(t, "POST", captured, body); status != 200 {
		t.Fatalf("original: %d %v", status, out)
	}
	clock = clock.Add(59 * time.Second)
	if status, out, _ := f.do(t, "POST", captured, body); status != 200 {
		t.Fatalf("replay within skew: %d %v", status, out)
	}
	clock = clock.Add(2 * time.Second)
	status, out, _ := f.do(t, "POST", captured, body)
	if status != 401 || !strings.Contains(out["error"].(string), "away from the server's clock") {
		t.Fatalf("replay 61s later: %d %v, want 401", status, out)
	}
	if got := f.rec.take(); len(got) != 2 {
		t.Fatalf("broadcast %d times, want 2: %v", len(got), got)
	}
}

// failingAdapter is a PubSub adapter whose broadcasts fail.
type failingAdapter struct{}

func (failingAdapter) NodeName() string                                   { return "a" }
func (failingAdapter) Start(context.Context, func(*pubsub.Message)) error { return nil }
func (failingAdapter) Broadcast(context.Context, *pubsub.Message) error {
	return errors.New("redis down")
}
func (failingAdapter) DirectBroadcast(context.Context, string, *pubsub.Message) error { return nil }
func (failingAdapter) Subscribe(string) error                                         { return nil }
func (failingAdapter) Unsubscribe(string) error                                       { return nil }
func (failingAdapter) Close() error                                                   { return nil }

func TestAdapterFailureIs503(t *testing.T) {
	leakcheck.Check(t)
	ps, err := pubsub.New(pubsub.Options{Adapter: failingAdapter{}})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	f := newFixture(t, plume.Options{PubSub: ps}, broadcastapi.Options{Secret: secret})
	status, out, _ := f.do(t, "POST", bearer(secret), `{"messages":[{"topic":"room:1","event":"a"},{"topic":"room:1","event":"b"}]}`)
	if status != 503 || out["broadcast"] != 0.0 || !strings.Contains(out["error"].(string), "redis down") {
		t.Fatalf("%d %v, want 503 with broadcast 0", status, out)
	}
	c := &broadcastapi.Client{URL: f.srv.URL + "/api/broadcast", Secret: secret, HTTPClient: f.srv.Client()}
	err = c.Broadcast(context.Background(), "room:1", "a", nil)
	var apiErr *broadcastapi.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 {
		t.Fatalf("client error %v, want *Error 503", err)
	}
}

func TestNewPanicsWithoutSecret(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New accepted an empty secret")
		}
	}()
	broadcastapi.New(plume.NewEndpoint(plume.Options{}), broadcastapi.Options{})
}

// wsClient is a raw WebSocket client of the plume endpoint.
type wsClient struct {
	t  *testing.T
	nc net.Conn
}

func dialWS(t *testing.T, srv *httptest.Server) *wsClient {
	t.Helper()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket/websocket?vsn=2.0.0"
	nc, _, _, err := ws.Dialer{Timeout: 5 * time.Second}.Dial(context.Background(), url)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	return &wsClient{t: t, nc: nc}
}

func (c *wsClient) send(s string) {
	c.t.Helper()
	if err := wsutil.WriteClientText(c.nc, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *wsClient) expect(want string) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, err := wsutil.ReadServerText(c.nc)
	if err != nil {
		c.t.Fatalf("want %s, got error %v", want, err)
	}
	if string(b) != want {
		c.t.Fatalf("\nwant %s\ngot  %s", want, b)
	}
}

func TestBroadcastReachesWebSocketClients(t *testing.T) {
	leakcheck.Check(t)
	f := newFixture(t, plume.Options{}, broadcastapi.Options{Secret: secret})
	a := dialWS(t, f.srv)
	a.send(`["1","1","room:1","phx_join",{}]`)
	a.expect(`["1","1","room:1","phx_reply",{"response":{},"status":"ok"}]`)
	a.send(`["2","2","room:2","phx_join",{}]`)
	a.expect(`["2","2","room:2","phx_reply",{"response":{},"status":"ok"}]`)
	b := dialWS(t, f.srv)
	b.send(`["1","1","room:2","phx_join",{}]`)
	b.expect(`["1","1","room:2","phx_reply",{"response":{},"status":"ok"}]`)

	url := f.srv.URL + "/api/broadcast"
	signedClient := &broadcastapi.Client{URL: url, Secret: secret, HTTPClient: f.srv.Client()}
	if err := signedClient.Broadcast(context.Background(), "room:1", "new_msg", map[string]string{"body": "hi"}); err != nil {
		t.Fatal(err)
	}
	a.expect(`[null,null,"room:1","new_msg",{"body":"hi"}]`)

	bearerClient := &broadcastapi.Client{URL: url, Secret: secret, Bearer: true, HTTPClient: f.srv.Client()}
	err := bearerClient.Batch(context.Background(), []broadcastapi.Message{
		{Topic: "room:2", Event: "one", Payload: json.RawMessage(`{"n":1}`)},
		{Topic: "room:1", Event: "two"},
		{Topic: "room:2", Event: "three", Payload: struct {
			N int `json:"n"`
		}{3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	a.expect(`[null,null,"room:2","one",{"n":1}]`)
	a.expect(`[null,null,"room:1","two",{}]`)
	a.expect(`[null,null,"room:2","three",{"n":3}]`)
	b.expect(`[null,null,"room:2","one",{"n":1}]`)
	b.expect(`[null,null,"room:2","three",{"n":3}]`)

	// Client-side errors come back as *Error with the API's message.
	bad := &broadcastapi.Client{URL: url, Secret: "wrong", HTTPClient: f.srv.Client()}
	err = bad.Broadcast(context.Background(), "room:1", "x", nil)
	var apiErr *broadcastapi.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Message != "invalid signature" {
		t.Fatalf("wrong secret: %v", err)
	}
	err = signedClient.Broadcast(context.Background(), "room:1", "x", []int{1})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 422 {
		t.Fatalf("array payload: %v", err)
	}
	f.srv.Client().CloseIdleConnections()
}
