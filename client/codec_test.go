package client

import (
	"bytes"
	"testing"
	"time"

	"github.com/plumehq/plume/wire"
)

func TestEncodeFrame(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ser    wire.Serializer
		m      outMsg
		want   string
		binary bool
	}{
		{
			name: "v2 join",
			ser:  wire.V2,
			m:    outMsg{joinRef: "3", ref: "3", topic: "room:1", event: "phx_join", payload: []byte(`{"a":1}`)},
			want: `["3","3","room:1","phx_join",{"a":1}]`,
		},
		{
			name: "v2 heartbeat",
			ser:  wire.V2,
			m:    outMsg{ref: "8", topic: "phoenix", event: "heartbeat", payload: []byte(`{}`)},
			want: `[null,"8","phoenix","heartbeat",{}]`,
		},
		{
			name: "v2 non-object payload, escaped topic",
			ser:  wire.V2,
			m:    outMsg{joinRef: "1", ref: "2", topic: "a\"b", event: "e", payload: []byte(`[1]`)},
			want: `["1","2","a\"b","e",[1]]`,
		},
		{
			name:   "v2 binary push, 5-byte header",
			ser:    wire.V2,
			m:      outMsg{joinRef: "12", ref: "3", topic: "t", event: "ev", payload: []byte{0, 255}, binary: true},
			want:   "\x00\x02\x01\x01\x02" + "12" + "3" + "t" + "ev" + "\x00\xff",
			binary: true,
		},
		{
			name: "v1",
			ser:  wire.V1,
			m:    outMsg{joinRef: "1", ref: "2", topic: "room:1", event: "new", payload: []byte(`{"x":1}`)},
			want: `{"topic":"room:1","event":"new","payload":{"x":1},"ref":"2","join_ref":"1"}`,
		},
	} {
		got, bin, err := encodeFrame(tc.ser, &tc.m)
		if err != nil || string(got) != tc.want || bin != tc.binary {
			t.Errorf("%s: got %q %v %v, want %q", tc.name, got, bin, err, tc.want)
		}
		if !tc.binary {
			// What we encode, the server's decoder reads back.
			wm, err := tc.ser.Decode(got, false)
			if err != nil || wm.Topic != tc.m.topic || wm.Ref.String() != tc.m.ref {
				t.Errorf("%s: server decode %+v %v", tc.name, wm, err)
			}
		} else {
			wm, err := wire.V2.Decode(got, true)
			if err != nil || wm.JoinRef.String() != "12" || wm.Ref.String() != "3" || !bytes.Equal(wm.Payload, []byte{0, 255}) {
				t.Errorf("%s: server decode %+v %v", tc.name, wm, err)
			}
		}
	}
	long := string(bytes.Repeat([]byte("x"), 256))
	if _, _, err := encodeFrame(wire.V2, &outMsg{topic: long, event: "e", binary: true}); err != wire.ErrFieldTooLong {
		t.Errorf("long topic: %v", err)
	}
	if _, _, err := encodeFrame(wire.V1, &outMsg{topic: "t", event: "e", binary: true}); err != wire.ErrBinaryUnsupported {
		t.Errorf("v1 binary: %v", err)
	}
}

// The binary decoders read what the server's encoders write.
func TestDecodeServerBinary(t *testing.T) {
	push, _ := wire.V2.AppendPush(nil, `"7"`, "room:1", "ev", []byte{1, 2}, true)
	reply, _ := wire.V2.AppendReply(nil, `"7"`, `"9"`, "room:1", "ok", []byte{3}, true)
	bcast, _ := wire.V2.AppendBroadcast(nil, "room:1", "b", []byte{}, true)
	m, err := decodeFrame(wire.V2, push.Data, true)
	if err != nil || m.joinRef != "7" || m.ref != "" || m.topic != "room:1" || m.event != "ev" || !bytes.Equal(m.payload, []byte{1, 2}) {
		t.Errorf("push %+v %v", m, err)
	}
	m, err = decodeFrame(wire.V2, reply.Data, true)
	if err != nil || m.joinRef != "7" || m.ref != "9" || m.event != wire.EventReply || m.status != "ok" || !bytes.Equal(m.response, []byte{3}) {
		t.Errorf("reply %+v %v", m, err)
	}
	m, err = decodeFrame(wire.V2, bcast.Data, true)
	if err != nil || m.joinRef != "" || m.topic != "room:1" || m.event != "b" || len(m.payload) != 0 {
		t.Errorf("broadcast %+v %v", m, err)
	}
	for _, bad := range [][]byte{nil, {3}, {0, 1}, {1, 5, 0, 0, 0}, {2, 1, 1, 'a'}, {2, 1, 0, 0xff}} {
		if _, err := decodeFrame(wire.V2, bad, true); err == nil {
			t.Errorf("decoded %x", bad)
		}
	}
	// Text replies split status and response.
	m, err = decodeFrame(wire.V2, []byte(`["1","2","t","phx_reply",{"status":"error","response":[1]}]`), false)
	if err != nil || m.status != "error" || string(m.response) != "[1]" || m.ref != "2" {
		t.Errorf("text reply %+v %v", m, err)
	}
}

func TestEndpointURL(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		params   map[string]any
		want     string
	}{
		{"ws://h/socket", nil, "ws://h/socket/websocket?vsn=2.0.0"},
		{"https://h/socket/", nil, "wss://h/socket/websocket?vsn=2.0.0"},
		{"http://h:4000/socket?a=1", map[string]any{"b": "x y"}, "ws://h:4000/socket/websocket?a=1&b=x%20y&vsn=2.0.0"},
		{
			"ws://h/socket",
			map[string]any{"user": map[string]any{"id": 1, "tags": []any{"a", true}}, "z": 1.5, "n": nil},
			"ws://h/socket/websocket?user%5Bid%5D=1&user%5Btags%5D%5B0%5D=a&user%5Btags%5D%5B1%5D=true&z=1.5&vsn=2.0.0",
		},
	} {
		got, err := endpointURL(tc.endpoint, tc.params, "2.0.0")
		if err != nil || got != tc.want {
			t.Errorf("%s %v:\ngot  %s %v\nwant %s", tc.endpoint, tc.params, got, err, tc.want)
		}
	}
	if got := encodeURIComponent("a-_.!~*'() /?&=é"); got != "a-_.!~*'()%20%2F%3F%26%3D%C3%A9" {
		t.Errorf("encodeURIComponent: %s", got)
	}
}

func TestBackoffSchedules(t *testing.T) {
	var got []time.Duration
	for i := 1; i <= 11; i++ {
		got = append(got, DefaultReconnectAfter(i))
	}
	ms := time.Millisecond
	want := []time.Duration{10 * ms, 50 * ms, 100 * ms, 150 * ms, 200 * ms, 250 * ms, 500 * ms, 1000 * ms, 2000 * ms, 5000 * ms, 5000 * ms}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reconnect %v, want %v", got, want)
		}
	}
	for i, w := range []time.Duration{1000 * ms, 2000 * ms, 5000 * ms, 10000 * ms, 10000 * ms} {
		if g := DefaultRejoinAfter(i + 1); g != w {
			t.Fatalf("rejoin try %d: %v, want %v", i+1, g, w)
		}
	}
}

func TestClientFrameMasked(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte{'a'}, n)
		f := clientFrame(opText, payload)
		hdr := len(f) - n
		if f[0] != 0x81 || f[1]&0x80 == 0 {
			t.Fatalf("n=%d header %x", n, f[:2])
		}
		mask := f[hdr-4 : hdr]
		out := append([]byte(nil), f[hdr:]...)
		for i := range out {
			out[i] ^= mask[i%4]
		}
		if !bytes.Equal(out, payload) {
			t.Fatalf("n=%d: payload does not unmask", n)
		}
	}
}
