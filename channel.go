package plume

import (
	"context"
	"time"
)

// ChannelHandler is a channel's code: Join is Phoenix's join/3. Join returns
// the reply payload for the client (nil replies {}), or an error to refuse
// the join: a [JoinError] carries its own reply, any other error replies
// {"reason": err.Error()}. Pushes made during Join are sent after the reply.
//
// The handler may also implement [InHandler], [InfoHandler], [OutHandler] and
// [Terminator]. One handler value serves one joined topic of one connection,
// and its methods are never called concurrently.
type ChannelHandler interface {
	Join(ch *Channel, topic string, payload Payload) (reply any, err error)
}

// InHandler handles events pushed by the client (handle_in/3). The returned
// [Reply] is sent unless it is [NoReply]. A non-nil error stops the channel
// after the reply is sent: a [ShutdownError] (such as [ErrNormal]) closes it
// gracefully with phx_close, any other error is a crash (phx_error).
type InHandler interface {
	HandleIn(ch *Channel, event string, payload Payload) (Reply, error)
}

// InfoHandler receives the channel's own messages (handle_info/2): values
// sent with [Channel.Send] and [Channel.SendAfter], and [Broadcast] values
// from topics subscribed with [Channel.Subscribe]. A non-nil error stops the
// channel as for HandleIn.
type InfoHandler interface {
	HandleInfo(ch *Channel, msg any) error
}

// OutHandler intercepts broadcasts on the channel's topic (intercept +
// handle_out/3): events listed by Intercept go to HandleOut, which decides
// what to push; all other events are fastlaned to the client unchanged.
type OutHandler interface {
	Intercept() []string
	HandleOut(ch *Channel, event string, payload Payload) error
}

// Terminator is told why a channel stopped (terminate/2): [ErrLeft],
// [ErrClosed], [ErrDuplicateJoin], [ErrDraining], or the error a callback
// returned. It is not called after a panic.
type Terminator interface {
	Terminate(ch *Channel, reason error)
}

// Broadcast is a message received from a subscribed topic.
type Broadcast struct {
	Topic   string
	Event   string
	Payload Payload
}

// Context returns a context that is cancelled when the channel stops.
func (ch *Channel) Context() context.Context { return ch.ctx }

// Topic returns the channel's topic.
func (ch *Channel) Topic() string { return ch.topic }

// JoinRef returns the ref of the join that started this channel.
func (ch *Channel) JoinRef() string { return ch.joinRef.String() }

// Conn returns the connection the channel runs on.
func (ch *Channel) Conn() *Conn { return ch.conn }

// SocketID returns the connection's socket id, or "".
func (ch *Channel) SocketID() string { return ch.conn.id }

// Assign sets a channel assign. Assigns start as a copy of the connection's.
func (ch *Channel) Assign(key string, value any) { ch.Assigns[key] = value }

// Push sends an event to this client only (push/3). The payload must encode
// to a JSON object, or be [Binary].
func (ch *Channel) Push(event string, payload any) error {
	data, bin, err := encodeObject(payload)
	if err != nil {
		return err
	}
	return ch.pushRaw(event, data, bin)
}

// Broadcast sends an event to every subscriber of the channel's topic on
// every node, this client included (broadcast/3).
func (ch *Channel) Broadcast(event string, payload any) error {
	return ch.conn.endpoint.broadcastFrom(ch.ctx, nil, ch.topic, event, payload)
}

// BroadcastFrom is Broadcast that skips this channel's own client
// (broadcast_from/3).
func (ch *Channel) BroadcastFrom(event string, payload any) error {
	return ch.conn.endpoint.broadcastFrom(ch.ctx, ch, ch.topic, event, payload)
}

// SocketRef returns a reference to the message being handled, for replying
// later from another goroutine. It fails outside HandleIn.
func (ch *Channel) SocketRef() (SocketRef, error) {
	if ch.curRef == "" {
		return SocketRef{}, ErrNoMessage
	}
	return SocketRef{ch: ch, joinRef: ch.joinRef, ref: ch.curRef}, nil
}

// Send delivers msg to the channel's HandleInfo, after the current callback
// (send(self(), msg)). It is safe from any goroutine and never blocks.
func (ch *Channel) Send(msg any) {
	ch.box.post(func() { ch.handleInfo(msg) })
}

// SendAfter delivers msg to HandleInfo after d (Process.send_after). The
// returned func cancels it. Timers stop with the channel.
func (ch *Channel) SendAfter(d time.Duration, msg any) (cancel func() bool) {
	t := time.AfterFunc(d, func() { ch.Send(msg) })
	context.AfterFunc(ch.ctx, func() { t.Stop() })
	return t.Stop
}

// Subscribe subscribes the channel to another topic; its broadcasts arrive in
// HandleInfo as [Broadcast] values. Subscriptions end with the channel.
func (ch *Channel) Subscribe(topic string) error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.stopped {
		return ErrChannelClosed
	}
	if ch.infoSub == nil {
		ch.infoSub = &infoSubscriber{ch}
	}
	for _, t := range ch.extraTopics {
		if t == topic {
			return nil
		}
	}
	ch.extraTopics = append(ch.extraTopics, topic)
	return ch.conn.endpoint.pubsub.Subscribe(topic, ch.infoSub)
}

// Unsubscribe ends a subscription made with Subscribe.
func (ch *Channel) Unsubscribe(topic string) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for i, t := range ch.extraTopics {
		if t == topic {
			ch.extraTopics = append(ch.extraTopics[:i], ch.extraTopics[i+1:]...)
			ch.conn.endpoint.pubsub.Unsubscribe(topic, ch.infoSub)
			return
		}
	}
}

// Stop stops the channel from outside its callbacks, as if a callback had
// returned reason.
func (ch *Channel) Stop(reason error) {
	ch.box.post(func() { ch.stop(reason, nil) })
}
