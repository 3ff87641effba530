package client

import (
	"context"
	"slices"

	"github.com/plumehq/plume/wire"
)

// ChannelState is the state of a [Channel], as in phoenix.js.
type ChannelState string

// Channel states.
const (
	StateClosed  ChannelState = "closed"
	StateErrored ChannelState = "errored"
	StateJoined  ChannelState = "joined"
	StateJoining ChannelState = "joining"
	StateLeaving ChannelState = "leaving"
)

// Channel is one topic on a [Socket], with phoenix.js's channel semantics:
//
//   - Join sends phx_join; every later attempt (after an error reply, a
//     timeout, a phx_error from the server or a reconnect) gets a fresh
//     join ref, and retries back off with RejoinAfter.
//   - Pushes made while not joined wait in a buffer and go out after the
//     next successful join; their timeout runs from the moment of the push.
//   - Messages whose join_ref is set and differs from the channel's current
//     join ref are stale and dropped.
//   - phx_error makes the channel errored and rejoin; phx_close (or Leave)
//     closes it for good.
//
// Handlers run on the socket's callback goroutine (see [Socket]).
type Channel struct {
	s      *Socket
	topic  string
	params any

	// Guarded by s.mu.
	state       ChannelState
	joinedOnce  bool
	removed     bool
	joinPush    *push
	pushBuffer  []*push
	rejoinTimer backoff
	bindings    []binding
	bindingRef  Ref
	pending     map[string]*push // ref → push awaiting its reply
	joinWaiter  chan result
}

type binding struct {
	event string
	ref   Ref
	h     func(Message)
}

type result struct {
	reply Reply
	err   error
}

func newChannel(s *Socket, topic string, params any) *Channel {
	ch := &Channel{
		s:       s,
		topic:   topic,
		params:  params,
		state:   StateClosed,
		pending: make(map[string]*push),
	}
	ch.joinPush = &push{ch: ch, event: wire.EventJoin, payload: ch.joinPayload, timeout: s.opts.Timeout, hook: ch.joinReplied}
	ch.rejoinTimer = backoff{s: s, calc: s.opts.RejoinAfter, fn: func() {
		if s.isConnected() {
			ch.rejoin()
		}
	}}
	return ch
}

// Topic returns the channel's topic.
func (ch *Channel) Topic() string { return ch.topic }

// State returns the channel's state.
func (ch *Channel) State() ChannelState {
	ch.s.mu.Lock()
	defer ch.s.mu.Unlock()
	return ch.state
}

// JoinRef returns the ref of the channel's current join attempt, which
// every message of this join carries, or "" between attempts.
func (ch *Channel) JoinRef() string {
	ch.s.mu.Lock()
	defer ch.s.mu.Unlock()
	return ch.joinRef()
}

// Join joins the channel and waits for the first reply. It returns the
// server's reply and nil when the join succeeded; [ErrRefused] with the
// reply when the server refused it; [ErrTimeout] when no reply came within
// the socket's Timeout. After a refusal or a timeout the channel keeps
// retrying with RejoinAfter, as phoenix.js does, until [Channel.Leave]; it
// also rejoins by itself after a server-side crash or a reconnect. ctx only
// bounds the wait. Join may be called once per Channel.
func (ch *Channel) Join(ctx context.Context) (Reply, error) {
	s := ch.s
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return Reply{}, ErrClosed
	case ch.joinedOnce:
		s.mu.Unlock()
		return Reply{}, ErrAlreadyJoined
	case ch.removed:
		s.mu.Unlock()
		return Reply{}, ErrChannelClosed
	}
	if _, _, err := ch.encodeParams(); err != nil {
		s.mu.Unlock()
		return Reply{}, err
	}
	ch.joinedOnce = true
	w := make(chan result, 1)
	ch.joinWaiter = w
	ch.rejoin()
	s.mu.Unlock()
	select {
	case r := <-w:
		return r.reply, r.err
	case <-ctx.Done():
		s.mu.Lock()
		if ch.joinWaiter == w {
			ch.joinWaiter = nil
		}
		s.mu.Unlock()
		select {
		case r := <-w:
			return r.reply, r.err
		default:
		}
		return Reply{}, ctx.Err()
	}
}

// Push sends an event and waits for the server's reply. Any reply status
// returns err == nil: check Reply.Status (or Reply.OK). Without a reply
// within the socket's Timeout it returns [ErrTimeout] and a Reply with
// status "timeout". A push made while the channel is not joined is buffered
// and sent after the next successful join, as in phoenix.js; its timeout
// runs from now.
//
// payload is a JSON value as for [Socket.Channel], json.RawMessage, or
// [Binary] for a binary frame. When ctx is done first, Push returns
// ctx.Err() and the push is abandoned: dropped if still buffered, its reply
// ignored if already sent.
func (ch *Channel) Push(ctx context.Context, event string, payload any) (Reply, error) {
	data, bin, err := encodePayload(payload)
	if err != nil {
		return Reply{}, err
	}
	s := ch.s
	if bin {
		if s.ser.Vsn() == wire.V1.Vsn() {
			return Reply{}, wire.ErrBinaryUnsupported
		}
		if err := checkBinaryFields(ch.topic, event); err != nil {
			return Reply{}, err
		}
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return Reply{}, ErrClosed
	case !ch.joinedOnce:
		s.mu.Unlock()
		return Reply{}, ErrNotJoined
	case ch.removed:
		s.mu.Unlock()
		return Reply{}, ErrChannelClosed
	}
	w := make(chan result, 1)
	p := &push{
		ch:      ch,
		event:   event,
		payload: func() ([]byte, bool) { return data, bin },
		timeout: s.opts.Timeout,
		waiter:  w,
	}
	if ch.canPush() {
		p.send()
	} else {
		p.startTimeout()
		ch.pushBuffer = append(ch.pushBuffer, p)
	}
	s.mu.Unlock()
	select {
	case r := <-w:
		return r.reply, r.err
	case <-ctx.Done():
		s.mu.Lock()
		p.abandon()
		s.mu.Unlock()
		select {
		case r := <-w:
			return r.reply, r.err
		default:
		}
		return Reply{}, ctx.Err()
	}
}

// Leave leaves the channel: it sends phx_leave and closes the channel at
// once, as phoenix.js does (the channel stops rejoining, its handlers get
// phx_close, and it is removed from the socket). If the leave was sent, it
// then waits for the server's acknowledgement, the socket's Timeout or ctx,
// whichever comes first. Leaving a closed channel is a no-op.
func (ch *Channel) Leave(ctx context.Context) error {
	s := ch.s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if ch.removed {
		s.mu.Unlock()
		return nil
	}
	lw := ch.leave()
	s.mu.Unlock()
	if lw == nil {
		return nil
	}
	select {
	case <-lw.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// On registers a handler for an event; it returns a ref for Off. Handlers
// of one event run in registration order. Besides the server's events,
// "phx_error" and "phx_close" also fire locally: phx_error with
// {"source":"transport","reason":...} when the connection is lost, and
// phx_close with "leave" after Leave.
func (ch *Channel) On(event string, h func(Message)) Ref {
	ch.s.mu.Lock()
	defer ch.s.mu.Unlock()
	ref := ch.bindingRef
	ch.bindingRef++
	ch.bindings = append(ch.bindings, binding{event, ref, h})
	return ref
}

// OnError registers a handler for phx_error: a crash on the server or a
// lost connection. The channel rejoins by itself.
func (ch *Channel) OnError(h func(Message)) Ref { return ch.On(wire.EventError, h) }

// OnClose registers a handler for phx_close: the channel closed for good.
func (ch *Channel) OnClose(h func(Message)) Ref { return ch.On(wire.EventClose, h) }

// Off removes the handler registered with ref.
func (ch *Channel) Off(ref Ref) {
	ch.s.mu.Lock()
	defer ch.s.mu.Unlock()
	ch.bindings = slices.DeleteFunc(ch.bindings, func(b binding) bool { return b.ref == ref })
}

// OffEvent removes every handler of event.
func (ch *Channel) OffEvent(event string) {
	ch.s.mu.Lock()
	defer ch.s.mu.Unlock()
	ch.bindings = slices.DeleteFunc(ch.bindings, func(b binding) bool { return b.event == event })
}

// ---- internals; everything below runs with s.mu held ----

func (ch *Channel) joinRef() string { return ch.joinPush.ref }

func (ch *Channel) canPush() bool { return ch.s.isConnected() && ch.state == StateJoined }

func (ch *Channel) encodeParams() ([]byte, bool, error) {
	v := ch.params
	switch f := v.(type) {
	case func() any:
		v = f()
	case func() map[string]any:
		v = f()
	}
	return encodePayload(v)
}

func (ch *Channel) joinPayload() ([]byte, bool) {
	data, bin, err := ch.encodeParams()
	if err != nil {
		ch.s.log.Warn("join params do not encode; joining with {}", "topic", ch.topic, "err", err)
		return []byte("{}"), false
	}
	return data, bin
}

// rejoin sends a new join attempt with a fresh join ref.
func (ch *Channel) rejoin() {
	if ch.state == StateLeaving {
		return
	}
	ch.s.leaveOpenTopic(ch.topic)
	ch.state = StateJoining
	ch.joinPush.resend(ch.s.opts.Timeout)
}

// joinReplied is the join push's hook: phoenix.js's joinPush.receive
// callbacks for "ok", "error" and "timeout".
func (ch *Channel) joinReplied(r Reply) {
	s := ch.s
	var err error
	switch r.Status {
	case StatusOK:
		ch.state = StateJoined
		ch.rejoinTimer.reset()
		buf := ch.pushBuffer
		ch.pushBuffer = nil
		for _, p := range buf {
			p.send()
		}
	case StatusError:
		ch.state = StateErrored
		if s.isConnected() {
			ch.rejoinTimer.schedule()
		}
		err = ErrRefused
	case StatusTimeout:
		s.log.Debug("join timeout", "topic", ch.topic, "join_ref", ch.joinRef())
		leave := &push{ch: ch, event: wire.EventLeave, payload: emptyPayload, timeout: s.opts.Timeout}
		leave.send()
		ch.state = StateErrored
		ch.joinPush.reset()
		if s.isConnected() {
			ch.rejoinTimer.schedule()
		}
		err = ErrTimeout
	default:
		err = ErrRefused
	}
	if w := ch.joinWaiter; w != nil {
		ch.joinWaiter = nil
		w <- result{r, err}
	}
}

func emptyPayload() ([]byte, bool) { return []byte("{}"), false }

// leave is phoenix.js's channel.leave: the channel closes locally at once.
// It returns a waiter for the server's acknowledgement when the leave was
// sent, or nil.
func (ch *Channel) leave() *leaveWait {
	s := ch.s
	ch.rejoinTimer.reset()
	ch.joinPush.cancelTimeout()
	ch.state = StateLeaving
	connected := s.isConnected()
	lp := &push{ch: ch, event: wire.EventLeave, payload: emptyPayload, timeout: s.opts.Timeout}
	lp.send()
	ref := lp.ref
	// phoenix.js: canPush is false while leaving, so the leave resolves
	// "ok" at once and the channel closes without waiting for the server.
	lp.trigger(StatusOK)
	ch.triggerLocal(wire.EventClose, []byte(`"leave"`))
	if !connected {
		return nil
	}
	lw := &leaveWait{done: make(chan struct{})}
	lw.timer = s.after(s.opts.Timeout, func() {
		if s.leaves[ref] == lw {
			delete(s.leaves, ref)
			close(lw.done)
		}
	})
	s.leaves[ref] = lw
	return lw
}

// isMember is phoenix.js's isMember: the topic matches and the message is
// not addressed to an earlier join.
func (ch *Channel) isMember(m *inMsg) bool {
	if ch.topic != m.topic {
		return false
	}
	if m.joinRef != "" && m.joinRef != ch.joinRef() {
		ch.s.log.Debug("dropping outdated message", "topic", m.topic, "event", m.event, "join_ref", m.joinRef)
		return false
	}
	return true
}

// trigger handles a message routed to the channel: replies resolve their
// push, phx_close and phx_error change the state, then the handlers run.
func (ch *Channel) trigger(m *inMsg) {
	switch m.event {
	case wire.EventReply:
		if p := ch.pending[m.ref]; p != nil {
			p.matchReply(Reply{Status: m.status, Response: m.response, Binary: m.binary})
		}
	case wire.EventClose:
		ch.onClose()
	case wire.EventError:
		ch.onError()
	}
	joinRef := m.joinRef
	if joinRef == "" {
		joinRef = ch.joinRef()
	}
	ch.dispatch(Message{Topic: m.topic, Event: m.event, Payload: m.payload, Binary: m.binary, Ref: m.ref, JoinRef: joinRef})
}

// triggerLocal fires an event the client makes up (phx_error on a lost
// connection, phx_close after a leave).
func (ch *Channel) triggerLocal(event string, payload []byte) {
	switch event {
	case wire.EventClose:
		ch.onClose()
	case wire.EventError:
		ch.onError()
	}
	ch.dispatch(Message{Topic: ch.topic, Event: event, Payload: payload, JoinRef: ch.joinRef()})
}

func (ch *Channel) dispatch(m Message) {
	var hs []func(Message)
	for _, b := range ch.bindings {
		if b.event == m.Event {
			hs = append(hs, b.h)
		}
	}
	if len(hs) == 0 {
		return
	}
	ch.s.disp.post(func() {
		for _, h := range hs {
			h(m)
		}
	})
}

// onClose closes the channel for good and removes it from the socket.
func (ch *Channel) onClose() {
	ch.rejoinTimer.reset()
	ch.state = StateClosed
	ch.removed = true
	ch.s.remove(ch)
	ch.shutdown(ErrChannelClosed)
}

// onError makes the channel errored; it rejoins after RejoinAfter, or when
// the socket opens again.
func (ch *Channel) onError() {
	if ch.state == StateJoining {
		ch.joinPush.reset()
	}
	ch.state = StateErrored
	if ch.s.isConnected() {
		ch.rejoinTimer.schedule()
	}
}

// shutdown fails everything waiting on the channel with err: its join, its
// buffered and in-flight pushes. Used when it closes and on Socket.Close.
func (ch *Channel) shutdown(err error) {
	ch.rejoinTimer.reset()
	if w := ch.joinWaiter; w != nil {
		ch.joinWaiter = nil
		w <- result{err: err}
	}
	buf := ch.pushBuffer
	ch.pushBuffer = nil
	for _, p := range buf {
		p.fail(err)
	}
	for _, p := range ch.pending {
		if p.waiter != nil {
			p.fail(err)
		}
	}
	if err == ErrClosed {
		ch.joinPush.cancelTimeout()
		for _, p := range ch.pending {
			p.cancelTimeout()
		}
	}
}
