package plume

import "github.com/plumehq/plume/wire"

// appendControl encodes phx_close and phx_error, the only server messages
// whose ref is set and equal to the join_ref.
func appendControl(ser wire.Serializer, joinRef wire.Ref, topic, event string, payload []byte) wire.Frame {
	f, _ := wire.AppendMessage(ser, nil, joinRef, joinRef, topic, event, payload)
	return f
}

func isJSONObject(b []byte) bool { return wire.IsJSONObject(b) }
