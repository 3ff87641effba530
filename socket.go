package plume

import (
	"context"
	"strings"
	"time"
)

// Socket defines one kind of connection, like a Phoenix UserSocket module:
// how connections are authenticated and which channels their topics route
// to. The zero value accepts every connection and routes nothing; add routes
// with [Socket.Channel] before mounting it.
type Socket struct {
	// Connect authenticates a connection (connect/3 and id/1). It may set
	// c.ID and c.Assigns. Returning an error refuses the connection with
	// HTTP 403 (long-poll: {"status":403}), or with a close code when
	// RefuseWithClose is set. Nil accepts every connection.
	Connect func(ctx context.Context, c *Conn) error

	// RefuseWithClose makes a WebSocket that Connect refuses complete its
	// upgrade and close at once with a 4xxx close code and the error's
	// message as reason, instead of failing with HTTP 403, which browsers
	// report only as close 1006, so that phoenix.js retries forever without
	// knowing why. The code is 4401 for errors wrapping ErrUnauthorized, the
	// error's own for a [CloseCoder], and 4403 otherwise; pages read it in
	// socket.onClose (docs/refusals.md). Failed origin and vsn checks keep
	// their 403, and long-poll keeps {"status":403}.
	RefuseWithClose bool

	// CheckOrigin validates the Origin header of WebSocket and long-poll
	// requests. Nil compares the Origin host with the request's Host, as
	// Phoenix's default check_origin: true does. Requests without an Origin
	// header pass.
	CheckOrigin OriginChecker

	// MaxChannels caps the channels one connection may join; default 100.
	MaxChannels int
	// IdleTimeout closes a WebSocket that sends nothing for this long;
	// default 60s (phoenix.js heartbeats every 30s).
	IdleTimeout time.Duration
	// MaxFrameSize is the largest inbound frame in bytes; larger frames close
	// the connection with 1009. Default 1 MiB.
	MaxFrameSize int64
	// MaxQueueBytes bounds a connection's outbound queue. A client that lets
	// more than this pile up is closed with 1013, so it can never hold up a
	// broadcaster or grow memory without bound. Default 1 MiB.
	MaxQueueBytes int
	// WriteTimeout bounds one write to the network; default 10s.
	WriteTimeout time.Duration
	// DisableLongPoll turns off the long-poll transport at <mount>/longpoll.
	//
	// Long-poll is on by default, unlike Phoenix 1.8.2 and later (longpoll:
	// false): phoenix.js's longPollFallbackMs, which falls back to long-poll
	// where WebSockets are blocked, needs it, and a Plume session costs little
	// to allow: its token is HMAC-signed and expires, it ends 1.5 ×
	// LongPollWindow after its last poll, and its buffered frames are bounded
	// by MaxQueueBytes like a WebSocket's queue.
	DisableLongPoll bool
	// LongPollWindow is how long a long-poll GET waits for frames before it
	// answers 204, and how long a POST waits for each frame to be handled
	// before it answers 408. A session that is not polled for 1.5 × the
	// window ends. Default 10s (Phoenix's window_ms). Keep it below the
	// http.Server's WriteTimeout, and phoenix.js's longpollerTimeout (20s).
	LongPollWindow time.Duration

	routes []route
}

type route struct {
	pattern    string
	prefix     bool
	newHandler func() ChannelHandler
	assigns    map[string]any
}

// Channel routes topics matching pattern to channels made by newHandler. A
// pattern ending in "*" matches every topic with that prefix ("room:*"
// matches "room:" and "room:42"); any other pattern matches exactly. Routes
// are tried in the order they were added. A "*" anywhere but last panics, as
// it fails to compile in Phoenix.
func (s *Socket) Channel(pattern string, newHandler func() ChannelHandler) {
	s.ChannelWithAssigns(pattern, newHandler, nil)
}

// ChannelWithAssigns is Channel with assigns merged into every joined
// channel's assigns (Phoenix's channel "t", M, assigns: %{...}).
func (s *Socket) ChannelWithAssigns(pattern string, newHandler func() ChannelHandler, assigns map[string]any) {
	if newHandler == nil {
		panic("plume: nil channel handler for " + pattern)
	}
	if i := strings.IndexByte(pattern, '*'); i >= 0 && i != len(pattern)-1 {
		panic("plume: channel pattern " + pattern + ": '*' is allowed only at the end")
	}
	r := route{pattern: pattern, newHandler: newHandler, assigns: assigns}
	if strings.HasSuffix(pattern, "*") {
		r.prefix = true
	}
	s.routes = append(s.routes, r)
}

func (s *Socket) match(topic string) *route {
	for i := range s.routes {
		r := &s.routes[i]
		if r.prefix {
			if strings.HasPrefix(topic, r.pattern[:len(r.pattern)-1]) {
				return r
			}
		} else if topic == r.pattern {
			return r
		}
	}
	return nil
}

// Route returns the pattern that topic routes to, or "" when none matches.
func (s *Socket) Route(topic string) string {
	if r := s.match(topic); r != nil {
		return r.pattern
	}
	return ""
}

func (s *Socket) maxChannels() int {
	if s.MaxChannels > 0 {
		return s.MaxChannels
	}
	return 100
}

func (s *Socket) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return 60 * time.Second
}

func (s *Socket) maxFrameSize() int64 {
	if s.MaxFrameSize > 0 {
		return s.MaxFrameSize
	}
	return 1 << 20
}

func (s *Socket) maxQueueBytes() int {
	if s.MaxQueueBytes > 0 {
		return s.MaxQueueBytes
	}
	return 1 << 20
}

func (s *Socket) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return 10 * time.Second
}
