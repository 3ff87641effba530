package client

import (
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/plumehq/plume/wire"
)

// This file is the client side of the wire format. Package wire holds the
// server side (it decodes client frames and encodes server frames); a client
// needs the mirror image: it encodes client frames, whose payload may be any
// JSON value, and decodes server frames, including the three binary kinds.

// Binary frame kinds of the V2 serializer.
const (
	kindPush      = 0
	kindReply     = 1
	kindBroadcast = 2
)

// ErrMalformedFrame reports a server frame that the client cannot decode.
var ErrMalformedFrame = errors.New("client: malformed server frame")

// outMsg is one client message before encoding. Refs are plain strings, ""
// meaning null, as phoenix.js makes them.
type outMsg struct {
	joinRef string
	ref     string
	topic   string
	event   string
	payload []byte // JSON text, or bytes when binary
	binary  bool
}

// encodeFrame encodes m for the serializer: a V2 array or a V2 binary push
// (kind 0, 5-byte header), or a V1 object.
func encodeFrame(ser wire.Serializer, m *outMsg) ([]byte, bool, error) {
	if ser.Vsn() == wire.V1.Vsn() {
		if m.binary {
			return nil, false, wire.ErrBinaryUnsupported
		}
		// Keys in phoenix.js's Message field order; join_ref is optional
		// for a V1 server, which falls back to the join's ref.
		b := make([]byte, 0, 64+len(m.topic)+len(m.event)+len(m.payload))
		b = append(b, `{"topic":`...)
		b = wire.AppendString(b, m.topic)
		b = append(b, `,"event":`...)
		b = wire.AppendString(b, m.event)
		b = append(b, `,"payload":`...)
		b = appendPayload(b, m.payload)
		b = append(b, `,"ref":`...)
		b = appendRef(b, m.ref)
		b = append(b, `,"join_ref":`...)
		b = appendRef(b, m.joinRef)
		return append(b, '}'), false, nil
	}
	if m.binary {
		if err := checkBinaryFields(m.joinRef, m.ref, m.topic, m.event); err != nil {
			return nil, false, err
		}
		b := make([]byte, 0, 5+len(m.joinRef)+len(m.ref)+len(m.topic)+len(m.event)+len(m.payload))
		b = append(b, kindPush, byte(len(m.joinRef)), byte(len(m.ref)), byte(len(m.topic)), byte(len(m.event)))
		b = append(b, m.joinRef...)
		b = append(b, m.ref...)
		b = append(b, m.topic...)
		b = append(b, m.event...)
		b = append(b, m.payload...)
		return b, true, nil
	}
	b := make([]byte, 0, 32+len(m.joinRef)+len(m.ref)+len(m.topic)+len(m.event)+len(m.payload))
	b = append(b, '[')
	b = appendRef(b, m.joinRef)
	b = append(b, ',')
	b = appendRef(b, m.ref)
	b = append(b, ',')
	b = wire.AppendString(b, m.topic)
	b = append(b, ',')
	b = wire.AppendString(b, m.event)
	b = append(b, ',')
	b = appendPayload(b, m.payload)
	return append(b, ']'), false, nil
}

// checkBinaryFields enforces the one-byte lengths of a binary frame's
// header, as phoenix.js's assertFieldSize does.
func checkBinaryFields(fields ...string) error {
	for _, f := range fields {
		if len(f) > 255 {
			return wire.ErrFieldTooLong
		}
	}
	return nil
}

func appendRef(b []byte, ref string) []byte {
	if ref == "" {
		return append(b, "null"...)
	}
	return wire.AppendString(b, ref)
}

func appendPayload(b, payload []byte) []byte {
	if len(payload) == 0 {
		return append(b, "{}"...)
	}
	return append(b, payload...)
}

// inMsg is one decoded server message. For a reply (event phx_reply),
// status and response are split out of the payload.
type inMsg struct {
	joinRef  string
	ref      string
	topic    string
	event    string
	payload  []byte
	binary   bool
	status   string
	response []byte
}

// decodeFrame decodes one server frame: text through the serializer, binary
// by kind (0 push with a 4-byte header, 1 reply, 2 broadcast).
func decodeFrame(ser wire.Serializer, data []byte, binary bool) (inMsg, error) {
	if binary {
		return decodeBinary(data)
	}
	wm, err := ser.Decode(data, false)
	if err != nil {
		return inMsg{}, err
	}
	m := inMsg{
		joinRef: wm.JoinRef.String(),
		ref:     wm.Ref.String(),
		topic:   wm.Topic,
		event:   wm.Event,
		payload: wm.Payload,
	}
	if m.event == wire.EventReply {
		var r struct {
			Status   string          `json:"status"`
			Response json.RawMessage `json:"response"`
		}
		if json.Unmarshal(m.payload, &r) == nil {
			m.status, m.response = r.Status, r.Response
		}
	}
	return m, nil
}

func decodeBinary(b []byte) (inMsg, error) {
	if len(b) == 0 {
		return inMsg{}, ErrMalformedFrame
	}
	var lens []int
	switch b[0] {
	case kindPush:
		lens = headerLens(b, 3)
	case kindReply:
		lens = headerLens(b, 4)
	case kindBroadcast:
		lens = headerLens(b, 2)
	default:
		return inMsg{}, ErrMalformedFrame
	}
	if lens == nil {
		return inMsg{}, ErrMalformedFrame
	}
	rest := b[1+len(lens):]
	fields := make([]string, len(lens))
	for i, n := range lens {
		if len(rest) < n || !utf8.Valid(rest[:n]) {
			return inMsg{}, ErrMalformedFrame
		}
		fields[i] = string(rest[:n])
		rest = rest[n:]
	}
	m := inMsg{payload: rest, binary: true}
	switch b[0] {
	case kindPush:
		m.joinRef, m.topic, m.event = fields[0], fields[1], fields[2]
	case kindReply:
		m.joinRef, m.ref, m.topic = fields[0], fields[1], fields[2]
		m.event, m.status, m.response = wire.EventReply, fields[3], rest
	case kindBroadcast:
		m.topic, m.event = fields[0], fields[1]
	}
	return m, nil
}

// headerLens reads n one-byte field lengths after the kind byte.
func headerLens(b []byte, n int) []int {
	if len(b) < 1+n {
		return nil
	}
	lens := make([]int, n)
	for i := range lens {
		lens[i] = int(b[1+i])
	}
	return lens
}
