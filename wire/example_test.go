package wire_test

import (
	"fmt"

	"github.com/plumehq/plume/wire"
)

// A heartbeat from phoenix.js, answered the way Phoenix answers it.
func Example() {
	// The client connected with ?vsn=2.0.0.
	s, err := wire.Negotiate("2.0.0")
	if err != nil {
		panic(err) // answer HTTP 403
	}

	m, err := s.Decode([]byte(`[null,"1","phoenix","heartbeat",{}]`), false)
	if err != nil {
		panic(err) // close the socket, as Phoenix does
	}
	fmt.Println(m.Topic, m.Event, string(m.Ref), m.Ref.String(), m.JoinRef.IsNull())

	if m.Topic == wire.TopicPhoenix && m.Event == wire.EventHeartbeat {
		f, err := s.AppendReply(nil, "", m.Ref, m.Topic, "ok", []byte(`{}`), false)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s binary=%v\n", f.Data, f.Binary)
	}

	// The same exchange with a client that sent no vsn: V1.
	s, _ = wire.Negotiate("")
	m, _ = s.Decode([]byte(`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`), false)
	f, _ := s.AppendReply(nil, m.JoinRef, m.Ref, m.Topic, "ok", []byte(`{}`), false)
	fmt.Printf("%s\n", f.Data)

	// Output:
	// phoenix heartbeat "1" 1 true
	// [null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}] binary=false
	// {"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"phoenix"}
}

// A binary push gets a binary reply that echoes its refs.
func Example_binary() {
	s, _ := wire.Negotiate("2.0.0")
	frame := []byte("\x00\x01\x02\x0a\x04" + "220campaign:xping" + "\xde\xad\xbe\xef")
	m, err := s.Decode(frame, true)
	if err != nil {
		panic(err)
	}
	f, _ := s.AppendReply(nil, m.JoinRef, m.Ref, m.Topic, "ok", m.Payload, m.Binary)
	fmt.Printf("% x\n", f.Data)
	// Output:
	// 01 01 02 0a 02 32 32 30 63 61 6d 70 61 69 67 6e 3a 78 6f 6b de ad be ef
}

// Phoenix sends phx_close and phx_error with ref = join_ref.
func ExampleAppendMessage() {
	f, _ := wire.AppendMessage(wire.V2, nil, `"2"`, `"2"`, "campaign:x", wire.EventClose, []byte(`{}`))
	fmt.Printf("%s\n", f.Data)
	f, _ = wire.AppendMessage(wire.V1, nil, `"2"`, `"2"`, "campaign:x", wire.EventClose, []byte(`{}`))
	fmt.Printf("%s\n", f.Data)
	// Output:
	// ["2","2","campaign:x","phx_close",{}]
	// {"event":"phx_close","payload":{},"ref":"2","topic":"campaign:x"}
}
