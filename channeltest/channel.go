package channeltest

import (
	"github.com/plumehq/plume"
	"github.com/plumehq/plume/pubsub"
	"github.com/plumehq/plume/wire"
)

// Channel is a topic a [Client] joined: the test's side of the channel
// (the socket that Phoenix's join/3 returns). Its assertions look at the
// messages its client received on the topic for this join, as phoenix.js
// would dispatch them to the channel.
type Channel struct {
	c       *Client
	topic   string
	joinRef Ref
	reply   plume.Payload
}

// Topic returns the joined topic.
func (ch *Channel) Topic() string { return ch.topic }

// JoinReply returns the payload of the join's ok reply.
func (ch *Channel) JoinReply() plume.Payload { return ch.reply }

// Client returns the client that joined.
func (ch *Channel) Client() *Client { return ch.c }

// Push sends event with payload to the channel's HandleIn, as phoenix.js's
// channel.push does, and returns the message's ref for [Channel.AssertReply]
// (push/3). The payload may be any value that encodes to JSON (nil sends
// {}), or []byte or [plume.Binary] for a binary frame. Push does not wait
// for the channel to handle the message.
func (ch *Channel) Push(event string, payload any) Ref {
	ch.c.h.t.Helper()
	ref := ch.c.nextRef()
	ch.c.send(ch.joinRef, ref, ch.topic, event, payload)
	return ref
}

// Leave leaves the channel (leave/1): the channel replies ok to the
// returned ref, stops with [plume.ErrLeft] and sends phx_close.
func (ch *Channel) Leave() Ref {
	ch.c.h.t.Helper()
	return ch.Push(wire.EventLeave, nil)
}

// BroadcastFrom broadcasts event with payload on the channel's topic from
// the test (broadcast_from/3): the test's own subscription to the topic
// (from [Client.SubscribeAndJoin] or [Harness.Subscribe]) does not receive
// it, while every joined channel does, this one included, so that it
// reaches clients through fastlane or HandleOut. The payload must encode to
// a JSON object, or be binary.
func (ch *Channel) BroadcastFrom(event string, payload any) {
	h := ch.c.h
	h.t.Helper()
	data, binary, err := encode(payload)
	if err == nil && !binary && !wire.IsJSONObject(data) {
		err = plume.ErrBadPayload
	}
	if err != nil {
		h.t.Fatalf("channeltest: BroadcastFrom %s on %s: %v", quote(event), quote(ch.topic), err)
	}
	m := &pubsub.Message{Topic: ch.topic, Event: event, Payload: data, Binary: binary}
	var from pubsub.Subscriber
	if s := h.subscription(ch.topic); s != nil {
		from = s.sub
	}
	if err := h.ep.PubSub().BroadcastFrom(h.t.Context(), from, m); err != nil {
		h.t.Fatalf("channeltest: BroadcastFrom %s on %s: %v", quote(event), quote(ch.topic), err)
	}
}

// member reports whether m is on this channel: its topic, and its join_ref
// or none (broadcasts), as phoenix.js's channel.isMember decides.
func (ch *Channel) member(m *message) bool {
	return m.topic == ch.topic && (m.joinRef == "" || m.joinRef == ch.joinRef)
}

// AssertReply waits for the reply to ref with status ("ok", "error", ...)
// and a payload that satisfies every want, and returns the payload
// (assert_reply).
func (ch *Channel) AssertReply(ref Ref, status string, want ...any) plume.Payload {
	h := ch.c.h
	h.t.Helper()
	pats := h.compile("AssertReply", want)
	m, ok := ch.c.box.take(ch.isReply(ref, status, pats), h.assert)
	if !ok {
		h.t.Fatalf("channeltest: AssertReply: no %s reply to ref %s%s on %s within %v\n%s",
			quote(status), ref, pats, quote(ch.topic), h.assert, ch.c.box.pending("messages", nil))
	}
	return m.payload
}

// RefuteReply fails if a reply to ref with status and a payload that
// satisfies every want arrives within the refute timeout (refute_reply).
func (ch *Channel) RefuteReply(ref Ref, status string, want ...any) {
	h := ch.c.h
	h.t.Helper()
	pats := h.compile("RefuteReply", want)
	if m, ok := ch.c.box.find(ch.isReply(ref, status, pats), h.refute); ok {
		h.t.Fatalf("channeltest: RefuteReply: unexpected %s reply to ref %s%s:\n    %s", quote(status), ref, pats, m)
	}
}

func (ch *Channel) isReply(ref Ref, status string, pats patterns) func(*message) bool {
	return func(m *message) bool {
		return m.kind == kindReply && m.ref == ref && m.topic == ch.topic && m.status == status && pats.match(m.payload)
	}
}

// AssertPush waits for a message with event on the channel whose payload
// satisfies every want, and returns the payload (assert_push). It sees the
// channel's pushes and the topic's broadcasts as the client receives them
// (fastlaned, or pushed by HandleOut), and phx_close and phx_error too.
func (ch *Channel) AssertPush(event string, want ...any) plume.Payload {
	h := ch.c.h
	h.t.Helper()
	return ch.assertPush("AssertPush", event, want)
}

func (ch *Channel) assertPush(op, event string, want []any) plume.Payload {
	h := ch.c.h
	h.t.Helper()
	pats := h.compile(op, want)
	m, ok := ch.c.box.take(ch.isPush(event, pats), h.assert)
	if !ok {
		what := "push " + quote(event)
		if op != "AssertPush" {
			what = event
		}
		h.t.Fatalf("channeltest: %s: no %s%s on %s within %v\n%s",
			op, what, pats, quote(ch.topic), h.assert, ch.c.box.pending("messages", nil))
	}
	return m.payload
}

// RefutePush fails if a message with event on the channel whose payload
// satisfies every want arrives within the refute timeout (refute_push).
// RefutePush("phx_error") checks that the channel did not crash.
func (ch *Channel) RefutePush(event string, want ...any) {
	h := ch.c.h
	h.t.Helper()
	pats := h.compile("RefutePush", want)
	if m, ok := ch.c.box.find(ch.isPush(event, pats), h.refute); ok {
		h.t.Fatalf("channeltest: RefutePush: unexpected push %s%s:\n    %s", quote(event), pats, m)
	}
}

func (ch *Channel) isPush(event string, pats patterns) func(*message) bool {
	return func(m *message) bool {
		return m.kind != kindReply && m.kind != kindBad && m.event == event && ch.member(m) && pats.match(m.payload)
	}
}

// AssertClose waits for phx_close: the channel stopped without a crash
// (it left, or a callback returned [plume.ErrNormal] or a
// [plume.ShutdownError]).
func (ch *Channel) AssertClose() {
	ch.c.h.t.Helper()
	ch.assertPush("AssertClose", wire.EventClose, nil)
}

// AssertError waits for phx_error: the channel crashed (a callback panicked
// or returned an error that is not a [plume.ShutdownError]).
func (ch *Channel) AssertError() {
	ch.c.h.t.Helper()
	ch.assertPush("AssertError", wire.EventError, nil)
}

// AssertBroadcast waits for a broadcast of event on the channel's topic,
// seen by the test's own subscription, whose payload satisfies every want,
// and returns the payload (assert_broadcast). The test must be subscribed:
// join with [Client.SubscribeAndJoin] or call [Harness.Subscribe].
func (ch *Channel) AssertBroadcast(event string, want ...any) plume.Payload {
	h := ch.c.h
	h.t.Helper()
	return h.assertBroadcast(ch.subscription("AssertBroadcast"), "AssertBroadcast", event, want)
}

// RefuteBroadcast fails if a broadcast of event on the channel's topic whose
// payload satisfies every want reaches the test's subscription within the
// refute timeout (refute_broadcast).
func (ch *Channel) RefuteBroadcast(event string, want ...any) {
	h := ch.c.h
	h.t.Helper()
	h.refuteBroadcast(ch.subscription("RefuteBroadcast"), "RefuteBroadcast", event, want)
}

func (ch *Channel) subscription(op string) *Subscription {
	h := ch.c.h
	h.t.Helper()
	s := h.subscription(ch.topic)
	if s == nil {
		h.t.Fatalf("channeltest: %s: the test is not subscribed to %s; join with SubscribeAndJoin or call Harness.Subscribe",
			op, quote(ch.topic))
	}
	return s
}
