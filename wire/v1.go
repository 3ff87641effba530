package wire

// V1 is the "1.0.0" serializer: `{"topic","event","payload","ref"}` objects
// in text frames. It never sends join_ref and has no binary frames.
var V1 Serializer = v1{}

type v1 struct{}

func (v1) Vsn() string { return "1.0.0" }

// Decode accepts a JSON object with the keys topic, event, payload and ref,
// and optionally join_ref, as Phoenix's Message.from_map! does. Other keys
// are ignored; of duplicate keys the last wins. A binary frame is refused.
func (v1) Decode(data []byte, binary bool) (Message, error) {
	if binary || !validJSON(data) {
		return Message{}, ErrMalformed
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return Message{}, ErrMalformed
	}
	var topic, event, payload, ref, joinRef []byte
	for i = skipSpace(data, i+1); data[i] != '}'; {
		kEnd := skipString(data, i)
		key := data[i:kEnd]
		i = skipSpace(data, kEnd) + 1 // ':'
		i = skipSpace(data, i)
		vEnd := skipValue(data, i)
		val := data[i:vEnd]
		switch v1Key(key) {
		case "topic":
			topic = val
		case "event":
			event = val
		case "payload":
			payload = val
		case "ref":
			ref = val
		case "join_ref":
			joinRef = val
		}
		i = skipSpace(data, vEnd)
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	if topic == nil || event == nil || payload == nil || ref == nil {
		return Message{}, ErrMalformed
	}
	var m Message
	var ok bool
	if m.Topic, ok = decodeString(topic); !ok {
		return Message{}, ErrMalformed
	}
	if m.Event, ok = decodeString(event); !ok {
		return Message{}, ErrMalformed
	}
	if m.Ref, ok = decodeRef(ref); !ok {
		return Message{}, ErrMalformed
	}
	if joinRef != nil {
		if m.JoinRef, ok = decodeRef(joinRef); !ok {
			return Message{}, ErrMalformed
		}
	}
	m.Payload = payload
	return m, nil
}

// v1Key returns the value of a raw JSON object key if it can be one of the
// keys V1 looks at, and "" otherwise.
func v1Key(raw []byte) string {
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' {
			// An escaped spelling such as "\u0074opic" is still "topic".
			s, _ := decodeString(raw)
			return s
		}
	}
	switch string(inner) {
	case "topic":
		return "topic"
	case "event":
		return "event"
	case "payload":
		return "payload"
	case "ref":
		return "ref"
	case "join_ref":
		return "join_ref"
	}
	return ""
}

func (v1) AppendPush(dst []byte, joinRef Ref, topic, event string, payload []byte, binary bool) (Frame, error) {
	return appendV1(dst, "", topic, event, payload, binary)
}

func (v1) AppendBroadcast(dst []byte, topic, event string, payload []byte, binary bool) (Frame, error) {
	return appendV1(dst, "", topic, event, payload, binary)
}

func appendV1(dst []byte, ref Ref, topic, event string, payload []byte, binary bool) (Frame, error) {
	if binary {
		return Frame{}, ErrBinaryUnsupported
	}
	if !IsJSONObject(payload) {
		return Frame{}, ErrPayloadNotObject
	}
	dst = append(dst, `{"event":`...)
	dst = AppendString(dst, event)
	dst = append(dst, `,"payload":`...)
	dst = append(dst, payload...)
	return Frame{Data: appendV1Tail(dst, ref, topic)}, nil
}

// appendV1Tail closes a V1 object after its payload. Keys go in the order
// Phoenix's encoder emits them: event, payload, ref, topic.
func appendV1Tail(dst []byte, ref Ref, topic string) []byte {
	dst = append(dst, `,"ref":`...)
	dst = appendRef(dst, ref)
	dst = append(dst, `,"topic":`...)
	dst = AppendString(dst, topic)
	return append(dst, '}')
}

func (v1) AppendReply(dst []byte, joinRef, ref Ref, topic, status string, response []byte, binary bool) (Frame, error) {
	if binary {
		return Frame{}, ErrBinaryUnsupported
	}
	dst = append(dst, `{"event":"phx_reply","payload":{"response":`...)
	dst = appendJSONOrNull(dst, response)
	dst = append(dst, `,"status":`...)
	dst = AppendString(dst, status)
	dst = append(dst, '}')
	return Frame{Data: appendV1Tail(dst, ref, topic)}, nil
}
