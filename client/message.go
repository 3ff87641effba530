package client

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Reply statuses. A server may reply with any status; "timeout" is the one
// the client makes up when no reply came in time, as phoenix.js does.
const (
	StatusOK      = "ok"
	StatusError   = "error"
	StatusTimeout = "timeout"
)

// Errors returned by the client.
var (
	// ErrClosed is returned by calls on a Socket after Close.
	ErrClosed = errors.New("client: socket closed")
	// ErrChannelClosed is returned when pushing on a channel that was left
	// or closed by the server (phx_close), and by a Join whose channel was
	// left before the join completed.
	ErrChannelClosed = errors.New("client: channel closed")
	// ErrTimeout is returned, with a Reply whose Status is "timeout", when
	// the server did not reply within the timeout.
	ErrTimeout = errors.New("client: timeout")
	// ErrRefused is returned by Join, with the server's reply, when the
	// server refused the join. The channel keeps retrying in the
	// background, as phoenix.js does, until Leave.
	ErrRefused = errors.New("client: join refused")
	// ErrAlreadyJoined is returned by a second Join on the same Channel;
	// phoenix.js throws in the same case. Create a new Channel instead.
	ErrAlreadyJoined = errors.New("client: channel already joined; Join may be called once per Channel")
	// ErrNotJoined is returned by Push before Join.
	ErrNotJoined = errors.New("client: push before join")
	// ErrNotConnected is returned by Ping when the socket is not open.
	ErrNotConnected = errors.New("client: socket not connected")
	// ErrConnectionLost is returned by Ping when the connection closes
	// before the reply.
	ErrConnectionLost = errors.New("client: connection lost")
)

// Binary marks a push payload to be sent in a binary frame (an ArrayBuffer
// payload in phoenix.js). Binary frames need the V2 serializer.
type Binary []byte

// Message is a message from the server as a handler sees it.
type Message struct {
	// Topic and Event name the message.
	Topic string
	Event string
	// Payload is the JSON text of the payload, or the bytes of a binary
	// frame when Binary is set.
	Payload []byte
	Binary  bool
	// Ref is the message's ref ("" for null): set on replies only.
	Ref string
	// JoinRef is the message's join_ref or, when it has none (broadcasts),
	// the channel's join ref when the message arrived, as phoenix.js passes
	// to its callbacks. Socket-level OnMessage callbacks see the raw value.
	JoinRef string
}

// Decode unmarshals a JSON payload into v.
func (m Message) Decode(v any) error { return decodeJSON(m.Payload, m.Binary, v) }

// Reply is the outcome of a join or a push: the server's status ("ok",
// "error" or any other), or "timeout", with the response.
type Reply struct {
	Status string
	// Response is the JSON text of the response, or its bytes when Binary
	// (a binary reply). It is nil after a timeout.
	Response []byte
	Binary   bool
}

// OK reports whether the status is "ok".
func (r Reply) OK() bool { return r.Status == StatusOK }

// Decode unmarshals a JSON response into v.
func (r Reply) Decode(v any) error { return decodeJSON(r.Response, r.Binary, v) }

// String returns the status and the response, for logs and tests.
func (r Reply) String() string {
	if r.Binary {
		return fmt.Sprintf("%s <binary %d bytes>", r.Status, len(r.Response))
	}
	return fmt.Sprintf("%s %s", r.Status, r.Response)
}

func decodeJSON(data []byte, binary bool, v any) error {
	if binary {
		return errors.New("client: cannot decode a binary payload as JSON")
	}
	if len(data) == 0 {
		data = []byte("null")
	}
	return json.Unmarshal(data, v)
}

// Ref identifies a registered callback or handler, for Off.
type Ref uint64

// encodePayload turns a payload value into wire bytes: nil is {}, [Binary]
// goes in a binary frame, json.RawMessage is sent as is, anything else is
// marshalled with encoding/json. Any JSON value may be sent (phoenix.js does
// not restrict client payloads to objects).
func encodePayload(v any) (data []byte, binary bool, err error) {
	switch p := v.(type) {
	case nil:
		return []byte("{}"), false, nil
	case Binary:
		return p, true, nil
	case json.RawMessage:
		if len(p) == 0 {
			return []byte("{}"), false, nil
		}
		if !json.Valid(p) {
			return nil, false, errors.New("client: payload is not valid JSON")
		}
		return p, false, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false, fmt.Errorf("client: encoding payload: %w", err)
	}
	return b, false, nil
}
