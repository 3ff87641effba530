// Package telemetry describes what happens inside Plume as events, the
// analogue of Phoenix's :telemetry events, and ships two consumers: a
// Phoenix-style logger and a fan-out to several handlers. A metrics bridge
// (Prometheus, OpenTelemetry, StatsD) is a Handler of a few lines; see the
// plumeprom module.
package telemetry

import "time"

// Kind names an event.
type Kind uint8

// Event kinds.
const (
	// SocketConnected: a connection was accepted. Transport, Params, Duration (connect callback).
	SocketConnected Kind = iota + 1
	// SocketRefused: a connection was refused. Transport, Reason ("vsn", "origin", "connect", "draining").
	SocketRefused
	// SocketClosed: a connection ended. Transport, Code (WebSocket close code, 0 if unknown), Duration (lifetime).
	SocketClosed
	// ChannelJoined: a join succeeded. Topic, Route, Params, Duration (Join callback).
	ChannelJoined
	// ChannelRefused: a join was refused or crashed, or its topic matched no route. Topic, Route, Reason.
	ChannelRefused
	// ChannelLeft: the client left a channel (phx_leave). Topic, Route.
	ChannelLeft
	// ChannelTerminated: a channel stopped for any reason. Topic, Route, Reason
	// ("left", "closed", "duplicate_join", "draining", "normal", "crash", or the stop error).
	ChannelTerminated
	// MessageIn: a client event was handled. Topic, Route, EventName, Bytes, Duration (HandleIn).
	MessageIn
	// Push: the server pushed to one client. Topic, EventName, Bytes.
	Push
	// Broadcast: a broadcast was dispatched on this node. Topic, EventName, Bytes,
	// Subscribers (local deliveries), Duration (fan-out), Encode (encode time).
	Broadcast
	// SlowClient: a connection was closed because its outbound queue overflowed. Transport, QueueBytes.
	SlowClient
	// QueueHighWater: a connection's outbound queue reached a new high-water mark (powers of two from 64 KiB). Transport, QueueBytes.
	QueueHighWater
	// PubSubError: the PubSub adapter failed an operation. Reason (the operation), Err.
	PubSubError
	// PresenceJoin and PresenceLeave: presence metas joined or left a topic. Topic, Count (metas).
	PresenceJoin
	PresenceLeave
	// Drain: one drain batch during shutdown. Count (connections in the batch).
	Drain
)

var kindNames = [...]string{
	SocketConnected:   "socket_connected",
	SocketRefused:     "socket_refused",
	SocketClosed:      "socket_closed",
	ChannelJoined:     "channel_joined",
	ChannelRefused:    "channel_refused",
	ChannelLeft:       "channel_left",
	ChannelTerminated: "channel_terminated",
	MessageIn:         "message_in",
	Push:              "push",
	Broadcast:         "broadcast",
	SlowClient:        "slow_client",
	QueueHighWater:    "queue_high_water",
	PubSubError:       "pubsub_error",
	PresenceJoin:      "presence_join",
	PresenceLeave:     "presence_leave",
	Drain:             "drain",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// Event is one thing that happened. Fields a kind does not use are zero.
// Handlers must not keep the pointer after returning.
type Event struct {
	Kind      Kind
	Transport string
	// SocketID is the connection's id, if any.
	SocketID string
	Topic    string
	// Route is the channel route pattern the topic matched ("room:*"):
	// bounded cardinality, unlike Topic, so metrics label by it.
	Route     string
	EventName string
	Reason    string
	Code      int
	Bytes     int
	// Subscribers is the number of local deliveries of a broadcast.
	Subscribers int
	// Count is a kind-specific count (presence metas, drained connections).
	Count      int
	QueueBytes int
	Duration   time.Duration
	Encode     time.Duration
	// Params are connect or join parameters (JSON text for joins, a map for
	// connects). Loggers must filter them.
	Params any
	Err    error
}

// Handler receives events. It is called synchronously on hot paths, so it
// must be fast and must not block.
type Handler interface {
	HandleEvent(e *Event)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(e *Event)

// HandleEvent calls f(e).
func (f HandlerFunc) HandleEvent(e *Event) { f(e) }

// Multi sends every event to each handler in turn.
type Multi []Handler

// HandleEvent calls every handler.
func (m Multi) HandleEvent(e *Event) {
	for _, h := range m {
		h.HandleEvent(e)
	}
}
