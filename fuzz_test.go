package plume_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/wire"
)

// fuzzTransport records what the server sends.
type fuzzTransport struct {
	mu     sync.Mutex
	frames []wire.Frame
	closed int
}

func (t *fuzzTransport) Name() string { return "fuzz" }

func (t *fuzzTransport) Send(f wire.Frame) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed != 0 {
		return false
	}
	t.frames = append(t.frames, wire.Frame{Data: append([]byte(nil), f.Data...), Binary: f.Binary})
	return true
}

func (t *fuzzTransport) Close(code int, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed == 0 {
		t.closed = code
	}
}

// fuzzChannel does something different for each event, so that the fuzzer
// reaches every kind of reply, push and stop.
type fuzzChannel struct{}

func (fuzzChannel) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	switch string(p.Bytes()) {
	case `{"refuse":1}`:
		return nil, plume.RefuseJoin(p)
	case `{"error":1}`:
		return nil, errors.New("join error")
	case `{"panic":1}`:
		panic("join panic")
	}
	ch.Push("joined", p) // may be refused: not an object
	ch.Send("after_join")
	return p, nil
}

func (fuzzChannel) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	switch event {
	case "noreply":
		return plume.NoReply, nil
	case "error":
		return plume.ReplyError(p), nil
	case "push":
		return plume.NoReply, ch.Push(event, p)
	case "push_binary":
		return plume.NoReply, ch.Push(event, plume.Binary(p.Bytes()))
	case "broadcast":
		return plume.ReplyOK(nil), ch.Broadcast(event, p)
	case "broadcast_from":
		return plume.ReplyOK(nil), ch.BroadcastFrom(event, p)
	case "binary":
		return plume.ReplyOK(plume.Binary(p.Bytes())), nil
	case "send":
		ch.Send(p)
		return plume.NoReply, nil
	case "subscribe":
		return plume.ReplyOK(nil), ch.Subscribe("room:other")
	case "async":
		ref, err := ch.SocketRef()
		if err != nil {
			return plume.Reply{}, err
		}
		ref.Reply(plume.ReplyStatus("async", p))
		return plume.NoReply, nil
	case "stop":
		return plume.ReplyOK(p), plume.ErrNormal
	case "crash":
		return plume.NoReply, errors.New("crash")
	case "panic":
		panic("handle_in panic")
	}
	// Any other event is the reply's status, whatever its bytes.
	return plume.ReplyStatus(event, p), nil
}

func (fuzzChannel) HandleInfo(ch *plume.Channel, msg any) error {
	switch m := msg.(type) {
	case plume.Payload:
		return ch.Push("info", m)
	case plume.Broadcast:
		return ch.Push("info", map[string]any{"event": m.Event})
	}
	return nil
}

func (fuzzChannel) Intercept() []string { return []string{"broadcast_from"} }

func (fuzzChannel) HandleOut(ch *plume.Channel, event string, p plume.Payload) error {
	return ch.Push(event, p)
}

func (fuzzChannel) Terminate(*plume.Channel, error) {}

// FuzzHandleFrame feeds arbitrary bytes, split into frames at newlines, as
// text or binary frames into a connection that has joined room:1, in V1 or V2.
// It must never panic, and everything the server sends must be a well-formed
// frame of the connection's serializer: text frames valid UTF-8 JSON of the
// right shape, binary frames with consistent headers, no binary in V1.
func FuzzHandleFrame(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s.data), s.binary, s.v1)
	}
	f.Fuzz(handleFrames)
}

var fuzzSeeds = []struct {
	data   string
	binary bool
	v1     bool
}{
	{`[null,"1","phoenix","heartbeat",{}]`, false, false},
	{`["1","2","room:1","echo",{"a":1}]`, false, false},
	{`["1","2","room:1","push","str"]` + "\n" + `["1","3","room:1","push",{"x":[1,2]}]`, false, false},
	{`["1","2","room:1","broadcast",{}]` + "\n" + `["1","3","room:1","broadcast_from",{"b":1}]`, false, false},
	{`["1","2","room:1","subscribe",{}]` + "\n" + `["1","3","room:1","broadcast",{}]`, false, false},
	{`["1","2","room:1","stop",{}]` + "\n" + `["1","3","room:1","echo",{}]`, false, false},
	{`["1","2","room:1","crash",{}]` + "\n" + `["1","3","room:1","panic",{}]`, false, false},
	{`["1","2","room:1","phx_leave",{}]` + "\n" + `[null,"3","room:1","phx_leave",{}]`, false, false},
	{`["9","9","room:1","phx_join",{"x":1}]` + "\n" + `["10","10","room:1","phx_join",{"refuse":1}]`, false, false},
	{`["9","9","room:2","phx_join",{"panic":1}]` + "\n" + `["10","10","room:3","phx_join",{"error":1}]`, false, false},
	{`["9","9","room:2","phx_join",[]]` + "\n" + `["1","2","room:1","send",null]`, false, false},
	{`[null,"4","room:1","async",1]` + "\n" + `[1,2.5e3,"room:1","\u00e9v\u2028",{}]`, false, false},
	{`["1","5","room:1","noreply",{}]` + "\n" + `["1","6","nope","x",{}]`, false, false},
	{"\x00\x01\x01\x06\x04" + "12room:1echo\xde\xad", true, false},
	{"\x00\x01\x01\x06\x06" + "13room:1binary", true, false},
	{"\x00\x01\x01\x06\x0b" + "14room:1push_binary\x01", true, false},
	{"\x00\x01\x01\x06\x05" + "15room:1\xff\xfe\xfd\xfc\xfb", true, false},
	{"\x09\x09\x09", true, false},
	{`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`, false, true},
	{`{"topic":"room:1","event":"echo","payload":{"a":1},"ref":"2","join_ref":"1"}`, false, true},
	{`{"topic":"room:1","event":"push_binary","payload":{},"ref":"3"}` + "\n" + `{"topic":"room:1","event":"binary","payload":{},"ref":"4"}`, false, true},
	{`{"topic":"room:1","event":"phx_leave","payload":{},"ref":"5"}`, false, true},
	{`{"topic":"room:1","event":"x","payload":1,"ref":{}}`, false, true},
	{`not json`, false, true},
}

// TestHandleFrameSeeds runs FuzzHandleFrame's seeds with a leak check: every
// goroutine of a connection ends with Conn.Terminate.
func TestHandleFrameSeeds(t *testing.T) {
	leakcheck.Check(t)
	for _, s := range fuzzSeeds {
		handleFrames(t, []byte(s.data), s.binary, s.v1)
	}
}

// TestServeTransportConnect checks what Connect sees of a connection on a
// custom transport.
func TestServeTransportConnect(t *testing.T) {
	leakcheck.Check(t)
	ep := plume.NewEndpoint(plume.Options{})
	var name, vsn string
	sock := &plume.Socket{Connect: func(_ context.Context, c *plume.Conn) error {
		name, vsn = c.TransportName(), c.Vsn()
		return nil
	}}
	c, err := ep.ServeTransport(context.Background(), sock, &fuzzTransport{}, nil, plume.ConnectInfo{}, "")
	if err != nil {
		t.Fatal(err)
	}
	c.Terminate()
	if name != "fuzz" || vsn != "1.0.0" {
		t.Fatalf("Connect saw transport %q vsn %q, want fuzz 1.0.0", name, vsn)
	}
}

func handleFrames(t *testing.T, data []byte, binary, v1 bool) {
	ep := plume.NewEndpoint(plume.Options{})
	sock := &plume.Socket{MaxChannels: 4}
	sock.Channel("room:*", func() plume.ChannelHandler { return fuzzChannel{} })
	tr := &fuzzTransport{}
	vsn, join := "2.0.0", `["1","1","room:1","phx_join",{}]`
	if v1 {
		vsn, join = "1.0.0", `{"topic":"room:1","event":"phx_join","payload":{},"ref":"1"}`
	}
	c, err := ep.ServeTransport(context.Background(), sock, tr, nil, plume.ConnectInfo{}, vsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.HandleFrame([]byte(join), false); err != nil {
		t.Fatal(err)
	}
	for _, part := range bytes.Split(data, []byte("\n")) {
		if err := c.HandleFrame(part, binary); err != nil {
			break // a transport closes the connection here
		}
	}
	c.Terminate()
	<-c.Done()
	tr.mu.Lock()
	frames := tr.frames
	tr.mu.Unlock()
	for i, fr := range frames {
		if err := checkServerFrame(fr, v1); err != nil {
			t.Fatalf("frame %d of %d: %v\n%q", i, len(frames), err, fr.Data)
		}
	}
}

// checkServerFrame checks that f is a frame phoenix.js can decode.
func checkServerFrame(f wire.Frame, v1 bool) error {
	if f.Binary {
		if v1 {
			return errors.New("binary frame on V1")
		}
		b := f.Data
		need := 0
		switch {
		case len(b) >= 4 && b[0] == 0:
			need = 4 + int(b[1]) + int(b[2]) + int(b[3])
		case len(b) >= 5 && b[0] == 1:
			need = 5 + int(b[1]) + int(b[2]) + int(b[3]) + int(b[4])
		case len(b) >= 3 && b[0] == 2:
			need = 3 + int(b[1]) + int(b[2])
		default:
			return errors.New("bad binary kind or header")
		}
		if len(b) < need {
			return errors.New("binary frame shorter than its header")
		}
		return nil
	}
	if !utf8.Valid(f.Data) || !json.Valid(f.Data) {
		return errors.New("text frame is not valid UTF-8 JSON")
	}
	var event string
	var payload json.RawMessage
	if v1 {
		var msg map[string]json.RawMessage
		if err := json.Unmarshal(f.Data, &msg); err != nil {
			return err
		}
		if len(msg) != 4 || msg["topic"] == nil || msg["event"] == nil || msg["payload"] == nil || msg["ref"] == nil {
			return errors.New("V1 frame without exactly topic, event, payload and ref")
		}
		if !bytes.HasPrefix(f.Data, []byte(`{"event":`)) {
			return errors.New("V1 keys out of order")
		}
		if err := checkRef(msg["ref"]); err != nil {
			return err
		}
		var topic string
		if json.Unmarshal(msg["topic"], &topic) != nil || json.Unmarshal(msg["event"], &event) != nil {
			return errors.New("topic or event not a string")
		}
		payload = msg["payload"]
	} else {
		var arr []json.RawMessage
		if err := json.Unmarshal(f.Data, &arr); err != nil {
			return err
		}
		if len(arr) != 5 {
			return errors.New("V2 frame is not 5 elements")
		}
		if err := checkRef(arr[0]); err != nil {
			return err
		}
		if err := checkRef(arr[1]); err != nil {
			return err
		}
		var topic string
		if json.Unmarshal(arr[2], &topic) != nil || json.Unmarshal(arr[3], &event) != nil {
			return errors.New("topic or event not a string")
		}
		payload = arr[4]
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(payload, &obj); err != nil || obj == nil {
		return errors.New("payload is not an object")
	}
	if event == "phx_reply" {
		var status string
		if len(obj) != 2 || obj["response"] == nil || json.Unmarshal(obj["status"], &status) != nil {
			return errors.New("reply payload is not {response, status}")
		}
	}
	return nil
}

func checkRef(raw json.RawMessage) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return err
	}
	switch v.(type) {
	case nil, string, json.Number:
		return nil
	}
	return errors.New("ref is not null, a string or a number")
}
