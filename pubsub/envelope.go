package pubsub

import (
	"encoding/binary"
	"errors"
)

// ErrBadEnvelope reports bytes that are not an envelope.
var ErrBadEnvelope = errors.New("pubsub: malformed envelope")

const envelopeVersion = 1

// MarshalEnvelope encodes m with the name of the node that sent it, for
// adapters to carry between nodes:
//
//	version(1) flags(1) len(node)(2) node len(topic)(2) topic len(event)(2) event payload...
//
// Every adapter uses this one format, so nodes can be mixed freely.
func MarshalEnvelope(origin string, m *Message) []byte {
	b := make([]byte, 0, 8+len(origin)+len(m.Topic)+len(m.Event)+len(m.Payload))
	var flags byte
	if m.Binary {
		flags |= 1
	}
	b = append(b, envelopeVersion, flags)
	b = appendField(b, origin)
	b = appendField(b, m.Topic)
	b = appendField(b, m.Event)
	return append(b, m.Payload...)
}

func appendField(b []byte, s string) []byte {
	if len(s) > 0xffff {
		s = s[:0xffff]
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// UnmarshalEnvelope decodes an envelope made by MarshalEnvelope.
func UnmarshalEnvelope(b []byte) (origin string, m *Message, err error) {
	if len(b) < 2 || b[0] != envelopeVersion {
		return "", nil, ErrBadEnvelope
	}
	flags := b[1]
	b = b[2:]
	var fields [3]string
	for i := range fields {
		if len(b) < 2 {
			return "", nil, ErrBadEnvelope
		}
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if len(b) < n {
			return "", nil, ErrBadEnvelope
		}
		fields[i] = string(b[:n])
		b = b[n:]
	}
	payload := make([]byte, len(b))
	copy(payload, b)
	return fields[0], &Message{Topic: fields[1], Event: fields[2], Payload: payload, Binary: flags&1 != 0}, nil
}
