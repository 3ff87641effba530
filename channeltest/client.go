package channeltest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/wire"
)

// Client is one connection of the socket under test, driven by the test in
// place of phoenix.js. It joins topics, and records every frame the server
// sends it for the assertions of its [Channel] values.
type Client struct {
	h    *Harness
	conn *plume.Conn
	tr   *transport
	box  inbox
	refs atomic.Uint64

	sendMu sync.Mutex // one sender at a time, like a transport's reader
}

// Conn returns the server side of the connection: its ID, Assigns and
// Params as the Connect callback left them.
func (c *Client) Conn() *plume.Conn { return c.conn }

// Join joins topic with payload (nil sends {}) through the socket's routes,
// synchronously as Phoenix does, and returns the joined channel (join/3).
// A refused join returns a [*JoinError] holding the error reply; a topic no
// route matches returns [ErrUnmatchedTopic].
func (c *Client) Join(topic string, payload any) (*Channel, error) {
	c.h.t.Helper()
	return c.join(topic, payload)
}

// SubscribeAndJoin subscribes the test to topic's broadcasts (see
// [Harness.Subscribe]) and then joins it (subscribe_and_join/3), so that the
// channel's [Channel.AssertBroadcast] sees what is broadcast on the topic.
func (c *Client) SubscribeAndJoin(topic string, payload any) (*Channel, error) {
	c.h.t.Helper()
	c.h.Subscribe(topic)
	return c.join(topic, payload)
}

func (c *Client) join(topic string, payload any) (*Channel, error) {
	c.h.t.Helper()
	if c.tr.isClosed() {
		return nil, ErrClosed
	}
	ref := c.nextRef()
	c.send(ref, ref, topic, wire.EventJoin, payload)
	// Joins are synchronous: the reply is there when HandleFrame returns.
	m, ok := c.box.take(func(m *message) bool {
		return m.kind == kindReply && m.ref == ref && m.topic == topic
	}, c.h.assert)
	switch {
	case !ok && c.tr.isClosed():
		return nil, ErrClosed
	case !ok:
		return nil, fmt.Errorf("channeltest: no reply to the join of %q within %v", topic, c.h.assert)
	case m.status == "ok":
		return &Channel{c: c, topic: topic, joinRef: ref, reply: m.payload}, nil
	case m.joinRef == "":
		// The router's "unmatched topic" reply is the only one without a
		// join_ref.
		return nil, fmt.Errorf("%w %s", ErrUnmatchedTopic, quote(topic))
	}
	return nil, &JoinError{Topic: topic, Reply: m.payload}
}

// Close closes the connection from the client side, as when the browser
// goes away (close/1): every channel stops with [plume.ErrClosed], and Close
// returns once their Terminate callbacks have run. It is called when the
// test ends; calling it again does nothing.
func (c *Client) Close() {
	c.tr.mu.Lock()
	if !c.tr.closed {
		c.tr.closed = true
		close(c.tr.closedCh)
	}
	c.tr.mu.Unlock()
	c.conn.Terminate()
	c.tr.wg.Wait()
}

// AssertDisconnect waits for the server to close the connection with code
// (plume.CloseGoingAway after [plume.Endpoint.Disconnect] of the socket id,
// plume.CloseServiceRestart on [plume.Endpoint.Shutdown], ...), then for its
// channels to stop.
func (c *Client) AssertDisconnect(code int) {
	c.h.t.Helper()
	if !c.tr.waitClosed(c.h.assert) {
		c.h.t.Fatalf("channeltest: AssertDisconnect(%d): the connection is still open after %v", code, c.h.assert)
	}
	c.tr.mu.Lock()
	got, reason := c.tr.code, c.tr.reason
	c.tr.mu.Unlock()
	switch {
	case got == 0:
		c.h.t.Fatalf("channeltest: AssertDisconnect(%d): the test closed the connection", code)
	case got != code:
		c.h.t.Fatalf("channeltest: AssertDisconnect(%d): the server closed the connection with %d %q", code, got, reason)
	}
	<-c.conn.Done()
}

func (c *Client) nextRef() Ref { return Ref(strconv.FormatUint(c.refs.Add(1), 10)) }

// send feeds one client frame to the connection, encoded as phoenix.js
// would: a V2 array in a text frame, or a binary push for binary payloads.
func (c *Client) send(joinRef, ref Ref, topic, event string, payload any) {
	c.h.t.Helper()
	if c.tr.isClosed() {
		c.h.t.Fatalf("channeltest: %s on %s: the connection is closed", event, quote(topic))
	}
	data, binary, err := encode(payload)
	if err != nil {
		c.h.t.Fatalf("channeltest: %s on %s: payload: %v", event, quote(topic), err)
	}
	var frame []byte
	if binary {
		fields := []string{string(joinRef), string(ref), topic, event}
		frame = []byte{0}
		for _, f := range fields {
			if len(f) > 255 {
				c.h.t.Fatalf("channeltest: %s on %s: binary frame field longer than 255 bytes", event, quote(topic))
			}
			frame = append(frame, byte(len(f)))
		}
		for _, f := range fields {
			frame = append(frame, f...)
		}
		frame = append(frame, data...)
	} else {
		head, err := json.Marshal([]any{string(joinRef), string(ref), topic, event})
		if err != nil {
			c.h.t.Fatalf("channeltest: %s on %s: %v", event, quote(topic), err)
		}
		frame = append(head[:len(head)-1], ',')
		frame = append(frame, data...)
		frame = append(frame, ']')
	}
	c.sendMu.Lock()
	err = c.conn.HandleFrame(frame, binary)
	c.sendMu.Unlock()
	if err != nil {
		c.h.t.Fatalf("channeltest: %s on %s: the server refused the frame %s: %v", event, quote(topic), frame, err)
	}
}

// encode turns a payload given by a test into JSON text or binary bytes.
func encode(v any) (data []byte, binary bool, err error) {
	switch p := v.(type) {
	case nil:
		return []byte("{}"), false, nil
	case plume.Binary:
		return p, true, nil
	case []byte:
		return p, true, nil
	case plume.Payload:
		if p.IsBinary() {
			return p.Bytes(), true, nil
		}
		if len(p.Bytes()) == 0 {
			return []byte("null"), false, nil
		}
		return p.Bytes(), false, nil
	case *plume.Payload:
		return encode(*p)
	case json.RawMessage:
		if len(p) == 0 {
			return []byte("null"), false, nil
		}
		if !json.Valid(p) {
			return nil, false, fmt.Errorf("invalid JSON %q", p)
		}
		return p, false, nil
	}
	b, err := json.Marshal(v)
	return b, false, err
}

// transport is the in-memory plume.Transport: it records what the server
// sends, and tears the connection down when the server closes it.
type transport struct {
	c     *Client
	ready chan struct{} // closed once c.conn is set
	wg    sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	closedCh chan struct{}
	code     int // 0 when the test closed the connection
	reason   string
}

func (t *transport) Name() string { return TransportName }

func (t *transport) Send(f wire.Frame) bool {
	if t.isClosed() {
		return false
	}
	t.c.box.put(decodeFrame(f))
	return true
}

// Close is the server closing the connection: the client is gone, so the
// connection terminates, on its own goroutine because Close may be called
// from a channel callback that Terminate waits for.
func (t *transport) Close(code int, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed, t.code, t.reason = true, code, reason
	close(t.closedCh)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		<-t.ready
		if t.c.conn != nil {
			t.c.conn.Terminate()
		}
	}()
}

func (t *transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

func (t *transport) waitClosed(timeout time.Duration) bool { return waitChan(t.closedCh, timeout) }
