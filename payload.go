package plume

import (
	"encoding/json"
	"fmt"
)

// Payload is a message payload as received: JSON text, or raw bytes when the
// client sent a binary frame.
type Payload struct {
	data   []byte
	binary bool
}

// JSONPayload returns a Payload holding the JSON text b.
func JSONPayload(b []byte) Payload { return Payload{data: b} }

// BinaryPayload returns a binary Payload.
func BinaryPayload(b []byte) Payload { return Payload{data: b, binary: true} }

// IsBinary reports whether the client sent the payload in a binary frame.
func (p Payload) IsBinary() bool { return p.binary }

// Bytes returns the JSON text, or the binary bytes.
func (p Payload) Bytes() []byte { return p.data }

// Decode unmarshals a JSON payload into v.
func (p Payload) Decode(v any) error {
	if p.binary {
		return fmt.Errorf("plume: cannot decode a binary payload as JSON")
	}
	if len(p.data) == 0 {
		return json.Unmarshal([]byte("null"), v)
	}
	return json.Unmarshal(p.data, v)
}

// Map decodes a JSON object payload; anything else gives nil.
func (p Payload) Map() map[string]any {
	var m map[string]any
	if p.binary || json.Unmarshal(p.data, &m) != nil {
		return nil
	}
	return m
}

// String returns the JSON text, or a short description of binary bytes.
func (p Payload) String() string {
	if p.binary {
		return fmt.Sprintf("<binary %d bytes>", len(p.data))
	}
	return string(p.data)
}

// MarshalJSON returns the JSON text, so a received payload can be sent back
// unchanged.
func (p Payload) MarshalJSON() ([]byte, error) {
	if p.binary {
		return nil, fmt.Errorf("plume: binary payload has no JSON form")
	}
	if len(p.data) == 0 {
		return []byte("null"), nil
	}
	return p.data, nil
}

// Binary marks bytes to be sent in a binary frame (Phoenix's {:binary, data}).
type Binary []byte

// encodePayload turns a user value into wire bytes. nil becomes {}.
func encodePayload(v any) (data []byte, binary bool, err error) {
	switch p := v.(type) {
	case nil:
		return []byte("{}"), false, nil
	case Binary:
		return p, true, nil
	case Payload:
		if p.binary {
			return p.data, true, nil
		}
		if len(p.data) == 0 {
			return []byte("null"), false, nil
		}
		return p.data, false, nil
	case *Payload:
		return encodePayload(*p)
	case json.RawMessage:
		if len(p) == 0 {
			return []byte("null"), false, nil
		}
		return p, false, nil
	}
	b, err := json.Marshal(v)
	return b, false, err
}

// encodeObject is encodePayload for pushes and broadcasts, which must be a
// JSON object or binary.
func encodeObject(v any) ([]byte, bool, error) {
	b, bin, err := encodePayload(v)
	if err != nil {
		return nil, false, err
	}
	if !bin && !isJSONObject(b) {
		return nil, false, ErrBadPayload
	}
	return b, bin, nil
}
