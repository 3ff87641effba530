package telemetry

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLoggerWritesPhoenixLinesAndFiltersParams(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(LogOptions{
		Logger:       slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		FilterParams: []string{"card"},
	})
	l.HandleEvent(&Event{Kind: SocketConnected, Transport: "websocket", Params: map[string]any{"user_id": "u1", "token": "s3cret"}})
	l.HandleEvent(&Event{Kind: ChannelJoined, Topic: "room:1", Params: []byte(`{"password":"hunter2","nested":{"credit_card":"4111"},"ok":"visible"}`)})
	l.HandleEvent(&Event{Kind: MessageIn, Topic: "room:1", EventName: "new_msg", Params: []byte(`{"body":"hi"}`)})
	l.HandleEvent(&Event{Kind: ChannelRefused, Topic: "room:2", Reason: "unauthorized"})
	l.HandleEvent(&Event{Kind: MessageIn, Topic: "phoenix", EventName: "heartbeat"})
	out := buf.String()
	for _, want := range []string{"CONNECTED TO socket", "JOINED room:1", "HANDLED new_msg INCOMING ON room:1", "REFUSED JOIN room:2", "visible", "u1"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"s3cret", "hunter2", "4111"} {
		if strings.Contains(out, secret) {
			t.Errorf("log leaks %q:\n%s", secret, out)
		}
	}
	if strings.Contains(out, "heartbeat") {
		t.Errorf("the phoenix topic must not be logged:\n%s", out)
	}
}

func TestLoggerLevelsAndOff(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(LogOptions{
		Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Levels: map[Kind]slog.Level{ChannelJoined: Off, MessageIn: slog.LevelWarn},
	})
	l.HandleEvent(&Event{Kind: ChannelJoined, Topic: "room:1"})
	l.HandleEvent(&Event{Kind: MessageIn, Topic: "room:1", EventName: "x"})
	l.HandleEvent(&Event{Kind: SocketClosed}) // debug by default: below Info
	out := buf.String()
	if strings.Contains(out, "JOINED") || strings.Contains(out, "CLOSED") {
		t.Fatalf("silenced kinds logged:\n%s", out)
	}
	if !strings.Contains(out, "level=WARN msg=\"HANDLED x INCOMING ON room:1\"") {
		t.Fatalf("level override not applied:\n%s", out)
	}
}

func TestUnfilterableParamsAreNotLogged(t *testing.T) {
	l := NewLogger(LogOptions{})
	if got := l.Filter(struct{ Password string }{"x"}); got != "[NOT LOGGED]" {
		t.Fatalf("got %v", got)
	}
	if got := l.Filter([]byte("not json")); got != "[UNPARSABLE]" {
		t.Fatalf("got %v", got)
	}
}

func TestKindNames(t *testing.T) {
	for k := SocketConnected; k <= Drain; k++ {
		if k.String() == "unknown" {
			t.Errorf("kind %d has no name", k)
		}
	}
}
