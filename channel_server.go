package plume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/plumehq/plume/pubsub"
	"github.com/plumehq/plume/telemetry"
	"github.com/plumehq/plume/wire"
)

// Channel is one joined topic on one connection: the handle every callback
// receives (Phoenix's channel socket). Its methods are safe from any
// goroutine unless noted; Assigns belongs to the callbacks.
type Channel struct {
	// Assigns are the channel's own values, copied from the connection's at
	// join. Read and write them only inside callbacks.
	Assigns map[string]any

	topic     string
	joinRef   wire.Ref
	pattern   string
	conn      *Conn
	handler   ChannelHandler
	intercept map[string]bool
	box       mailbox
	ctx       context.Context
	cancel    context.CancelFunc

	// curRef is the ref of the message being handled (callbacks only).
	curRef wire.Ref
	// joining is true while Join runs; pushes then wait for the reply.
	joining    bool
	joinPushes []wire.Frame

	mu          sync.Mutex
	stopped     bool
	infoSub     *infoSubscriber
	extraTopics []string
}

// infoSubscriber turns broadcasts on extra topics into HandleInfo calls.
type infoSubscriber struct{ ch *Channel }

func (s *infoSubscriber) Deliver(m *pubsub.Message) {
	b := Broadcast{Topic: m.Topic, Event: m.Event, Payload: Payload{data: m.Payload, binary: m.Binary}}
	s.ch.Send(b)
}

// Deliver is the fastlane: a broadcast on the channel's topic is encoded once
// per serializer and queued on the connection, unless the event is
// intercepted, in which case it goes through HandleOut.
func (ch *Channel) Deliver(m *pubsub.Message) {
	if ch.intercept != nil && ch.intercept[m.Event] {
		p := Payload{data: m.Payload, binary: m.Binary}
		ch.box.post(func() { ch.handleOut(m.Event, p) })
		return
	}
	ch.conn.deliverBroadcast(m)
}

func (ch *Channel) logger() *slog.Logger { return ch.conn.endpoint.log }

func (ch *Channel) pushRaw(event string, data []byte, binary bool) error {
	f, err := ch.conn.ser.AppendPush(nil, ch.joinRef, ch.topic, event, data, binary)
	if err != nil {
		return err
	}
	ch.mu.Lock()
	if ch.stopped {
		ch.mu.Unlock()
		return ErrChannelClosed
	}
	if ch.joining {
		ch.joinPushes = append(ch.joinPushes, f)
		ch.mu.Unlock()
		return nil
	}
	ch.mu.Unlock()
	if !ch.conn.send(f) {
		return ErrConnClosed
	}
	if ch.conn.endpoint.observing() {
		ch.emit(telemetry.Event{Kind: telemetry.Push, EventName: event, Bytes: len(data)})
	}
	return nil
}

// emit fills in the channel's fields and sends the event.
func (ch *Channel) emit(ev telemetry.Event) {
	ev.Transport = ch.conn.transport.Name()
	ev.SocketID = ch.conn.id
	ev.Topic = ch.topic
	ev.Route = ch.pattern
	ch.conn.endpoint.emit(&ev)
}

// join runs the handler's Join on the caller's goroutine (joins are
// synchronous, as in Phoenix) with the mailbox held, so that anything the
// channel sends itself during Join runs after the reply.
func (ch *Channel) join(msg *wire.Message) (ok bool) {
	ch.box.hold()
	ch.joining = true
	start := time.Now()
	reply, err := ch.callJoin(msg)
	took := time.Since(start)
	if err != nil {
		ch.mu.Lock()
		ch.stopped = true
		ch.joinPushes = nil
		ch.mu.Unlock()
		ch.cancel()
		ch.box.close()
		ch.box.release()
		var pe *panicError
		if errors.As(err, &pe) {
			ch.logger().Error("channel join crashed", "topic", ch.topic, "panic", fmt.Sprint(pe.value), "stack", string(pe.stack))
			ch.conn.sendReply(msg.JoinRef, msg.Ref, ch.topic, ReplyError(map[string]string{"reason": "join crashed"}))
			ch.emit(telemetry.Event{Kind: telemetry.ChannelRefused, Reason: "join crashed", Params: msg.Payload, Duration: took})
			return false
		}
		var je *JoinError
		if errors.As(err, &je) {
			ch.conn.sendReply(msg.JoinRef, msg.Ref, ch.topic, ReplyError(je.Reply))
		} else {
			ch.conn.sendReply(msg.JoinRef, msg.Ref, ch.topic, ReplyError(map[string]string{"reason": err.Error()}))
		}
		ch.emit(telemetry.Event{Kind: telemetry.ChannelRefused, Reason: refusalReason(err), Params: msg.Payload, Duration: took})
		return false
	}
	if err := ch.conn.endpoint.pubsub.Subscribe(ch.topic, ch); err != nil {
		ch.logger().Warn("subscribe failed", "topic", ch.topic, "err", err)
	}
	ch.conn.sendReply(msg.JoinRef, msg.Ref, ch.topic, ReplyOK(reply))
	ch.mu.Lock()
	ch.joining = false
	pending := ch.joinPushes
	ch.joinPushes = nil
	ch.mu.Unlock()
	for _, f := range pending {
		ch.conn.send(f)
	}
	if ch.conn.endpoint.observing() {
		ch.emit(telemetry.Event{Kind: telemetry.ChannelJoined, Params: msg.Payload, Duration: took})
	}
	ch.box.release()
	return true
}

func (ch *Channel) callJoin(msg *wire.Message) (reply any, err error) {
	defer func() {
		if r := recover(); r != nil {
			reply, err = nil, &panicError{value: r, stack: debug.Stack()}
		}
	}()
	return ch.handler.Join(ch, ch.topic, Payload{data: msg.Payload, binary: msg.Binary})
}

// handleIn runs on the mailbox.
func (ch *Channel) handleIn(msg *wire.Message) {
	if ch.isStopped() {
		return
	}
	// Replies carry the channel's join_ref, as Phoenix's socket.join_ref:
	// the message's may be null.
	if msg.Event == wire.EventLeave {
		ch.conn.sendReply(ch.joinRef, msg.Ref, ch.topic, ReplyOK(nil))
		ch.emit(telemetry.Event{Kind: telemetry.ChannelLeft})
		ch.stop(ErrLeft, nil)
		return
	}
	h, ok := ch.handler.(InHandler)
	if !ok {
		ch.crash(fmt.Errorf("no HandleIn for event %q", msg.Event), nil)
		return
	}
	ch.curRef = msg.Ref
	var reply Reply
	start := time.Now()
	err := ch.guard(func() (err error) {
		reply, err = h.HandleIn(ch, msg.Event, Payload{data: msg.Payload, binary: msg.Binary})
		return err
	})
	ch.curRef = ""
	if ch.conn.endpoint.observing() {
		ev := telemetry.Event{Kind: telemetry.MessageIn, EventName: msg.Event, Bytes: len(msg.Payload), Duration: time.Since(start)}
		if !msg.Binary {
			ev.Params = msg.Payload
		}
		ch.emit(ev)
	}
	var pe *panicError
	if errors.As(err, &pe) {
		ch.crash(err, pe)
		return
	}
	if reply.Status != "" {
		ch.conn.sendReply(ch.joinRef, msg.Ref, ch.topic, reply)
	}
	if err != nil {
		ch.stop(err, nil)
	}
}

func (ch *Channel) handleInfo(msg any) {
	if ch.isStopped() {
		return
	}
	h, ok := ch.handler.(InfoHandler)
	if !ok {
		ch.logger().Warn("channel received a message but has no HandleInfo", "topic", ch.topic, "msg", fmt.Sprintf("%T", msg))
		return
	}
	ch.finish(ch.guard(func() error { return h.HandleInfo(ch, msg) }))
}

func (ch *Channel) handleOut(event string, p Payload) {
	if ch.isStopped() {
		return
	}
	h := ch.handler.(OutHandler)
	ch.finish(ch.guard(func() error { return h.HandleOut(ch, event, p) }))
}

// finish applies a callback's result: nil continues, a panic crashes, any
// other error stops.
func (ch *Channel) finish(err error) {
	if err == nil {
		return
	}
	var pe *panicError
	if errors.As(err, &pe) {
		ch.crash(err, pe)
		return
	}
	ch.stop(err, nil)
}

func (ch *Channel) guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{value: r, stack: debug.Stack()}
		}
	}()
	return f()
}

func (ch *Channel) isStopped() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.stopped
}

// stop ends the channel on its mailbox: Terminate, unsubscribe, and phx_close
// for a graceful reason or phx_error for a crash. notify overrides whether
// the client is told (nil: tell it unless the connection closed).
func (ch *Channel) stop(reason error, notify *bool) {
	if !ch.markStopped() {
		return
	}
	if t, ok := ch.handler.(Terminator); ok {
		if perr := ch.guard(func() error { t.Terminate(ch, reason); return nil }); perr != nil {
			ch.logger().Error("channel terminate panicked", "topic", ch.topic, "err", perr)
		}
	}
	ch.cleanup()
	ch.emit(telemetry.Event{Kind: telemetry.ChannelTerminated, Reason: reasonName(reason), Err: reason})
	tell := !errors.Is(reason, ErrClosed) && !errors.Is(reason, ErrDuplicateJoin) && !errors.Is(reason, ErrDraining)
	if notify != nil {
		tell = *notify
	}
	if tell {
		if isGraceful(reason) {
			ch.sendControl(wire.EventClose, []byte("{}"))
		} else {
			ch.logger().Error("channel stopped with an error", "topic", ch.topic, "reason", reason.Error())
			ch.sendControl(wire.EventError, crashPayload)
		}
	}
}

// crash ends a channel that panicked: no Terminate, phx_error to the client.
func (ch *Channel) crash(err error, pe *panicError) {
	if !ch.markStopped() {
		return
	}
	if pe != nil {
		ch.logger().Error("channel crashed", "topic", ch.topic, "panic", fmt.Sprint(pe.value), "stack", string(pe.stack))
	} else {
		ch.logger().Error("channel crashed", "topic", ch.topic, "err", err)
	}
	ch.cleanup()
	ch.emit(telemetry.Event{Kind: telemetry.ChannelTerminated, Reason: "crash", Err: err})
	ch.sendControl(wire.EventError, crashPayload)
}

// reasonName is a stop reason as a short, bounded label.
func reasonName(err error) string {
	var se *ShutdownError
	if errors.As(err, &se) {
		return se.Reason
	}
	return "error"
}

func (ch *Channel) markStopped() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.stopped {
		return false
	}
	ch.stopped = true
	return true
}

func (ch *Channel) cleanup() {
	ps := ch.conn.endpoint.pubsub
	ps.Unsubscribe(ch.topic, ch)
	ch.mu.Lock()
	extra := ch.extraTopics
	ch.extraTopics = nil
	ch.mu.Unlock()
	for _, t := range extra {
		ps.Unsubscribe(t, ch.infoSub)
	}
	ch.cancel()
	ch.conn.removeChannel(ch)
	ch.box.close()
}

// crashPayload is phx_error's payload. Phoenix sent {} up to 1.8.9 and sends
// this since 1.8.10; phoenix.js passes it to onError either way.
var crashPayload = []byte(`{"reason":"channel_crash"}`)

// sendControl sends phx_close or phx_error, whose ref is the join_ref.
func (ch *Channel) sendControl(event string, payload []byte) {
	ch.conn.send(appendControl(ch.conn.ser, ch.joinRef, ch.topic, event, payload))
}

// waitStopped waits for a stopping channel's mailbox to drain.
func (ch *Channel) waitStopped(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch.box.done():
		return true
	case <-t.C:
		return false
	}
}

// refusalReason names a join refusal for telemetry: the "reason" of a
// RefuseJoin reply when it has one, as Phoenix apps write
// {:error, %{reason: "..."}}, else the error's text.
func refusalReason(err error) string {
	var je *JoinError
	if errors.As(err, &je) {
		switch r := je.Reply.(type) {
		case map[string]string:
			if s := r["reason"]; s != "" {
				return s
			}
		case map[string]any:
			if s, ok := r["reason"].(string); ok && s != "" {
				return s
			}
		}
		return "refused"
	}
	return err.Error()
}
