package plume

import (
	"context"

	"github.com/plumehq/plume/wire"
)

// ServeTransport connects a client that arrives over a custom transport
// (Server-Sent Events, an in-memory test client such as package channeltest)
// to socket s: it runs s.Connect with params and info, picks the serializer
// for vsn ("" is "1.0.0", as when phoenix.js sends none) and starts the
// connection on t. The HTTP-only checks of the built-in transports (origin,
// upgrade) are the caller's business. A refusal returns Connect's error;
// an endpoint that is shutting down refuses with [ErrDraining].
//
// After it returns, the transport feeds inbound frames to
// [Conn.HandleFrame] and calls [Conn.Terminate] exactly once when the client
// is gone, including after the server asked it to close through
// [Transport.Close].
func (e *Endpoint) ServeTransport(ctx context.Context, s *Socket, t Transport, params Params, info ConnectInfo, vsn string) (*Conn, error) {
	if e.draining.Load() {
		return nil, ErrDraining
	}
	ser, err := wire.Negotiate(vsn)
	if err != nil {
		return nil, err
	}
	if params == nil {
		params = Params{}
	}
	c := &Conn{Params: params, Info: info, endpoint: e, socket: s, ser: ser, tname: t.Name()}
	if err := e.runConnect(ctx, s, c, t.Name()); err != nil {
		return nil, err
	}
	c.transport = t
	c.start()
	return c, nil
}
