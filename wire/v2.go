package wire

import "unicode/utf8"

// Binary frame kinds of the V2 serializer.
const (
	kindPush      = 0
	kindReply     = 1
	kindBroadcast = 2
)

// V2 is the "2.0.0" serializer: `[join_ref, ref, topic, event, payload]`
// arrays in text frames, and binary frames for binary payloads.
var V2 Serializer = v2{}

type v2 struct{}

func (v2) Vsn() string { return "2.0.0" }

// Decode accepts a JSON array of at least five elements,
// [join_ref, ref, topic, event, payload, ...] (extra elements are ignored, as
// in Phoenix), or a binary push (kind 0, 5-byte header).
func (v2) Decode(data []byte, binary bool) (Message, error) {
	if binary {
		return decodeBinaryPush(data)
	}
	if !validJSON(data) {
		return Message{}, ErrMalformed
	}
	i := skipSpace(data, 0)
	if data[i] != '[' {
		return Message{}, ErrMalformed
	}
	var parts [5][]byte
	n := 0
	for i = skipSpace(data, i+1); n < len(parts) && data[i] != ']'; n++ {
		end := skipValue(data, i)
		parts[n] = data[i:end]
		i = skipSpace(data, end)
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	if n < len(parts) {
		return Message{}, ErrMalformed
	}
	var m Message
	var ok1, ok2, ok3, ok4 bool
	m.JoinRef, ok1 = decodeRef(parts[0])
	m.Ref, ok2 = decodeRef(parts[1])
	m.Topic, ok3 = decodeString(parts[2])
	m.Event, ok4 = decodeString(parts[3])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return Message{}, ErrMalformed
	}
	m.Payload = parts[4]
	return m, nil
}

// decodeBinaryPush parses a client kind-0 frame with its 5-byte header:
// <<0, jr_len, ref_len, topic_len, event_len, join_ref, ref, topic, event,
// payload...>>. Fields must be valid UTF-8, since they may be echoed in JSON.
func decodeBinaryPush(b []byte) (Message, error) {
	if len(b) < 5 || b[0] != kindPush {
		return Message{}, ErrMalformed
	}
	jl, rl, tl, el := int(b[1]), int(b[2]), int(b[3]), int(b[4])
	rest := b[5:]
	if len(rest) < jl+rl+tl+el {
		return Message{}, ErrMalformed
	}
	jr, r := rest[:jl], rest[jl:jl+rl]
	topic, event := rest[jl+rl:jl+rl+tl], rest[jl+rl+tl:jl+rl+tl+el]
	if !utf8.Valid(jr) || !utf8.Valid(r) || !utf8.Valid(topic) || !utf8.Valid(event) {
		return Message{}, ErrMalformed
	}
	// Phoenix decodes an empty join_ref or ref to "", not nil, so such a
	// frame fails the stale join_ref check. Keep that: both are strings.
	return Message{
		JoinRef: binaryRef(jr),
		Ref:     binaryRef(r),
		Topic:   internString(topic),
		Event:   internString(event),
		Payload: rest[jl+rl+tl+el:],
		Binary:  true,
	}, nil
}

// binaryRef is StringRef(string(b)) with one allocation when b needs no
// escaping, as phoenix.js's decimal refs never do.
func binaryRef(b []byte) Ref {
	for _, c := range b {
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return StringRef(string(b))
		}
	}
	return Ref("\"" + string(b) + "\"")
}

func (v2) AppendPush(dst []byte, joinRef Ref, topic, event string, payload []byte, binary bool) (Frame, error) {
	if binary {
		jr := joinRef.String()
		if len(jr) > 255 || len(topic) > 255 || len(event) > 255 {
			return Frame{}, ErrFieldTooLong
		}
		dst = append(dst, kindPush, byte(len(jr)), byte(len(topic)), byte(len(event)))
		dst = append(dst, jr...)
		dst = append(dst, topic...)
		dst = append(dst, event...)
		dst = append(dst, payload...)
		return Frame{Data: dst, Binary: true}, nil
	}
	return appendV2Text(dst, joinRef, "", topic, event, payload)
}

// appendV2Text encodes [join_ref, ref, topic, event, payload] with an object
// payload.
func appendV2Text(dst []byte, joinRef, ref Ref, topic, event string, payload []byte) (Frame, error) {
	if !IsJSONObject(payload) {
		return Frame{}, ErrPayloadNotObject
	}
	dst = append(dst, '[')
	dst = appendRef(dst, joinRef)
	dst = append(dst, ',')
	dst = appendRef(dst, ref)
	dst = append(dst, ',')
	dst = AppendString(dst, topic)
	dst = append(dst, ',')
	dst = AppendString(dst, event)
	dst = append(dst, ',')
	dst = append(dst, payload...)
	dst = append(dst, ']')
	return Frame{Data: dst}, nil
}

func (v2) AppendReply(dst []byte, joinRef, ref Ref, topic, status string, response []byte, binary bool) (Frame, error) {
	if binary {
		jr, r := joinRef.String(), ref.String()
		if len(jr) > 255 || len(r) > 255 || len(topic) > 255 || len(status) > 255 {
			return Frame{}, ErrFieldTooLong
		}
		dst = append(dst, kindReply, byte(len(jr)), byte(len(r)), byte(len(topic)), byte(len(status)))
		dst = append(dst, jr...)
		dst = append(dst, r...)
		dst = append(dst, topic...)
		dst = append(dst, status...)
		dst = append(dst, response...)
		return Frame{Data: dst, Binary: true}, nil
	}
	dst = append(dst, '[')
	dst = appendRef(dst, joinRef)
	dst = append(dst, ',')
	dst = appendRef(dst, ref)
	dst = append(dst, ',')
	dst = AppendString(dst, topic)
	dst = append(dst, `,"phx_reply",{"response":`...)
	dst = appendJSONOrNull(dst, response)
	dst = append(dst, `,"status":`...)
	dst = AppendString(dst, status)
	dst = append(dst, "}]"...)
	return Frame{Data: dst}, nil
}

func (v2) AppendBroadcast(dst []byte, topic, event string, payload []byte, binary bool) (Frame, error) {
	if binary {
		if len(topic) > 255 || len(event) > 255 {
			return Frame{}, ErrFieldTooLong
		}
		dst = append(dst, kindBroadcast, byte(len(topic)), byte(len(event)))
		dst = append(dst, topic...)
		dst = append(dst, event...)
		dst = append(dst, payload...)
		return Frame{Data: dst, Binary: true}, nil
	}
	return appendV2Text(dst, "", "", topic, event, payload)
}
