package plume_test

import (
	"io"
	"net/http/httptest"
	"testing"

	"github.com/plumehq/plume"
)

var ioReadFull = io.ReadFull

type echoChannel struct{}

func (echoChannel) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	return nil, nil
}

func (echoChannel) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	return plume.ReplyOK(p), nil
}

func TestSmoke(t *testing.T) {
	sock := &plume.Socket{}
	sock.Channel("room:*", func() plume.ChannelHandler { return echoChannel{} })
	ep := plume.NewEndpoint(plume.Options{})
	ep.Mount("/socket", sock)
	srv := httptest.NewServer(ep)
	defer srv.Close()
	c := dialRaw(t, srv, "vsn=2.0.0", nil)
	defer c.Close()
	c.send(`[null,"1","phoenix","heartbeat",{}]`)
	c.expect(`[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
	c.send(`["2","2","room:1","phx_join",{}]`)
	c.expect(`["2","2","room:1","phx_reply",{"response":{},"status":"ok"}]`)
	c.send(`["2","3","room:1","ping",{"a":1}]`)
	c.expect(`["2","3","room:1","phx_reply",{"response":{"a":1},"status":"ok"}]`)
}
