package plume

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plumehq/plume/pubsub"
	"github.com/plumehq/plume/telemetry"
	"github.com/plumehq/plume/wire"
)

// WebSocket close codes Plume uses. phoenix.js before 1.8.13 does not
// reconnect after 1000, so the server never closes with 1000 on its own
// initiative.
const (
	CloseNormal         = 1000
	CloseGoingAway      = 1001 // "disconnect" broadcast on the socket id
	CloseProtocolError  = 1002 // idle timeout (as Bandit), framing errors
	CloseInvalidData    = 1007 // text frame that is not UTF-8
	CloseTooBig         = 1009 // frame above MaxFrameSize
	CloseInternalError  = 1011 // malformed Phoenix frame
	CloseServiceRestart = 1012 // drain on shutdown
	CloseTryAgainLater  = 1013 // outbound queue overflow (slow client)
)

// Transport names.
const (
	TransportWebSocket = "websocket"
	TransportLongPoll  = "longpoll"
)

// ConnectInfo is what a connect callback may know about the request
// (Phoenix's connect_info).
type ConnectInfo struct {
	// Peer is the remote address.
	Peer netip.AddrPort
	// URI is the request URI, with scheme and host filled in.
	URI *url.URL
	// XHeaders are the request headers whose names start with "x-".
	XHeaders http.Header
	// UserAgent is the User-Agent header.
	UserAgent string
	// AuthToken is the token phoenix.js sends with its authToken option:
	// in the Sec-WebSocket-Protocol header, or X-Phoenix-AuthToken for
	// long-poll. Empty when none was sent.
	AuthToken string
	// Request is the HTTP request that opened the connection. It is set
	// only while Connect runs: keeping it would cost every idle connection
	// a few kilobytes.
	Request *http.Request
}

// Conn is one client connection (Phoenix's socket before a channel joins).
// The connect callback sets ID and Assigns; after that they are read-only.
type Conn struct {
	// ID names the connection for forced disconnects: broadcasting the event
	// "disconnect" on this topic closes it (Phoenix's id/1). Empty is
	// anonymous.
	ID string
	// Assigns are copied into every channel's assigns at join.
	Assigns map[string]any
	// Params are the connect parameters from the query string.
	Params Params
	// Info describes the request.
	Info ConnectInfo

	id        string
	endpoint  *Endpoint
	socket    *Socket
	ser       wire.Serializer
	transport Transport
	// tname is the transport's name before transport is set (in Connect).
	tname string
	idSub *disconnectSubscriber

	started   time.Time
	closeCode atomic.Int32

	mu       sync.Mutex
	channels map[string]*Channel
	closed   bool
	draining bool
	once     sync.Once
	done     chan struct{}
}

// Transport carries one connection's frames; the WebSocket and long-poll
// transports implement it, and so does the test kit.
type Transport interface {
	// Name is "websocket", "longpoll" or another transport's name.
	Name() string
	// Send queues a frame without blocking. It returns false if the frame was
	// refused because the transport is closed or its queue is full, in which
	// case the transport closes the connection.
	Send(f wire.Frame) bool
	// Close closes the connection with a WebSocket close code and reason.
	Close(code int, reason string)
}

// Assign sets a connection assign; call it from the connect callback.
func (c *Conn) Assign(key string, value any) {
	if c.Assigns == nil {
		c.Assigns = make(map[string]any)
	}
	c.Assigns[key] = value
}

// TransportName returns the name of the connection's transport. It works in
// the connect callback too, before the transport is attached.
func (c *Conn) TransportName() string {
	if c.transport == nil {
		return c.tname
	}
	return c.transport.Name()
}

// Vsn returns the protocol version the client speaks.
func (c *Conn) Vsn() string { return c.ser.Vsn() }

// Serializer returns the connection's serializer.
func (c *Conn) Serializer() wire.Serializer { return c.ser }

// Close closes the connection from the server side with code 1000.
func (c *Conn) Close() { c.transport.Close(CloseNormal, "") }

// Done is closed once the connection and all its channels have ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

type disconnectSubscriber struct{ c *Conn }

func (s *disconnectSubscriber) Deliver(m *pubsub.Message) {
	if m.Event == "disconnect" {
		s.c.transport.Close(CloseGoingAway, "disconnect")
	}
}

func (c *Conn) send(f wire.Frame) bool { return c.transport.Send(f) }

// noteClose records the first close code of the connection, for telemetry.
func (c *Conn) noteClose(code int) { c.closeCode.CompareAndSwap(0, int32(code)) }

func (c *Conn) sendReply(joinRef, ref wire.Ref, topic string, r Reply) error {
	data, bin, err := encodePayload(r.Payload)
	if err != nil {
		return err
	}
	f, err := c.ser.AppendReply(nil, joinRef, ref, topic, r.Status, data, bin)
	if err != nil {
		return err
	}
	if !c.send(f) {
		return ErrConnClosed
	}
	return nil
}

// deliverBroadcast queues a fastlaned broadcast, encoded once per serializer
// for all subscribers.
func (c *Conn) deliverBroadcast(m *pubsub.Message) {
	v, err := m.Encoded(c.ser, func() (any, error) {
		return c.ser.AppendBroadcast(nil, m.Topic, m.Event, m.Payload, m.Binary)
	})
	if err != nil {
		return
	}
	c.send(v.(wire.Frame))
}

// HandleFrame routes one inbound frame. A malformed frame returns an error,
// after which the transport must close the connection with 1011.
func (c *Conn) HandleFrame(data []byte, binary bool) error {
	msg, err := c.ser.Decode(data, binary)
	if err != nil {
		return err
	}
	c.route(&msg)
	return nil
}

// route applies Phoenix's routing rules (phoenix-protocol §1.7).
func (c *Conn) route(msg *wire.Message) {
	if msg.Topic == wire.TopicPhoenix && msg.Event == wire.EventHeartbeat {
		c.sendReply("", msg.Ref, msg.Topic, ReplyOK(nil))
		return
	}
	// V1 clients usually omit join_ref: the join's ref stands in.
	if msg.Event == wire.EventJoin && msg.JoinRef.IsNull() {
		msg.JoinRef = msg.Ref
	}
	c.mu.Lock()
	ch := c.channels[msg.Topic]
	c.mu.Unlock()
	switch {
	case msg.Event == wire.EventJoin:
		c.join(msg, ch)
	case ch == nil && msg.Event == wire.EventLeave:
		c.sendReply(msg.JoinRef, msg.Ref, msg.Topic, ReplyOK(nil))
	case ch == nil:
		c.sendReply("", msg.Ref, msg.Topic, ReplyError(unmatchedTopic))
	case !msg.JoinRef.IsNull() && msg.JoinRef != ch.joinRef:
		// Stale join_ref: the client already got phx_close for it.
	default:
		m := *msg
		ch.box.post(func() { ch.handleIn(&m) })
	}
}

var unmatchedTopic = map[string]string{"reason": "unmatched topic"}

func (c *Conn) join(msg *wire.Message, old *Channel) {
	rt := c.socket.match(msg.Topic)
	if rt == nil {
		c.endpoint.log.Warn("ignoring unmatched topic", "topic", msg.Topic)
		c.endpoint.emit(&telemetry.Event{Kind: telemetry.ChannelRefused, Transport: c.transport.Name(), SocketID: c.id,
			Topic: msg.Topic, Reason: "unmatched topic"})
		c.sendReply("", msg.Ref, msg.Topic, ReplyError(unmatchedTopic))
		return
	}
	// closeOld is the phx_close for a duplicate join's old join_ref, which
	// the client gets right after the new join's reply, before anything the
	// new channel pushes.
	var closeOld []wire.Frame
	if old != nil {
		// Duplicate join: stop the old channel, join anew, then tell the
		// client the old join_ref closed (after the new reply), unless the
		// old channel stopped on its own meanwhile (a leave or crash just
		// before the join) and so has told the client already.
		var stoppedHere atomic.Bool
		old.box.post(func() {
			if !old.isStopped() {
				stoppedHere.Store(true)
			}
			old.stop(ErrDuplicateJoin, nil)
		})
		if !old.waitStopped(5 * time.Second) {
			c.endpoint.log.Error("channel did not stop in 5s on duplicate join", "topic", msg.Topic)
			if old.markStopped() {
				stoppedHere.Store(true)
				old.emit(telemetry.Event{Kind: telemetry.ChannelTerminated, Reason: "duplicate_join", Err: ErrDuplicateJoin})
			}
			old.cleanup()
		}
		if stoppedHere.Load() {
			closeOld = []wire.Frame{appendControl(c.ser, old.joinRef, old.topic, wire.EventClose, []byte("{}"))}
		}
	}
	c.mu.Lock()
	if len(c.channels) >= c.socket.maxChannels() {
		c.mu.Unlock()
		c.endpoint.log.Error("too many channels joined", "topic", msg.Topic, "max", c.socket.maxChannels())
		c.endpoint.emit(&telemetry.Event{Kind: telemetry.ChannelRefused, Transport: c.transport.Name(), SocketID: c.id,
			Topic: msg.Topic, Route: rt.pattern, Reason: "too many channels joined"})
		c.sendReply(msg.JoinRef, msg.Ref, msg.Topic, ReplyError(map[string]string{"reason": "too many channels joined"}))
		c.sendAll(closeOld)
		return
	}
	c.mu.Unlock()
	ch := c.newChannel(msg, rt)
	// A successful join sends these right after its reply.
	ch.joinPushes = closeOld
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.channels[msg.Topic] = ch
	c.mu.Unlock()
	if !ch.join(msg) {
		c.removeChannel(ch)
		c.sendAll(closeOld)
	}
}

func (c *Conn) sendAll(fs []wire.Frame) {
	for _, f := range fs {
		c.send(f)
	}
}

func (c *Conn) newChannel(msg *wire.Message, rt *route) *Channel {
	ctx, cancel := context.WithCancel(context.Background())
	ch := &Channel{
		Assigns: make(map[string]any, len(c.Assigns)+len(rt.assigns)),
		topic:   msg.Topic,
		joinRef: msg.JoinRef,
		pattern: rt.pattern,
		conn:    c,
		handler: rt.newHandler(),
		ctx:     ctx,
		cancel:  cancel,
	}
	for k, v := range c.Assigns {
		ch.Assigns[k] = v
	}
	for k, v := range rt.assigns {
		ch.Assigns[k] = v
	}
	if oh, ok := ch.handler.(OutHandler); ok {
		ch.intercept = make(map[string]bool)
		for _, e := range oh.Intercept() {
			ch.intercept[e] = true
		}
	}
	return ch
}

func (c *Conn) removeChannel(ch *Channel) {
	c.mu.Lock()
	if c.channels[ch.topic] == ch {
		delete(c.channels, ch.topic)
	}
	c.mu.Unlock()
}

// Channels returns how many channels are joined.
func (c *Conn) Channels() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.channels)
}

// start registers a connected Conn: it subscribes to its id topic and joins
// the endpoint's registry.
func (c *Conn) start() {
	c.started = time.Now()
	c.channels = make(map[string]*Channel)
	c.done = make(chan struct{})
	c.id = c.ID
	if c.id != "" {
		c.idSub = &disconnectSubscriber{c}
		c.endpoint.pubsub.Subscribe(c.id, c.idSub)
	}
	c.endpoint.track(c)
}

// Terminate ends the connection's channels with reason (ErrClosed unless
// draining) and waits up to 5 s for them to stop. Transports call it once
// when the connection is gone.
func (c *Conn) Terminate() {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		reason := ErrClosed
		if c.draining {
			reason = ErrDraining
		}
		chans := make([]*Channel, 0, len(c.channels))
		for _, ch := range c.channels {
			chans = append(chans, ch)
		}
		c.channels = nil
		c.mu.Unlock()
		if c.idSub != nil {
			c.endpoint.pubsub.Unsubscribe(c.id, c.idSub)
		}
		for _, ch := range chans {
			ch := ch
			if !ch.box.post(func() { ch.stop(reason, nil) }) {
				continue
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for _, ch := range chans {
			if !ch.waitStopped(time.Until(deadline)) {
				c.endpoint.log.Error("channel did not stop within 5s of its connection closing", "topic", ch.topic)
			}
		}
		c.endpoint.untrack(c)
		if c.endpoint.observing() {
			c.endpoint.emit(&telemetry.Event{Kind: telemetry.SocketClosed, Transport: c.transport.Name(), SocketID: c.id,
				Code: int(c.closeCode.Load()), Duration: time.Since(c.started)})
		}
		close(c.done)
	})
}

// drain stops the connection's channels with ErrDraining and closes it with
// 1012 so that phoenix.js reconnects elsewhere.
func (c *Conn) drain() {
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
	c.transport.Close(CloseServiceRestart, "server restart")
}

var errNoRoute = errors.New("plume: no route")

// connState is shared by transports: counts and ids.
var connSeq atomic.Uint64

func (c *Conn) String() string { return fmt.Sprintf("conn(%s %s)", c.transport.Name(), c.id) }
