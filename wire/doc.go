// Package wire is the Phoenix Channels wire format: the message model and the
// serializers that turn WebSocket and long-poll frames into messages and back.
//
// Two serializers exist, as in Phoenix: [V1] ("1.0.0", JSON objects) and [V2]
// ("2.0.0", JSON arrays plus binary frames). [Negotiate] picks one from the
// client's vsn parameter with Phoenix's rules.
//
// Encoders append to a caller's buffer and never reflect over the envelope, so
// that a broadcast can be encoded once and the same bytes sent to every
// subscriber.
package wire
