// Package plume is Phoenix Channels for Go: real-time WebSocket (and
// long-poll) communication with topic-routed channels, broadcasts from
// anywhere, and presence, wire-compatible with the official phoenix.js client.
//
// The pieces a Phoenix developer knows map onto Go names:
//
//   - An [Endpoint] is an http.Handler; [Endpoint.Mount] places a [Socket]
//     definition at a path such as "/socket".
//   - A [Socket] authenticates connections (Phoenix's connect/3 and id/1) in
//     its Connect func and routes topics to channels with [Socket.Channel].
//   - A [ChannelHandler] implements join/3; the optional [InHandler],
//     [InfoHandler], [OutHandler] and [Terminator] interfaces are handle_in/3,
//     handle_info/2, intercept + handle_out/3 and terminate/2.
//   - Every callback receives the joined [*Channel]: push, reply, broadcast,
//     broadcast_from, assigns, send to self.
//
// A channel is one instance per joined topic per connection and its callbacks
// run one at a time, so its own state needs no locks. Broadcasts are encoded
// once per serializer and the same bytes are queued on every subscriber's
// connection ("fastlane"); a connection whose bounded queue overflows is
// closed, and a broadcaster never waits for a slow client.
//
// See docs/phoenix-mapping.md for the full table.
package plume
