package plume

import "github.com/plumehq/plume/wire"

// Reply is a handle-in result: a status and a response payload. The zero
// Reply sends nothing (Phoenix's {:noreply, socket}).
type Reply struct {
	Status  string
	Payload any
}

// NoReply sends no reply.
var NoReply = Reply{}

// ReplyOK replies {"status":"ok","response":payload}; nil payload is {}.
func ReplyOK(payload any) Reply { return Reply{Status: "ok", Payload: payload} }

// ReplyError replies {"status":"error","response":payload}.
func ReplyError(payload any) Reply { return Reply{Status: "error", Payload: payload} }

// ReplyStatus replies with any status.
func ReplyStatus(status string, payload any) Reply { return Reply{Status: status, Payload: payload} }

// SocketRef identifies one message being handled, so that it can be replied
// to later from any goroutine (Phoenix's socket_ref/1 and reply/2).
type SocketRef struct {
	ch      *Channel
	joinRef wire.Ref
	ref     wire.Ref
}

// Reply sends r to the client as the reply to the referenced message.
func (s SocketRef) Reply(r Reply) error {
	if s.ch == nil {
		return ErrNoMessage
	}
	return s.ch.conn.sendReply(s.joinRef, s.ref, s.ch.topic, r)
}
