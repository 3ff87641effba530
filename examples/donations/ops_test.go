package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/broadcastapi"
	"github.com/plumehq/plume/channeltest"
	"github.com/plumehq/plume/client"
	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/token"
)

// The operations side (ops.go): user tokens, /metrics, the broadcast API
// and the health checks, in process, with the official client under Node,
// and in Chromium.

const (
	opsSecret          = "ops-test-secret-key-base-0123456789abcdefghijklmnopqrstuvwxyz"
	opsBroadcastSecret = "ops-test-broadcast-secret-0123456789abcdef"
)

// newOpsApp returns the app with ops on (broadcast API included), its
// handler, and a channeltest harness on its socket.
func newOpsApp(t *testing.T, log *slog.Logger) (*App, http.Handler, *channeltest.Harness) {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o, err := newOps(opsConfig{Secret: opsSecret, BroadcastSecret: opsBroadcastSecret}, log)
	if err != nil {
		t.Fatal(err)
	}
	ep := plume.NewEndpoint(plume.Options{Logger: log, Telemetry: o.Metrics})
	app := NewApp(ep, memStore(t), testToken)
	app.useOps(o)
	ct := channeltest.New(t, app.Socket(), channeltest.Options{Endpoint: ep})
	t.Cleanup(func() { app.Close() })
	return app, app.Handler(http.NotFoundHandler()), ct
}

var (
	metaUserID    = regexp.MustCompile(`<meta name="user-id" content="([^"]*)">`)
	metaUserToken = regexp.MustCompile(`<meta name="user-token" content="([^"]*)">`)
)

// pageSession renders a campaign page and returns the user id and the
// token in it.
func pageSession(t *testing.T, body string) (uid, tok string) {
	t.Helper()
	id, tk := metaUserID.FindStringSubmatch(body), metaUserToken.FindStringSubmatch(body)
	if id == nil || tk == nil {
		t.Fatalf("no user-id and user-token meta tags in the page:\n%s", body)
	}
	return id[1], tk[1]
}

// expiredToken is a user token for uid signed with secret fifteen days ago
// (the maximum age is two weeks).
func expiredToken(t *testing.T, secret, uid string) string {
	t.Helper()
	tok, err := token.Sign(secret, userTokenSalt, uid, token.SignOptions{SignedAt: time.Now().Add(-15 * 24 * time.Hour), MaxAge: userTokenMaxAge})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tamper changes one character of tok's signature.
func tamper(tok string) string {
	i := len(tok) - 10
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

func TestOpsFlags(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, err := parseFlags(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Ops != (opsConfig{}) {
		t.Fatalf("defaults %+v", cfg.Ops)
	}
	cfg, err = parseFlags(nil, env(map[string]string{"SECRET_KEY_BASE": opsSecret, "BROADCAST_SECRET": "b-env"}), io.Discard)
	if err != nil || cfg.Ops != (opsConfig{Secret: opsSecret, BroadcastSecret: "b-env"}) {
		t.Fatalf("from the environment: %+v %v", cfg.Ops, err)
	}
	cfg, err = parseFlags([]string{"-secret", opsSecret + "-flag", "-broadcast-secret", "b-flag"},
		env(map[string]string{"SECRET_KEY_BASE": opsSecret, "BROADCAST_SECRET": "b-env"}), io.Discard)
	if err != nil || cfg.Ops != (opsConfig{Secret: opsSecret + "-flag", BroadcastSecret: "b-flag"}) {
		t.Fatalf("flags over the environment: %+v %v", cfg.Ops, err)
	}
	for _, c := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"-secret", "short"}, nil},
		{nil, map[string]string{"SECRET_KEY_BASE": "0123456789012345678"}},
	} {
		if _, err := parseFlags(c.args, env(c.env), io.Discard); err == nil || !strings.Contains(err.Error(), "at least 20 bytes") {
			t.Errorf("parseFlags(%q, %v): %v", c.args, c.env, err)
		}
	}
	// -h shows where the secrets come from, never their values.
	var help bytes.Buffer
	_, err = parseFlags([]string{"-h"}, env(map[string]string{"SECRET_KEY_BASE": opsSecret, "BROADCAST_SECRET": opsBroadcastSecret}), &help)
	if err == nil || strings.Contains(help.String(), opsSecret) || strings.Contains(help.String(), opsBroadcastSecret) ||
		!strings.Contains(help.String(), "$SECRET_KEY_BASE") || !strings.Contains(help.String(), "$BROADCAST_SECRET") {
		t.Fatalf("-h: %v\n%s", err, help.String())
	}

	// Without a secret, newOps makes one and says what that means.
	var log bytes.Buffer
	o, err := newOps(opsConfig{}, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(o.cfg.Secret) < token.MinSecretKeyBase {
		t.Fatalf("generated secret %q", o.cfg.Secret)
	}
	for _, want := range []string{"level=WARN", "random secret", "restarts", "SECRET_KEY_BASE", "broadcast API is off"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}

func TestCampaignPageToken(t *testing.T) {
	leakcheck.Check(t)
	_, h, _ := newOpsApp(t, nil)
	w := do(t, h, "GET", "/campaigns/clean-water", "")
	if w.Code != 200 {
		t.Fatalf("page: %d", w.Code)
	}
	uid, tok := pageSession(t, w.Body.String())
	if !regexp.MustCompile(`^guest-\d{4}$`).MatchString(uid) {
		t.Fatalf("user id %q", uid)
	}
	data, err := token.Verify(opsSecret, "user socket", tok, token.VerifyOptions{})
	if err != nil || data != uid {
		t.Fatalf("the page's token verifies to %v, %v; want %q", data, err, uid)
	}
	// Phoenix.Token's format, with the two weeks of Phoenix's guides.
	if !strings.HasPrefix(tok, "SFMyNTY.") {
		t.Fatalf("token %q", tok)
	}
	if _, err := token.Verify(opsSecret, "user socket", tok, token.VerifyOptions{Now: func() time.Time { return time.Now().Add(userTokenMaxAge + time.Minute) }}); !errors.Is(err, token.ErrExpired) {
		t.Fatalf("two weeks later: %v", err)
	}

	// Without ops (no secret), no token: the page falls back to the
	// contract's unsigned user_id.
	_, plain := newHTTP(t)
	w = do(t, plain, "GET", "/campaigns/clean-water", "")
	if w.Code != 200 || strings.Contains(w.Body.String(), "user-token") {
		t.Fatalf("page without ops: %d\n%s", w.Code, w.Body)
	}
}

func TestUserTokenConnect(t *testing.T) {
	leakcheck.Check(t)
	app, h, ct := newOpsApp(t, nil)
	uid, tok := pageSession(t, do(t, h, "GET", "/campaigns/x", "").Body.String())

	// The page's token, as authToken: the connection is that user's, and
	// its presence key is the token's user, whatever the payload says.
	c, err := ct.Connect(nil, plume.ConnectInfo{AuthToken: tok})
	if err != nil {
		t.Fatal(err)
	}
	if c.Conn().ID != "user_socket:"+uid || c.Conn().Assigns["user_id"] != uid {
		t.Fatalf("id %q assigns %v", c.Conn().ID, c.Conn().Assigns)
	}
	x := joinCampaign(t, c, "x", map[string]any{"user_id": "impostor"})
	x.AssertPush("campaign_data")
	x.AssertPush("presence_state")
	x.AssertPush("presence_diff", map[string]any{"joins": map[string]any{uid: map[string]any{}}, "leaves": map[string]any{}},
		func(d struct{ Joins map[string]any }) bool { return len(d.Joins) == 1 })

	// The same token as the "token" param (Phoenix's classic
	// params: {token: window.userToken}).
	c2, err := ct.Connect(plume.Params{"token": tok, "user_id": "impostor"}, plume.ConnectInfo{})
	if err != nil || c2.Conn().ID != "user_socket:"+uid {
		t.Fatalf("token param: %v", err)
	}

	// POST /api/disconnect reaches the token's user.
	if w := do(t, h, "POST", "/api/disconnect", `{"user_id":"`+uid+`"}`); w.Code != 204 {
		t.Fatalf("disconnect: %d", w.Code)
	}
	c.AssertDisconnect(plume.CloseGoingAway)
	c2.AssertDisconnect(plume.CloseGoingAway)

	// Tokens that do not verify refuse the connection as unauthorized,
	// which the socket (RefuseWithClose) sends as close code 4401.
	otherSalt, _ := token.Sign(opsSecret, "other salt", uid, token.SignOptions{})
	otherSecret, _ := token.Sign(opsSecret+"x", userTokenSalt, uid, token.SignOptions{})
	notAString, _ := token.Sign(opsSecret, userTokenSalt, 42, token.SignOptions{})
	empty, _ := token.Sign(opsSecret, userTokenSalt, "", token.SignOptions{})
	for _, r := range []struct {
		name   string
		params plume.Params
		info   plume.ConnectInfo
		reason string
	}{
		{"tampered", nil, plume.ConnectInfo{AuthToken: tamper(tok)}, "invalid token: unauthorized"},
		{"expired", nil, plume.ConnectInfo{AuthToken: expiredToken(t, opsSecret, uid)}, "token expired: unauthorized"},
		{"other salt", nil, plume.ConnectInfo{AuthToken: otherSalt}, "invalid token: unauthorized"},
		{"other secret", nil, plume.ConnectInfo{AuthToken: otherSecret}, "invalid token: unauthorized"},
		{"not a user id", nil, plume.ConnectInfo{AuthToken: notAString}, "invalid token: unauthorized"},
		{"empty user id", nil, plume.ConnectInfo{AuthToken: empty}, "invalid token: unauthorized"},
		{"garbage", nil, plume.ConnectInfo{AuthToken: "garbage"}, "invalid token: unauthorized"},
		{"tampered param", plume.Params{"token": tamper(tok), "user_id": "u1"}, plume.ConnectInfo{}, "invalid token: unauthorized"},
		{"empty param", plume.Params{"token": "", "user_id": "u1"}, plume.ConnectInfo{}, "invalid token: unauthorized"},
		{"nested param", plume.Params{"token": map[string]any{"a": "b"}}, plume.ConnectInfo{}, "invalid token: unauthorized"},
	} {
		_, err := ct.Connect(r.params, r.info)
		var cc plume.CloseCoder
		if !errors.Is(err, plume.ErrUnauthorized) || !errors.As(err, &cc) || cc.CloseCode() != plume.CloseUnauthorized || err.Error() != r.reason {
			t.Errorf("%s: %v, want %q (4401)", r.name, err, r.reason)
		}
	}
	if !app.Socket().RefuseWithClose {
		t.Fatal("the socket does not refuse with a close code")
	}

	// No token: anonymous, exactly as the contract says.
	anon, err := ct.Connect(plume.Params{"user_id": "anon-1"}, plume.ConnectInfo{})
	if err != nil || anon.Conn().ID != "user_socket:anon-1" || anon.Conn().Assigns["user_id"] != nil {
		t.Fatalf("anonymous with user_id: %v", err)
	}
	y := joinCampaign(t, anon, "y", map[string]any{"user_id": "anon-1"})
	y.AssertPush("campaign_data")
	y.AssertPush("presence_state")
	y.AssertPush("presence_diff", map[string]any{"joins": map[string]any{"anon-1": map[string]any{}}})
	nobody, err := ct.Connect(nil, plume.ConnectInfo{})
	if err != nil || nobody.Conn().ID != "" {
		t.Fatalf("anonymous: %v", err)
	}
	z := joinCampaign(t, nobody, "z", nil)
	z.AssertPush("campaign_data")
	z.RefutePush("presence_state")
}

func TestHealthChecks(t *testing.T) {
	leakcheck.Check(t)
	app, h, _ := newOpsApp(t, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		if w := do(t, h, "GET", path, ""); w.Code != 200 || w.Body.String() != "ok\n" || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: %d %q", path, w.Code, w.Body)
		}
		if w := do(t, h, "HEAD", path, ""); w.Code != 200 {
			t.Fatalf("HEAD %s: %d", path, w.Code)
		}
	}
	// Draining: not ready (load balancers stop sending connections), but
	// alive (not to be restarted mid-drain).
	if err := app.ep.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if w := do(t, h, "GET", "/readyz", ""); w.Code != 503 || w.Body.String() != "draining\n" {
		t.Fatalf("/readyz while draining: %d %q", w.Code, w.Body)
	}
	if w := do(t, h, "GET", "/healthz", ""); w.Code != 200 {
		t.Fatalf("/healthz while draining: %d", w.Code)
	}
}

func TestBroadcastAPIOff(t *testing.T) {
	leakcheck.Check(t)
	var log bytes.Buffer
	o, err := newOps(opsConfig{Secret: opsSecret}, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ep := plume.NewEndpoint(plume.Options{Telemetry: o.Metrics})
	app := NewApp(ep, memStore(t), testToken)
	t.Cleanup(func() { app.Close() })
	app.useOps(o)
	h := app.Handler(http.NotFoundHandler())
	if w := do(t, h, "POST", "/api/broadcast", `{"topic":"campaign:x","event":"e"}`); w.Code != 404 {
		t.Fatalf("/api/broadcast without a secret: %d", w.Code)
	}
	if !strings.Contains(log.String(), "broadcast API is off") {
		t.Fatalf("log: %s", log.String())
	}
	if w := do(t, h, "GET", "/metrics", ""); w.Code != 200 {
		t.Fatalf("/metrics: %d", w.Code)
	}
}

func TestBroadcastAPI(t *testing.T) {
	leakcheck.Check(t)
	_, h, ct := newOpsApp(t, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()

	x := joinCampaign(t, ct.Socket("", nil), "x", nil)
	x.AssertPush("campaign_data")
	c := &broadcastapi.Client{URL: srv.URL + "/api/broadcast", Secret: opsBroadcastSecret, HTTPClient: srv.Client()}
	if err := c.Broadcast(t.Context(), "campaign:x", "announcement", map[string]string{"text": "hello"}); err != nil {
		t.Fatal(err)
	}
	x.AssertPush("announcement", map[string]any{"text": "hello"})

	bad := &broadcastapi.Client{URL: c.URL, Secret: "wrong", HTTPClient: srv.Client()}
	var apiErr *broadcastapi.Error
	if err := bad.Broadcast(t.Context(), "campaign:x", "announcement", nil); !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Fatalf("wrong secret: %v", err)
	}
	x.RefutePush("announcement")
}

// linesWriter hands the lines written to it to a channel.
type linesWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	urls chan string
}

func (w *linesWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "Donations demo: open "); ok {
			w.urls <- strings.TrimSuffix(u, "/")
		}
	}
}

// TestOpsInProcess runs the demo's run() with its log captured, and checks
// over real WebSockets that /metrics counts joins and refusals and that no
// token, password or secret reaches the log, at any level.
func TestOpsInProcess(t *testing.T) {
	leakcheck.Check(t)
	var logBuf lockedBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg, err := parseFlags([]string{"-addr", "127.0.0.1:0", "-db", ":memory:", "-admin-token", "right-admin-token",
		"-secret", opsSecret, "-broadcast-secret", opsBroadcastSecret}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &linesWriter{urls: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, stdout, log) }()
	var base string
	select {
	case base = <-stdout.urls:
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, logBuf.String())
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not start")
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
	defer stop()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) string {
		t.Helper()
		resp, err := hc.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	// metric waits until /metrics has the line (telemetry may trail the
	// replies by a moment).
	metric := func(line string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			body := get("/metrics")
			if strings.Contains("\n"+body, "\n"+line+"\n") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/metrics lacks %q:\n%s", line, grepLines(body, "plume_"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	uid, tok := pageSession(t, get("/campaigns/x"))
	expired, tampered := expiredToken(t, opsSecret, uid), tamper(tok)

	sockets := []*client.Socket{}
	defer func() {
		for _, s := range sockets {
			s.Close()
		}
	}()
	newSocket := func(opts client.Options) (*client.Socket, chan client.CloseEvent) {
		opts.HeartbeatInterval = -1
		opts.ReconnectAfter = func(int) time.Duration { return time.Hour }
		opts.RejoinAfter = func(int) time.Duration { return time.Hour }
		s := client.NewSocket(base+"/socket", &opts)
		sockets = append(sockets, s)
		closes := make(chan client.CloseEvent, 8)
		s.OnClose(func(e client.CloseEvent) { closes <- e })
		return s, closes
	}

	// The page's token, with a password param that must never be logged.
	s, _ := newSocket(client.Options{
		AuthToken: func() string { return tok },
		Params:    func() map[string]any { return map[string]any{"password": "hunter2-connect"} },
	})
	if err := s.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	presence := make(chan string, 4)
	ch := s.Channel("campaign:x", map[string]any{"password": "hunter2-join"})
	ch.On("presence_diff", func(m client.Message) { presence <- string(m.Payload) })
	if r, err := ch.Join(t.Context()); err != nil || !r.OK() {
		t.Fatalf("join: %v %v", r, err)
	}
	select {
	case d := <-presence:
		if !strings.Contains(d, `"`+uid+`"`) {
			t.Fatalf("presence_diff %s, want %s", d, uid)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no presence_diff")
	}
	// A wrong admin token: refused, counted as unauthorized, and not logged.
	dash := s.Channel("dashboard:live", map[string]any{"admin_token": "wrong-admin-token"})
	if r, err := dash.Join(t.Context()); !errors.Is(err, client.ErrRefused) || string(r.Response) != `{"reason":"unauthorized"}` {
		t.Fatalf("dashboard join: %v %v", r, err)
	}
	dash.Leave(t.Context())
	metric(`plume_channels{route="campaign:*"} 1`)
	metric(`plume_channel_joins_total{route="campaign:*"} 1`)
	metric(`plume_channel_join_refusals_total{reason="unauthorized",route="dashboard:live"} 1`)

	// Tokens that do not verify: close code 4401, with the reason.
	for _, c := range []struct{ tok, reason string }{
		{tampered, "invalid token: unauthorized"},
		{expired, "token expired: unauthorized"},
	} {
		bad, closes := newSocket(client.Options{AuthToken: func() string { return c.tok }})
		bad.Connect(t.Context())
		select {
		case e := <-closes:
			if e.Code != plume.CloseUnauthorized || e.Reason != c.reason {
				t.Fatalf("refused token: close %d %q, want 4401 %q", e.Code, e.Reason, c.reason)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no close for a refused token")
		}
		bad.Close()
	}
	metric(`plume_connect_refusals_total{reason="connect",transport="websocket"} 2`)
	metric(`plume_connections{transport="websocket"} 1`)

	// The broadcast API reaches the channel.
	got := make(chan string, 1)
	ch.On("announcement", func(m client.Message) { got <- string(m.Payload) })
	bc := &broadcastapi.Client{URL: base + "/api/broadcast", Secret: opsBroadcastSecret, HTTPClient: hc}
	if err := bc.Broadcast(t.Context(), "campaign:x", "announcement", map[string]string{"text": "hi"}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != `{"text":"hi"}` {
			t.Fatalf("announcement %s", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the broadcast did not arrive")
	}
	get("/healthz")
	get("/readyz")

	s.Close()
	stop()
	logs := logBuf.String()
	for _, want := range []string{"CONNECTED TO socket", "REFUSED CONNECTION TO socket", "JOINED campaign:x", "REFUSED JOIN dashboard:live", "[FILTERED]"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	for _, secret := range []string{tok, expired, tampered, "hunter2", "wrong-admin-token", "right-admin-token", opsSecret, opsBroadcastSecret} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs)
	}
}

func grepLines(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

var (
	plumeCLIOnce sync.Once
	plumeCLI     string
	plumeCLIErr  error
)

// plumeBinary builds the plume command (cmd/plume) once per test run.
func plumeBinary(t *testing.T) string {
	t.Helper()
	plumeCLIOnce.Do(func() {
		demoBinary(t) // for buildDir, which TestMain removes
		if buildErr != nil {
			plumeCLIErr = buildErr
			return
		}
		bin := filepath.Join(buildDir, "plume")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/plume")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			plumeCLIErr = fmt.Errorf("go build ./cmd/plume: %v\n%s", err, out)
			return
		}
		plumeCLI = bin
	})
	if plumeCLIErr != nil {
		t.Fatal(plumeCLIErr)
	}
	return plumeCLI
}

// TestOpsNode runs testdata/ops.mjs, the official client under Node on the
// ws transport, against the demo binary: the page's token, refused tokens
// as phoenix.js sees them (onClose, 4401), anonymous sockets, and
// `plume broadcast` reaching the clients.
func TestOpsNode(t *testing.T) {
	leakcheck.Check(t)
	node := requireNode(t)
	plumeBin := plumeBinary(t)
	env := []string{"ADMIN_TOKEN=ops-admin", "SECRET_KEY_BASE=" + opsSecret, "BROADCAST_SECRET=" + opsBroadcastSecret}
	s := startServer(t, "127.0.0.1:0", ":memory:", env)
	if strings.Contains(s.log.String(), "random secret") || strings.Contains(s.log.String(), "broadcast API is off") {
		t.Fatalf("the secrets from the environment were not used:\n%s", s.log)
	}
	resp, err := httpGet(s.URL + "/campaigns/ops")
	if err != nil || resp.status != 200 {
		t.Fatalf("page: %v %d", err, resp.status)
	}
	uid, tok := pageSession(t, resp.body)
	expired, tampered := expiredToken(t, opsSecret, uid), tamper(tok)
	out := runNode(t, node, "ops.mjs", s.URL, uid, tok, expired, tampered, plumeBin, opsBroadcastSecret)
	t.Logf("ops.mjs:\n%s", summary(out))
	s.stop()
	logs := s.log.String()
	for _, secret := range []string{tok, expired, tampered, opsSecret, opsBroadcastSecret} {
		if strings.Contains(logs, secret) {
			t.Errorf("the server log holds %q", secret)
		}
	}
}

// TestOpsBrowser checks what the campaign page does with its token in
// Chromium: it connects with the token the server rendered, keeps it
// across reloads, and when the token is refused it says so and stops
// reconnecting.
func TestOpsBrowser(t *testing.T) {
	leakcheck.Check(t)
	node := requireNode(t, "playwright-core")
	if _, err := os.Stat(chromiumPath); err != nil {
		skipOrFail(t, chromiumPath+" is missing (apt-get install chromium)")
	}
	s := startServer(t, "127.0.0.1:0", ":memory:", []string{"SECRET_KEY_BASE=" + opsSecret})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "ops_browser.mjs"), s.URL)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ops_browser.mjs: %v\n%s", err, out)
	}
	t.Logf("ops_browser.mjs:\n%s", out)
	s.stop()
}

// TestOpsTwoNodes runs two demo nodes on one Redis broker with the same
// secrets (testdata/ops_cluster.mjs): a token from one node opens a socket
// on the other, and `plume broadcast` through either node's API reaches
// phoenix.js clients on both. It uses the cluster test's helpers
// (cluster_test.go).
func TestOpsTwoNodes(t *testing.T) {
	leakcheck.Check(t)
	node := requireNode(t)
	requireTCP(t, "redis", "127.0.0.1:6379")
	plumeBin := plumeBinary(t)
	broker := "redis://127.0.0.1:6379/0?prefix=plumeops" + randomHex(4)
	env := []string{"ADMIN_TOKEN=ops-admin", "SECRET_KEY_BASE=" + opsSecret, "BROADCAST_SECRET=" + opsBroadcastSecret}
	a := startServer(t, "127.0.0.1:0", ":memory:", env, "-pubsub", broker, "-node", "ops-a")
	b := startServer(t, "127.0.0.1:0", ":memory:", env, "-pubsub", broker, "-node", "ops-b")
	resp, err := httpGet(b.URL + "/campaigns/ops-cluster")
	if err != nil || resp.status != 200 {
		t.Fatalf("page on node B: %v %d", err, resp.status)
	}
	uid, tok := pageSession(t, resp.body)
	out := runNode(t, node, "ops_cluster.mjs", a.URL, b.URL, uid, tok, plumeBin, opsBroadcastSecret)
	t.Logf("ops_cluster.mjs:\n%s", summary(out))
	a.stop()
	b.stop()
}
