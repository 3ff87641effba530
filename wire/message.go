package wire

import (
	"errors"
	"strings"
)

// Reserved topics and events of the protocol.
const (
	TopicPhoenix   = "phoenix"
	EventHeartbeat = "heartbeat"
	EventJoin      = "phx_join"
	EventLeave     = "phx_leave"
	EventReply     = "phx_reply"
	EventError     = "phx_error"
	EventClose     = "phx_close"
)

// Errors returned by decoders and encoders.
var (
	// ErrMalformed reports a frame that is not a valid message for its serializer.
	ErrMalformed = errors.New("wire: malformed frame")
	// ErrFieldTooLong reports a binary frame field over 255 bytes.
	ErrFieldTooLong = errors.New("wire: binary frame field longer than 255 bytes")
	// ErrPayloadNotObject reports a push or broadcast payload that is neither
	// a JSON object nor binary, which Phoenix refuses too.
	ErrPayloadNotObject = errors.New("wire: push and broadcast payloads must be a JSON object or binary")
	// ErrBinaryUnsupported reports a binary payload for a serializer without binary frames (V1).
	ErrBinaryUnsupported = errors.New("wire: serializer has no binary frames")
	// ErrUnsupportedVsn reports a vsn no serializer accepts.
	ErrUnsupportedVsn = errors.New("wire: unsupported vsn")
)

// Ref is a join_ref or ref as the client sent it, kept as JSON text (`"3"` or
// `3`) so that it is echoed with its type: a string stays a string and a
// number a number. The empty Ref (and "null") is null.
//
// Decoders keep numbers exactly as sent and put strings in the canonical form
// that [AppendString] produces, which is also what Phoenix echoes (it
// re-encodes what it decoded). So a ref sent as "\u0033" comes back as "3",
// and two string Refs with the same value are equal Go strings. A binary
// frame's refs are strings: [StringRef] of the bytes.
type Ref string

// StringRef returns the Ref for the JSON string s. StringRef("") is the
// empty JSON string `""`, not null.
func StringRef(s string) Ref { return Ref(AppendString(nil, s)) }

// IsNull reports whether r is null.
func (r Ref) IsNull() bool { return r == "" || r == "null" }

// String returns the value of r: the unquoted string for a JSON string, the
// raw text otherwise, and "" for null. Binary frames carry this form.
func (r Ref) String() string {
	if r.IsNull() {
		return ""
	}
	if r[0] != '"' {
		return string(r)
	}
	if n := len(r); n >= 2 && r[n-1] == '"' && strings.IndexByte(string(r[1:n-1]), '\\') < 0 &&
		strings.IndexByte(string(r[1:n-1]), '"') < 0 {
		return string(r[1 : n-1])
	}
	if s, ok := decodeString([]byte(r)); ok {
		return s
	}
	return string(r)
}

// Message is one decoded client frame.
type Message struct {
	JoinRef Ref
	Ref     Ref
	Topic   string
	Event   string
	// Payload is the raw JSON text of the payload (any JSON value), or its
	// bytes when Binary. It may share memory with the decoded frame.
	Payload []byte
	Binary  bool
}

// Frame is one encoded server frame, ready for a transport.
type Frame struct {
	Data   []byte
	Binary bool
}

// Serializer encodes and decodes frames for one protocol version.
type Serializer interface {
	// Vsn is the version this serializer speaks, "1.0.0" or "2.0.0".
	Vsn() string
	// Decode parses one inbound frame (a WebSocket text or binary message).
	// A frame that is not a valid message gives [ErrMalformed]; Phoenix
	// closes the socket on such frames. The returned Payload may share
	// memory with data.
	Decode(data []byte, binary bool) (Message, error)
	// AppendPush encodes a channel push: join_ref set, ref null.
	// The payload must be a JSON object unless binary.
	//
	// All Append methods append the frame to dst and return it as Frame.Data
	// (dst's earlier bytes included); on error they return the zero Frame.
	// Refs, payloads and responses are written as given, so they must be
	// null/empty or valid JSON text (a binary payload is any bytes).
	AppendPush(dst []byte, joinRef Ref, topic, event string, payload []byte, binary bool) (Frame, error)
	// AppendReply encodes a reply to ref with a status and any JSON response.
	AppendReply(dst []byte, joinRef, ref Ref, topic, status string, response []byte, binary bool) (Frame, error)
	// AppendBroadcast encodes a broadcast: join_ref and ref null.
	AppendBroadcast(dst []byte, topic, event string, payload []byte, binary bool) (Frame, error)
}

// IsJSONObject reports whether the JSON text b is an object, looking only at
// its first significant byte.
func IsJSONObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

// AppendMessage encodes a server message that carries both refs, the form
// Phoenix uses for phx_close and phx_error (ref = join_ref), e.g.
// `["2","2","room:1","phx_close",{}]`, or in V1
// `{"event":"phx_close","payload":{},"ref":"2","topic":"room:1"}` (V1 drops
// join_ref; the ref is how a V1 client tells which join closed). The payload
// must be a JSON object. There is no binary form: Phoenix's binary push has
// no ref. For a [Serializer] other than [V1] and [V2] it falls back to
// AppendPush, which drops ref.
func AppendMessage(s Serializer, dst []byte, joinRef, ref Ref, topic, event string, payload []byte) (Frame, error) {
	switch s.(type) {
	case v1:
		return appendV1(dst, ref, topic, event, payload, false)
	case v2:
		return appendV2Text(dst, joinRef, ref, topic, event, payload)
	}
	return s.AppendPush(dst, joinRef, topic, event, payload, false)
}
