package pubsub

import (
	"bytes"
	"testing"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, m := range []*Message{
		{Topic: "room:1", Event: "new_msg", Payload: []byte(`{"a":1}`)},
		{Topic: "", Event: "", Payload: nil},
		{Topic: "bin", Event: "ev", Payload: []byte{0, 1, 2, 255}, Binary: true},
	} {
		b := MarshalEnvelope("node-1", m)
		origin, got, err := UnmarshalEnvelope(b)
		if err != nil {
			t.Fatal(err)
		}
		if origin != "node-1" || got.Topic != m.Topic || got.Event != m.Event || got.Binary != m.Binary || !bytes.Equal(got.Payload, m.Payload) {
			t.Fatalf("round trip of %+v gave %q %+v", m, origin, got)
		}
	}
}

func TestEnvelopeRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, {1}, {2, 0}, {1, 0, 0, 5, 'a'}, {1, 0, 0, 0, 0, 0, 0}} {
		if _, _, err := UnmarshalEnvelope(b); err == nil {
			t.Fatalf("accepted %v", b)
		}
	}
}

func FuzzUnmarshalEnvelope(f *testing.F) {
	f.Add(MarshalEnvelope("n", &Message{Topic: "t", Event: "e", Payload: []byte("{}")}))
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		origin, m, err := UnmarshalEnvelope(b)
		if err != nil {
			return
		}
		again := MarshalEnvelope(origin, m)
		o2, m2, err := UnmarshalEnvelope(again)
		if err != nil || o2 != origin || m2.Topic != m.Topic || m2.Event != m.Event || !bytes.Equal(m2.Payload, m.Payload) {
			t.Fatalf("re-encoding changed the envelope")
		}
	})
}
