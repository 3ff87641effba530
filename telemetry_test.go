package plume_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/telemetry"
)

type eventLog struct {
	mu     sync.Mutex
	events []telemetry.Event
}

func (l *eventLog) HandleEvent(e *telemetry.Event) {
	l.mu.Lock()
	l.events = append(l.events, *e)
	l.mu.Unlock()
}

func (l *eventLog) wait(t *testing.T, kind telemetry.Kind, match func(telemetry.Event) bool) telemetry.Event {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for _, e := range l.events {
			if e.Kind == kind && (match == nil || match(e)) {
				l.mu.Unlock()
				return e
			}
		}
		l.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %s event", kind)
	return telemetry.Event{}
}

type guardedRoom struct{}

func (guardedRoom) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	if p.Map()["key"] != "open" {
		return nil, errors.New("unauthorized")
	}
	return nil, nil
}

func (guardedRoom) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	if event == "shout" {
		return plume.ReplyOK(nil), ch.Broadcast("shout", p)
	}
	return plume.NoReply, nil
}

func TestTelemetryEventsAndFilteredLogs(t *testing.T) {
	leakcheck.Check(t)
	var logs bytes.Buffer
	var logMu sync.Mutex
	events := &eventLog{}
	sock := &plume.Socket{}
	sock.Channel("room:*", func() plume.ChannelHandler { return guardedRoom{} })
	ep := plume.NewEndpoint(plume.Options{
		Logger:       slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		FilterParams: []string{"secret_code"},
		Telemetry:    events,
	})
	ep.Mount("/socket", sock)
	srv := httptest.NewServer(ep)
	defer srv.Close()

	c := dialRaw(t, srv, "vsn=2.0.0&token=tok123&user=u1", nil)
	c.send(`["1","1","room:a","phx_join",{"key":"nope","secret_code":"9999"}]`)
	c.expect(`["1","1","room:a","phx_reply",{"response":{"reason":"unauthorized"},"status":"error"}]`)
	refused := events.wait(t, telemetry.ChannelRefused, nil)
	if refused.Reason != "unauthorized" || refused.Route != "room:*" || refused.Topic != "room:a" {
		t.Fatalf("refused event %+v", refused)
	}
	c.send(`["2","2","room:b","phx_join",{"key":"open","password":"hunter2"}]`)
	c.expect(`["2","2","room:b","phx_reply",{"response":{},"status":"ok"}]`)
	joined := events.wait(t, telemetry.ChannelJoined, nil)
	if joined.Route != "room:*" || joined.Topic != "room:b" || joined.Transport != "websocket" {
		t.Fatalf("joined event %+v", joined)
	}
	c.send(`["2","3","room:b","shout",{"n":1}]`)
	c.expect(`[null,null,"room:b","shout",{"n":1}]`)
	c.expect(`["2","3","room:b","phx_reply",{"response":{},"status":"ok"}]`)
	b := events.wait(t, telemetry.Broadcast, nil)
	if b.Subscribers != 1 || b.EventName != "shout" {
		t.Fatalf("broadcast event %+v", b)
	}
	events.wait(t, telemetry.MessageIn, func(e telemetry.Event) bool { return e.EventName == "shout" })
	c.Close()
	closed := events.wait(t, telemetry.SocketClosed, nil)
	if closed.Transport != "websocket" {
		t.Fatalf("closed event %+v", closed)
	}
	ep.Shutdown(context.Background())

	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	for _, want := range []string{"CONNECTED TO socket", "REFUSED JOIN room:a", "JOINED room:b", "HANDLED shout INCOMING ON room:b"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"tok123", "9999", "hunter2"} {
		if strings.Contains(out, secret) {
			t.Errorf("log leaks %q:\n%s", secret, out)
		}
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

type vipRoom struct{}

func (vipRoom) Join(*plume.Channel, string, plume.Payload) (any, error) {
	return nil, plume.RefuseJoin(map[string]any{"reason": "members_only", "hint": "ask an admin"})
}

// TestRefusedJoinReasonComesFromTheReply: telemetry names a RefuseJoin by
// its reply's "reason", the Phoenix convention, so metrics can count it.
func TestRefusedJoinReasonComesFromTheReply(t *testing.T) {
	leakcheck.Check(t)
	events := &eventLog{}
	sock := &plume.Socket{}
	sock.Channel("vip:*", func() plume.ChannelHandler { return vipRoom{} })
	ep := plume.NewEndpoint(plume.Options{Telemetry: events})
	ep.Mount("/socket", sock)
	srv := httptest.NewServer(ep)
	defer srv.Close()
	c := dialRaw(t, srv, "vsn=2.0.0", nil)
	defer c.Close()
	c.send(`["1","1","vip:1","phx_join",{}]`)
	c.expect(`["1","1","vip:1","phx_reply",{"response":{"hint":"ask an admin","reason":"members_only"},"status":"error"}]`)
	if e := events.wait(t, telemetry.ChannelRefused, nil); e.Reason != "members_only" {
		t.Fatalf("reason %q, want members_only", e.Reason)
	}
}
