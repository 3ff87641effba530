// Package client is a Go client for Phoenix Channels, with the semantics of
// the official phoenix.js client (1.8) in Go form. It works against Phoenix
// and against Plume.
//
//	sock := client.NewSocket("ws://localhost:4000/socket", &client.Options{
//		Params: func() map[string]any { return map[string]any{"token": token()} },
//	})
//	defer sock.Close()
//	if err := sock.Connect(ctx); err != nil { ... }
//
//	ch := sock.Channel("room:lobby", map[string]any{"nick": "ana"})
//	ch.On("new_msg", func(m client.Message) { ... })
//	if _, err := ch.Join(ctx); err != nil { ... }
//	reply, err := ch.Push(ctx, "new_msg", map[string]any{"body": "hi"})
//
// What it does, as phoenix.js does it:
//
//   - The socket reconnects after any close it did not ask for, with
//     ReconnectAfter's backoff (10 ms … 5 s), re-evaluating URL, Params and
//     AuthToken on each attempt. Disconnect and Close close with 1000 and
//     stop reconnecting.
//   - It sends a heartbeat every HeartbeatInterval and, when one goes
//     unanswered for as long, closes the connection and reconnects.
//   - Messages sent while disconnected wait in a buffer, flushed in order
//     when the socket opens.
//   - Channels rejoin with RejoinAfter's backoff after a refused or timed
//     out join or a server crash (phx_error), and at once after a
//     reconnect; every attempt has a fresh join ref, and messages addressed
//     to an older join are dropped. phx_close and Leave end a channel.
//   - Pushes made before the channel is joined are buffered and sent after
//     the join; each push gets a reply or times out.
//   - [Presence] keeps a presence list in sync from presence_state and
//     presence_diff, buffering diffs until the state of the current join.
//
// Go additions: every blocking call takes a context.Context; handlers run on
// one goroutine per socket, in order (see [Socket]); Close returns once every
// goroutine of the socket has ended.
//
// The protocol is vsn 2.0.0 by default, with binary payloads both ways
// ([Binary] sends one; a binary reply or push arrives with Binary set);
// Options.Serializer = wire.V1 speaks 1.0.0 instead.
package client
