package plumeprom_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/plumeprom"
	"github.com/plumehq/plume/pubsub"
	"github.com/plumehq/plume/telemetry"
)

// room accepts joins whose payload has key "open", refuses "unauthorized"
// for key "nope", panics for key "panic", and refuses with a free-text
// error that quotes the client's key otherwise.
type room struct{}

func (room) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	key, _ := p.Map()["key"].(string)
	switch key {
	case "open":
		return nil, nil
	case "nope":
		return nil, errors.New("unauthorized")
	case "panic":
		panic("join exploded")
	}
	return nil, fmt.Errorf("bad key %q", key)
}

func (room) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	switch event {
	case "ping":
		return plume.ReplyOK(p), nil
	case "push":
		return plume.NoReply, ch.Push("pushed", p)
	}
	return plume.NoReply, nil
}

type server struct {
	reg *prometheus.Registry
	m   *plumeprom.Metrics
	ep  *plume.Endpoint
	srv *httptest.Server
}

func newServer(t *testing.T, sock *plume.Socket, epOpts plume.Options, opts plumeprom.Options) *server {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	m, err := plumeprom.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if sock == nil {
		sock = &plume.Socket{}
	}
	sock.Channel("room:*", func() plume.ChannelHandler { return room{} })
	sock.Channel("lobby", func() plume.ChannelHandler { return room{} })
	epOpts.Telemetry = m
	ep := plume.NewEndpoint(epOpts)
	ep.Mount("/socket", sock)
	srv := httptest.NewServer(ep)
	t.Cleanup(srv.Close)
	return &server{reg: reg, m: m, ep: ep, srv: srv}
}

// value returns the value of the series name{labels} (a histogram's sample
// count), or 0 when the series does not exist.
func (s *server) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if want[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

// eventually waits for name{labels} to equal want: the server emits some
// events just after it answers the client.
func (s *server) eventually(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := s.value(t, name, labels...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// client is a raw WebSocket client speaking Phoenix V2 frames.
type client struct {
	t  *testing.T
	nc net.Conn
}

func (s *server) dial(t *testing.T) *client {
	t.Helper()
	url := "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/socket/websocket?vsn=2.0.0"
	nc, _, _, err := ws.Dialer{Timeout: 5 * time.Second}.Dial(context.Background(), url)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc}
}

func (c *client) send(s string) {
	c.t.Helper()
	if err := wsutil.WriteClientText(c.nc, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) read() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, err := wsutil.ReadServerText(c.nc)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return string(b)
}

func (c *client) expect(want string) {
	c.t.Helper()
	if got := c.read(); got != want {
		c.t.Fatalf("\nwant %s\ngot  %s", want, got)
	}
}

// close sends a close frame with code 1000 and waits for the server to end
// the connection.
func (c *client) close() {
	c.t.Helper()
	if err := ws.WriteFrame(c.nc, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "")))); err != nil {
		c.t.Fatal(err)
	}
	c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		if _, err := wsutil.ReadServerText(c.nc); err != nil {
			break
		}
	}
	c.nc.Close()
}

func join(c *client, ref int, topic, key string) {
	c.send(fmt.Sprintf(`["%d","%d","%s","phx_join",{"key":%q}]`, ref, ref, topic, key))
}

func TestJoinAndLeaveMoveTheChannelGauge(t *testing.T) {
	leakcheck.Check(t)
	s := newServer(t, nil, plume.Options{}, plumeprom.Options{})
	c := s.dial(t)
	s.eventually(t, 1, "plume_connections", "transport", "websocket")
	s.eventually(t, 1, "plume_connects_total", "transport", "websocket")

	join(c, 1, "room:1", "open")
	c.expect(`["1","1","room:1","phx_reply",{"response":{},"status":"ok"}]`)
	s.eventually(t, 1, "plume_channels", "route", "room:*")
	join(c, 2, "room:2", "open")
	c.expect(`["2","2","room:2","phx_reply",{"response":{},"status":"ok"}]`)
	join(c, 3, "lobby", "open")
	c.expect(`["3","3","lobby","phx_reply",{"response":{},"status":"ok"}]`)
	s.eventually(t, 2, "plume_channels", "route", "room:*")
	s.eventually(t, 1, "plume_channels", "route", "lobby")
	s.eventually(t, 2, "plume_channel_joins_total", "route", "room:*")
	s.eventually(t, 2, "plume_channel_join_duration_seconds", "route", "room:*")

	c.send(`["1","4","room:1","ping",{"n":1}]`)
	c.expect(`["1","4","room:1","phx_reply",{"response":{"n":1},"status":"ok"}]`)
	c.send(`["1","5","room:1","push",{"abc":1}]`)
	c.expect(`["1",null,"room:1","pushed",{"abc":1}]`)
	s.eventually(t, 2, "plume_messages_in_total", "route", "room:*")
	s.eventually(t, 2, "plume_channel_handle_in_duration_seconds", "route", "room:*")
	s.eventually(t, float64(len(`{"n":1}`)+len(`{"abc":1}`)), "plume_received_bytes_total", "route", "room:*")
	s.eventually(t, 1, "plume_pushes_total", "route", "room:*")
	s.eventually(t, float64(len(`{"abc":1}`)), "plume_sent_bytes_total")

	c.send(`["1","6","room:1","phx_leave",{}]`)
	c.expect(`["1","6","room:1","phx_reply",{"response":{},"status":"ok"}]`)
	c.expect(`["1","1","room:1","phx_close",{}]`)
	s.eventually(t, 1, "plume_channels", "route", "room:*")
	s.eventually(t, 1, "plume_channel_leaves_total", "route", "room:*")
	s.eventually(t, 1, "plume_channel_terminations_total", "route", "room:*", "reason", "left")

	// A duplicate join replaces the channel: the gauge stays.
	join(c, 7, "room:2", "open")
	c.expect(`["7","7","room:2","phx_reply",{"response":{},"status":"ok"}]`)
	c.expect(`["2","2","room:2","phx_close",{}]`)
	s.eventually(t, 1, "plume_channel_terminations_total", "route", "room:*", "reason", "duplicate_join")
	s.eventually(t, 1, "plume_channels", "route", "room:*")

	c.close()
	s.eventually(t, 0, "plume_channels", "route", "room:*")
	s.eventually(t, 0, "plume_channels", "route", "lobby")
	s.eventually(t, 0, "plume_connections", "transport", "websocket")
	s.eventually(t, 1, "plume_channel_terminations_total", "route", "room:*", "reason", "closed")
	s.eventually(t, 1, "plume_disconnects_total", "transport", "websocket", "code", "1000")
}

func TestRefusedJoinsAreCountedByBoundedReason(t *testing.T) {
	leakcheck.Check(t)
	s := newServer(t, &plume.Socket{MaxChannels: 1}, plume.Options{}, plumeprom.Options{})
	c := s.dial(t)
	join(c, 1, "room:1", "nope")
	c.expect(`["1","1","room:1","phx_reply",{"response":{"reason":"unauthorized"},"status":"error"}]`)
	join(c, 2, "room:1", "let me in")
	c.expect(`["2","2","room:1","phx_reply",{"response":{"reason":"bad key \"let me in\""},"status":"error"}]`)
	join(c, 3, "room:1", "panic")
	c.expect(`["3","3","room:1","phx_reply",{"response":{"reason":"join crashed"},"status":"error"}]`)
	join(c, 4, "nowhere:1", "open")
	c.expect(`[null,"4","nowhere:1","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`)
	join(c, 5, "room:1", "open")
	c.expect(`["5","5","room:1","phx_reply",{"response":{},"status":"ok"}]`)
	join(c, 6, "room:2", "open")
	c.expect(`["6","6","room:2","phx_reply",{"response":{"reason":"too many channels joined"},"status":"error"}]`)

	want := `
# HELP plume_channel_join_refusals_total Channel joins refused, by bounded reason.
# TYPE plume_channel_join_refusals_total counter
plume_channel_join_refusals_total{reason="join_crashed",route="room:*"} 1
plume_channel_join_refusals_total{reason="refused",route="room:*"} 1
plume_channel_join_refusals_total{reason="too_many_channels",route="room:*"} 1
plume_channel_join_refusals_total{reason="unauthorized",route="room:*"} 1
plume_channel_join_refusals_total{reason="unmatched_topic",route="unmatched"} 1
`
	deadline := time.Now().Add(3 * time.Second)
	for {
		err := testutil.GatherAndCompare(s.reg, strings.NewReader(want), "plume_channel_join_refusals_total")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Refused joins never counted as joined channels; the accepted one is.
	s.eventually(t, 1, "plume_channels", "route", "room:*")
	s.eventually(t, 1, "plume_channel_joins_total", "route", "room:*")
	// Join callbacks that ran (unauthorized, free text, crash, accepted).
	s.eventually(t, 4, "plume_channel_join_duration_seconds", "route", "room:*")
	c.close()
	s.eventually(t, 0, "plume_channels", "route", "room:*")
}

func TestConfiguredJoinRefusalReason(t *testing.T) {
	leakcheck.Check(t)
	s := newServer(t, nil, plume.Options{}, plumeprom.Options{JoinRefusalReasons: []string{`bad key "x"`}})
	c := s.dial(t)
	join(c, 1, "room:1", "x")
	c.expect(`["1","1","room:1","phx_reply",{"response":{"reason":"bad key \"x\""},"status":"error"}]`)
	join(c, 2, "room:1", "y")
	c.expect(`["2","2","room:1","phx_reply",{"response":{"reason":"bad key \"y\""},"status":"error"}]`)
	s.eventually(t, 1, "plume_channel_join_refusals_total", "route", "room:*", "reason", `bad key "x"`)
	s.eventually(t, 1, "plume_channel_join_refusals_total", "route", "room:*", "reason", "refused")
	c.close()
}

// TestCardinalityStaysBounded joins 1,000 distinct topics, refuses 200
// joins with distinct client-chosen reasons, and sends 100 unmatched topics:
// each metric keeps a handful of series.
func TestCardinalityStaysBounded(t *testing.T) {
	leakcheck.Check(t)
	s := newServer(t, &plume.Socket{MaxChannels: 2000}, plume.Options{}, plumeprom.Options{})
	c := s.dial(t)
	const n = 1000
	for i := range n {
		topic := fmt.Sprintf("room:%d", i)
		c.send(fmt.Sprintf(`["%d","%d","%s","phx_join",{"key":"open"}]`, i, i, topic))
		c.send(fmt.Sprintf(`["%d","m%d","%s","ping",{}]`, i, i, topic))
	}
	// Replies of different channels may interleave in any order.
	want := map[string]bool{}
	for i := range n {
		want[fmt.Sprintf(`["%d","%d","room:%d","phx_reply",{"response":{},"status":"ok"}]`, i, i, i)] = true
		want[fmt.Sprintf(`["%d","m%d","room:%d","phx_reply",{"response":{},"status":"ok"}]`, i, i, i)] = true
	}
	for len(want) > 0 {
		f := c.read()
		if !want[f] {
			t.Fatalf("unexpected frame %s", f)
		}
		delete(want, f)
	}
	for i := range 200 {
		key := fmt.Sprintf("attacker-chosen-%d", i)
		c.send(fmt.Sprintf(`["r%d","r%d","room:x%d","phx_join",{"key":%q}]`, i, i, i, key))
		c.expect(fmt.Sprintf(`["r%d","r%d","room:x%d","phx_reply",{"response":{"reason":"bad key %s"},"status":"error"}]`, i, i, i, `\"`+key+`\"`))
	}
	for i := range 100 {
		c.send(fmt.Sprintf(`["u%d","u%d","nowhere:%d","phx_join",{}]`, i, i, i))
		c.expect(fmt.Sprintf(`[null,"u%d","nowhere:%d","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`, i, i))
	}
	s.eventually(t, n, "plume_channels", "route", "room:*")
	s.eventually(t, n, "plume_messages_in_total", "route", "room:*")
	s.eventually(t, 200, "plume_channel_join_refusals_total", "route", "room:*", "reason", "refused")
	s.eventually(t, 100, "plume_channel_join_refusals_total", "route", "unmatched", "reason", "unmatched_topic")

	for name, max := range map[string]int{
		"plume_channels":                           2, // room:*, unmatched (from refusals' duration cache) at most
		"plume_channel_joins_total":                2,
		"plume_messages_in_total":                  2,
		"plume_channel_join_refusals_total":        2,
		"plume_channel_join_duration_seconds":      2,
		"plume_channel_handle_in_duration_seconds": 2,
		"plume_channel_terminations_total":         2,
	} {
		if got := testutil.CollectAndCount(s.m, name); got > max || got == 0 && name != "plume_channel_terminations_total" {
			t.Errorf("%s has %d series, want 1..%d", name, got, max)
		}
	}
	if got := s.labelValues(t, "plume_channels", "route"); strings.Join(got, ",") != "room:*" {
		t.Errorf("plume_channels routes %v, want only room:*", got)
	}
	c.close()
	s.eventually(t, 0, "plume_channels", "route", "room:*")
	if got := testutil.CollectAndCount(s.m, "plume_channel_terminations_total"); got != 1 {
		t.Errorf("plume_channel_terminations_total has %d series, want 1", got)
	}
}

// labelValues returns the distinct values of label in a metric family.
func (s *server) labelValues(t *testing.T, name, label string) []string {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label {
					seen[lp.GetValue()] = true
				}
			}
		}
	}
	var out []string
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func TestBroadcastMetrics(t *testing.T) {
	leakcheck.Check(t)
	s := newServer(t, nil, plume.Options{}, plumeprom.Options{})
	a, b := s.dial(t), s.dial(t)
	for _, c := range []*client{a, b} {
		join(c, 1, "room:1", "open")
		c.expect(`["1","1","room:1","phx_reply",{"response":{},"status":"ok"}]`)
	}
	if err := s.ep.Broadcast(context.Background(), "room:1", "news", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	a.expect(`[null,null,"room:1","news",{"n":1}]`)
	b.expect(`[null,null,"room:1","news",{"n":1}]`)
	s.eventually(t, 1, "plume_broadcasts_total")
	s.eventually(t, 2, "plume_broadcast_deliveries_total")
	s.eventually(t, 1, "plume_broadcast_fanout_duration_seconds")
	s.eventually(t, 2*float64(len(`{"n":1}`)), "plume_sent_bytes_total")
	a.close()
	b.close()
	s.eventually(t, 0, "plume_connections", "transport", "websocket")
}

// failingAdapter is a PubSub adapter whose broadcasts fail.
type failingAdapter struct{}

func (failingAdapter) NodeName() string                                               { return "a" }
func (failingAdapter) Start(context.Context, func(*pubsub.Message)) error             { return nil }
func (failingAdapter) Broadcast(context.Context, *pubsub.Message) error               { return errors.New("down") }
func (failingAdapter) DirectBroadcast(context.Context, string, *pubsub.Message) error { return nil }
func (failingAdapter) Subscribe(string) error                                         { return nil }
func (failingAdapter) Unsubscribe(string) error                                       { return nil }
func (failingAdapter) Close() error                                                   { return nil }

func TestPubSubErrorsCounted(t *testing.T) {
	leakcheck.Check(t)
	ps, err := pubsub.New(pubsub.Options{Adapter: failingAdapter{}})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	s := newServer(t, nil, plume.Options{PubSub: ps}, plumeprom.Options{})
	if err := s.ep.Broadcast(context.Background(), "room:1", "e", nil); err == nil {
		t.Fatal("broadcast through a failing adapter succeeded")
	}
	s.eventually(t, 1, "plume_pubsub_errors_total", "operation", "broadcast")
}

// TestFailedUpgradeDoesNotLeakAConnection sends a plain GET to the
// WebSocket path: Connect accepts it, the upgrade fails, and the connection
// gauge must come back to zero.
func TestFailedUpgradeDoesNotLeakAConnection(t *testing.T) {
	leakcheck.Check(t)
	s := newServer(t, nil, plume.Options{}, plumeprom.Options{})
	resp, err := s.srv.Client().Get(s.srv.URL + "/socket/websocket?vsn=2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		t.Fatal("a plain GET was upgraded")
	}
	s.eventually(t, 1, "plume_connects_total", "transport", "websocket")
	s.eventually(t, 0, "plume_connections", "transport", "websocket")
	s.srv.Client().CloseIdleConnections()
}

func TestConnectRefusalsAndDrain(t *testing.T) {
	leakcheck.Check(t)
	sock := &plume.Socket{Connect: func(ctx context.Context, c *plume.Conn) error {
		if c.Params["token"] != "good" {
			return plume.ErrRefused
		}
		return nil
	}}
	s := newServer(t, sock, plume.Options{DrainInterval: time.Millisecond}, plumeprom.Options{})
	url := "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/socket/websocket?vsn=2.0.0"
	if _, _, _, err := (ws.Dialer{}).Dial(context.Background(), url+"&token=bad"); err == nil {
		t.Fatal("refused connect dialed")
	}
	if _, _, _, err := (ws.Dialer{}).Dial(context.Background(), url+"&vsn=9"); err == nil {
		t.Fatal("bad vsn dialed")
	}
	s.eventually(t, 1, "plume_connect_refusals_total", "transport", "websocket", "reason", "connect")
	nc, _, _, err := (ws.Dialer{}).Dial(context.Background(), url+"&token=good")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s.eventually(t, 1, "plume_connections", "transport", "websocket")
	if err := s.ep.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.eventually(t, 1, "plume_drained_connections_total")
	s.eventually(t, 0, "plume_connections", "transport", "websocket")
	s.eventually(t, 1, "plume_disconnects_total", "transport", "websocket", "code", "1012")
	if _, _, _, err := (ws.Dialer{}).Dial(context.Background(), url+"&token=good"); err == nil {
		t.Fatal("dialed a draining endpoint")
	}
	s.eventually(t, 1, "plume_connect_refusals_total", "transport", "websocket", "reason", "draining")
}

// TestLabelsBoundedForAnyEventText feeds events with arbitrary text where
// reasons, operations and codes go.
func TestLabelsBoundedForAnyEventText(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := plumeprom.New(plumeprom.Options{Registerer: reg, Namespace: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		junk := fmt.Sprintf("junk %d", i)
		m.HandleEvent(&telemetry.Event{Kind: telemetry.SocketRefused, Transport: "websocket", Reason: junk})
		m.HandleEvent(&telemetry.Event{Kind: telemetry.ChannelRefused, Route: "room:*", Reason: junk})
		m.HandleEvent(&telemetry.Event{Kind: telemetry.ChannelRefused, Reason: junk})
		m.HandleEvent(&telemetry.Event{Kind: telemetry.ChannelJoined, Route: "room:*"})
		m.HandleEvent(&telemetry.Event{Kind: telemetry.ChannelTerminated, Route: "room:*", Reason: junk})
		m.HandleEvent(&telemetry.Event{Kind: telemetry.PubSubError, Reason: junk})
		m.HandleEvent(&telemetry.Event{Kind: telemetry.SocketConnected, Transport: "websocket"})
		m.HandleEvent(&telemetry.Event{Kind: telemetry.SocketClosed, Transport: "websocket", Code: 1016 + i})
	}
	for name, want := range map[string]int{
		"x_connect_refusals_total":      1,
		"x_channel_join_refusals_total": 2,
		"x_channel_terminations_total":  1,
		"x_pubsub_errors_total":         1,
		"x_disconnects_total":           1,
		"x_channels":                    1,
	} {
		if got := testutil.CollectAndCount(m, name); got != want {
			t.Errorf("%s has %d series, want %d", name, got, want)
		}
	}
	want := `
# HELP x_channel_terminations_total Channels stopped, by bounded reason.
# TYPE x_channel_terminations_total counter
x_channel_terminations_total{reason="shutdown",route="room:*"} 500
# HELP x_connections Open connections.
# TYPE x_connections gauge
x_connections{transport="websocket"} 0
# HELP x_disconnects_total Connections closed, by WebSocket close code (none when unknown, other outside 1000-1015).
# TYPE x_disconnects_total counter
x_disconnects_total{code="other",transport="websocket"} 500
# HELP x_pubsub_errors_total PubSub adapter failures, by operation.
# TYPE x_pubsub_errors_total counter
x_pubsub_errors_total{operation="other"} 500
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "x_channel_terminations_total", "x_connections", "x_disconnects_total", "x_pubsub_errors_total"); err != nil {
		t.Fatal(err)
	}
}

func TestPresenceAndQueueEvents(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := plumeprom.New(plumeprom.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	m.HandleEvent(&telemetry.Event{Kind: telemetry.PresenceJoin, Topic: "room:1", Count: 3})
	m.HandleEvent(&telemetry.Event{Kind: telemetry.PresenceJoin, Topic: "room:2", Count: 2})
	m.HandleEvent(&telemetry.Event{Kind: telemetry.PresenceLeave, Topic: "room:1", Count: 1})
	m.HandleEvent(&telemetry.Event{Kind: telemetry.SlowClient, Transport: "websocket", QueueBytes: 1 << 20})
	m.HandleEvent(&telemetry.Event{Kind: telemetry.QueueHighWater, Transport: "websocket", QueueBytes: 64 << 10})
	want := `
# HELP plume_presences Tracked presence metas.
# TYPE plume_presences gauge
plume_presences 4
# HELP plume_queue_high_water_total Outbound queues reaching a new high-water mark (each doubling from 64 KiB).
# TYPE plume_queue_high_water_total counter
plume_queue_high_water_total{transport="websocket"} 1
# HELP plume_slow_client_disconnects_total Connections closed because their outbound queue overflowed.
# TYPE plume_slow_client_disconnects_total counter
plume_slow_client_disconnects_total{transport="websocket"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "plume_presences", "plume_queue_high_water_total", "plume_slow_client_disconnects_total"); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterTwiceFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := plumeprom.New(plumeprom.Options{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := plumeprom.New(plumeprom.Options{Registerer: reg}); err == nil {
		t.Fatal("second registration of the same names succeeded")
	}
	if _, err := plumeprom.New(plumeprom.Options{Registerer: reg, Namespace: "other"}); err != nil {
		t.Fatalf("another namespace: %v", err)
	}
}

func BenchmarkHandleEventPush(b *testing.B) {
	m, _ := plumeprom.New(plumeprom.Options{Registerer: prometheus.NewRegistry()})
	e := &telemetry.Event{Kind: telemetry.Push, Route: "room:*", Topic: "room:1", EventName: "msg", Bytes: 100}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.HandleEvent(e)
		}
	})
}
