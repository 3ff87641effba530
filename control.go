package plume

import "github.com/plumehq/plume/wire"

// appendControl encodes phx_close and phx_error, the only server messages
// whose ref is set and equal to the join_ref.
func appendControl(ser wire.Serializer, joinRef wire.Ref, topic, event string, payload []byte) wire.Frame {
	var b []byte
	if ser.Vsn() == wire.V1.Vsn() {
		b = append(b, `{"event":`...)
		b = wire.AppendString(b, event)
		b = append(b, `,"payload":`...)
		b = append(b, payload...)
		b = append(b, `,"ref":`...)
		b = appendRefJSON(b, joinRef)
		b = append(b, `,"topic":`...)
		b = wire.AppendString(b, topic)
		b = append(b, '}')
		return wire.Frame{Data: b}
	}
	b = append(b, '[')
	b = appendRefJSON(b, joinRef)
	b = append(b, ',')
	b = appendRefJSON(b, joinRef)
	b = append(b, ',')
	b = wire.AppendString(b, topic)
	b = append(b, ',')
	b = wire.AppendString(b, event)
	b = append(b, ',')
	b = append(b, payload...)
	b = append(b, ']')
	return wire.Frame{Data: b}
}

func appendRefJSON(b []byte, r wire.Ref) []byte {
	if r.IsNull() {
		return append(b, "null"...)
	}
	return append(b, r...)
}

func isJSONObject(b []byte) bool { return wire.IsJSONObject(b) }
