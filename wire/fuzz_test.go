package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// maxFuzzFrame bounds text frames in the decode fuzzers. The scanners have no
// size-dependent paths, and the fuzzer otherwise spends its time minimizing
// long "interesting" junk inputs.
const maxFuzzFrame = 1024

// Client frames from phoenix-1.7-transcripts.md, good and bad.
var (
	seedV2Text = []string{
		`[null,"1","phoenix","heartbeat",{}]`,
		`["2","2","campaign:x","phx_join",{"user_id":"u1"}]`,
		`["3","3","campaign:y","phx_join",{}]`,
		`["5","5","dashboard:live","phx_join",{"admin_token":"bad"}]`,
		`["2","8","campaign:x","new_donation",{"amount":100,"donor":"Ann"}]`,
		`["2","11","campaign:x","new_donation",{"amount":1.5,"donor":"Ann"}]`,
		`["2","12","campaign:x","new_donation","not a map"]`,
		`["2","15","campaign:x","ping",{"hello":"world","n":[1,2,3]}]`,
		`["2","16","campaign:x","ping","just a string"]`,
		`["2","17","campaign:x","ping",42]`,
		`["2","18","campaign:x","ping",[1,"two"]]`,
		`["2","19","campaign:x","ping",null]`,
		`[null,"24","campaign:zzz","new_donation",{"amount":1,"donor":"A"}]`,
		`["3","31","campaign:y","phx_leave",{}]`,
		`["1","1","phoenix","heartbeat",{},"extra"]`,
		`["1","1","phoenix","heartbeat"]`,
		`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`,
		`this is not json`,
		`[3,7,"room:1","new_msg",{}]`,
		`["\u0033","a\/b","r\u00e9","e\n",{"k":"\u2028"}]`,
		" [ \"1\" ,\n2 , \"t\" , \"e\" , { } ] ",
	}
	seedV1 = []string{
		`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`,
		`{"topic":"campaign:v","event":"phx_join","payload":{"user_id":"w1"},"ref":"2","join_ref":"2"}`,
		`{"topic":"campaign:v2","event":"phx_join","payload":{},"ref":"3"}`,
		`{"topic":"campaign:v","event":"new_donation","payload":{"amount":7,"donor":"Vic"},"ref":"6","join_ref":"2"}`,
		`{"topic":"campaign:v","event":"phx_leave","payload":{},"ref":"11","join_ref":"10"}`,
		`{"topic":"phoenix","event":"heartbeat","payload":{}}`,
		`{"topic":"campaign:lp1","event":"phx_join","payload":{},"ref":"1","join_ref":"1"}`,
		`[null,"1","phoenix","heartbeat",{}]`,
		`not json`,
		`{"\u0074opic":"t","event":"e","payload":1,"payload":[2],"ref":3,"x":{"ref":4}}`,
	}
	seedV2BinaryHex = []string{
		"00 01 02 0a 04 32 32 30 63 61 6d 70 61 69 67 6e 3a 78 70 69 6e 67 de ad be ef 00 01",
		"00 01 02 0a 04 32 32 31 63 61 6d 70 61 69 67 6e 3a 78 70 69 6e 67",
		"00 01 01 07 09 31 31 70 68 6f 65 6e 69 78 68 65 61 72 74 62 65 61 74 7b 7d",
		"09 09 09",
		"01 01 02 0a 02 32 32 30 63 61 6d 70 61 69 67 6e 3a 78 6f 6b de ad be ef 00 01",
		"00 00 00 00 00",
		"00",
	}
	seedV2BinaryB64 = []string{
		"AAEBCwQxNWNhbXBhaWduOmxwcGluZwECAw==",
		"AAEBDgQxMmNhbXBhaWduOmxwYmlucGluZ2hp",
		"AAEBDgQxM2NhbXBhaWduOmxwYmlucGluZ96tvu8=",
	}
)

func FuzzDecodeV2Text(f *testing.F) {
	for _, s := range seedV2Text {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzFrame {
			return
		}
		orig := bytes.Clone(data)
		got, err := V2.Decode(data, false)
		if !bytes.Equal(data, orig) {
			t.Fatal("Decode modified its input")
		}
		want, ok := refDecodeV2Text(data)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unexpected error %v", err)
		}
		if (err == nil) != ok {
			t.Fatalf("Decode(%q) err = %v, reference ok = %v", data, err, ok)
		}
		if !ok {
			return
		}
		if !sameMessage(got, want) {
			t.Fatalf("Decode(%q)\n got %+v\nwant %+v", data, got, want)
		}
		checkEcho(t, V2, got)
	})
}

func FuzzDecodeV1(f *testing.F) {
	for _, s := range seedV1 {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzFrame {
			return
		}
		got, err := V1.Decode(data, false)
		want, ok := refDecodeV1(data)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unexpected error %v", err)
		}
		if (err == nil) != ok {
			t.Fatalf("Decode(%q) err = %v, reference ok = %v", data, err, ok)
		}
		if _, err := V1.Decode(data, true); !errors.Is(err, ErrMalformed) {
			t.Fatalf("binary frame on V1: %v", err)
		}
		if !ok {
			return
		}
		if !sameMessage(got, want) {
			t.Fatalf("Decode(%q)\n got %+v\nwant %+v", data, got, want)
		}
		checkEcho(t, V1, got)
	})
}

// checkEcho encodes replies and messages with a decoded message's fields:
// they must be valid JSON and decode back to the same fields.
func checkEcho(t *testing.T, s Serializer, m Message) {
	t.Helper()
	f, err := s.AppendReply(nil, m.JoinRef, m.Ref, m.Topic, "ok", m.Payload, false)
	if err != nil || !json.Valid(f.Data) || !utf8.Valid(f.Data) {
		t.Fatalf("reply to %+v: %s, %v", m, f.Data, err)
	}
	if !IsJSONObject(m.Payload) {
		return
	}
	f, err = AppendMessage(s, nil, m.JoinRef, m.Ref, m.Topic, m.Event, m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	back, err := s.Decode(f.Data, false)
	if err != nil {
		t.Fatalf("decode of %s: %v", f.Data, err)
	}
	want := m
	if s == V1 {
		want.JoinRef = "" // V1 never sends join_ref
	}
	if !sameMessage(back, want) {
		t.Fatalf("round trip via %s\n got %+v\nwant %+v", f.Data, back, want)
	}
}

func FuzzDecodeV2Binary(f *testing.F) {
	for _, h := range seedV2BinaryHex {
		b, err := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range seedV2BinaryB64 {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := V2.Decode(data, true)
		want, ok := refDecodeBinary(data)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unexpected error %v", err)
		}
		if (err == nil) != ok {
			t.Fatalf("Decode(% x) err = %v, reference ok = %v", data, err, ok)
		}
		if !ok {
			return
		}
		if !sameMessage(got, want) {
			t.Fatalf("Decode(% x)\n got %+v\nwant %+v", data, got, want)
		}
		// Re-encoding the client frame from the message gives the input back.
		jr, r := got.JoinRef.String(), got.Ref.String()
		re := []byte{0, byte(len(jr)), byte(len(r)), byte(len(got.Topic)), byte(len(got.Event))}
		re = append(append(append(append(append(re, jr...), r...), got.Topic...), got.Event...), got.Payload...)
		if !bytes.Equal(re, data) {
			t.Fatalf("re-encoded % x\n        from % x", re, data)
		}
		// The binary reply echoes every field byte for byte.
		fr, err := V2.AppendReply(nil, got.JoinRef, got.Ref, got.Topic, "ok", got.Payload, true)
		if err != nil || !fr.Binary {
			t.Fatal(err)
		}
		wantReply := append([]byte{1, data[1], data[2], data[3], 2}, data[5:5+len(jr)+len(r)+len(got.Topic)]...)
		wantReply = append(append(wantReply, "ok"...), got.Payload...)
		if !bytes.Equal(fr.Data, wantReply) {
			t.Fatalf("binary reply % x\n         want % x", fr.Data, wantReply)
		}
		// A text reply to it is valid JSON.
		fr, err = V2.AppendReply(nil, got.JoinRef, got.Ref, got.Topic, "ok", nil, false)
		if err != nil || !json.Valid(fr.Data) || !utf8.Valid(fr.Data) {
			t.Fatalf("text reply %s, %v", fr.Data, err)
		}
	})
}

func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "1.0.0", "1.0.5", "1.0.1-dev", "2.0.0", "2.0.3+build", "2.1.0", "1.1.0",
		"3.0.0", "garbage", "2.0", "02.0.0", "2.0.0-rc.1", "2.0.1-rc.1+b.2", "2.0.1-01", "2.0.0+001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, vsn string) {
		s, err := Negotiate(vsn)
		want := refNegotiate(vsn)
		switch {
		case want == "":
			if s != nil || !errors.Is(err, ErrUnsupportedVsn) {
				t.Fatalf("Negotiate(%q) = %v, %v; want ErrUnsupportedVsn", vsn, s, err)
			}
		case err != nil || s == nil || s.Vsn() != want:
			t.Fatalf("Negotiate(%q) = %v, %v; want %s", vsn, s, err, want)
		}
	})
}

// FuzzRoundTrip encodes replies, pushes and broadcasts from arbitrary fields
// and decodes them with encoding/json (and the package's own decoders): the
// fields must come back, with invalid UTF-8 replaced by U+FFFD.
func FuzzRoundTrip(f *testing.F) {
	f.Add("2", "8", "campaign:x", "new_donation", []byte(`{"amount":100,"donor":"Ann"}`), uint8(0))
	f.Add("", "1", "phoenix", "ok", []byte(`{}`), uint8(1))
	f.Add("2", "", "campaign:x", "error", []byte(`{"reason":"invalid_donation"}`), uint8(2))
	f.Add("3", "7", "room:1", "ok", []byte(`"just a string"`), uint8(4))
	f.Add("a\"\\\n\u2028", "\xff", "t\x00\b", "é\u2029", []byte("\xde\xad\xbe\xef"), uint8(0))
	f.Add("2", "20", "campaign:x", "ping", []byte(`[1,"two"]`), uint8(0))
	f.Fuzz(func(t *testing.T, joinRef, ref, topic, event string, payload []byte, flags uint8) {
		jr, r := StringRef(joinRef), StringRef(ref)
		var jrVal, rVal any = string([]rune(joinRef)), string([]rune(ref))
		if flags&1 != 0 {
			jr, jrVal = "", nil
		}
		if flags&2 != 0 {
			r, rVal = "", nil
		}
		if flags&4 != 0 { // number refs
			jr, jrVal = Ref(strconv.Itoa(len(joinRef))), json.Number(strconv.Itoa(len(joinRef)))
			r, rVal = Ref("-"+strconv.Itoa(len(ref))), json.Number("-"+strconv.Itoa(len(ref)))
		}
		wantTopic, wantEvent := string([]rune(topic)), string([]rune(event))
		response := payload
		if !json.Valid(response) || !utf8.Valid(response) {
			response = AppendString(nil, string(payload))
		}
		respVal := unmarshal(t, response)
		object := append(append([]byte(`{"p":`), response...), '}')

		// V2 reply: [join_ref, ref, topic, "phx_reply", {"response", "status"}].
		fr, err := V2.AppendReply(nil, jr, r, topic, event, response, false)
		if err != nil {
			t.Fatal(err)
		}
		wantReply := map[string]any{"response": respVal, "status": wantEvent}
		arr := unmarshal(t, fr.Data)
		if want := []any{jrVal, rVal, wantTopic, "phx_reply", wantReply}; !reflect.DeepEqual(arr, want) {
			t.Fatalf("V2 reply %s\n = %#v\nwant %#v", fr.Data, arr, want)
		}
		if !bytes.HasSuffix(fr.Data, append(append(append([]byte(`"phx_reply",{"response":`), response...), `,"status":`...), append(AppendString(nil, event), "}]"...)...)) {
			t.Fatalf("V2 reply key order: %s", fr.Data)
		}

		// V1 reply: no join_ref.
		fr, err = V1.AppendReply(nil, jr, r, topic, event, response, false)
		if err != nil {
			t.Fatal(err)
		}
		obj := unmarshal(t, fr.Data)
		if want := map[string]any{"event": "phx_reply", "payload": wantReply, "ref": rVal, "topic": wantTopic}; !reflect.DeepEqual(obj, want) {
			t.Fatalf("V1 reply %s\n = %#v\nwant %#v", fr.Data, obj, want)
		}

		// Pushes and broadcasts, decoded by encoding/json and by Decode.
		for _, s := range []Serializer{V1, V2} {
			for kind, enc := range []func() (Frame, error){
				func() (Frame, error) { return s.AppendPush(nil, jr, topic, event, object, false) },
				func() (Frame, error) { return s.AppendBroadcast(nil, topic, event, object, false) },
				func() (Frame, error) { return AppendMessage(s, nil, jr, r, topic, event, object) },
			} {
				fr, err := enc()
				if err != nil || fr.Binary {
					t.Fatal(err)
				}
				wantJR, wantR := jrVal, any(nil)
				switch kind {
				case 1:
					wantJR = nil
				case 2:
					wantR = rVal
				}
				got := unmarshal(t, fr.Data)
				var want any = []any{wantJR, wantR, wantTopic, wantEvent, map[string]any{"p": respVal}}
				if s == V1 {
					want = map[string]any{"event": wantEvent, "payload": map[string]any{"p": respVal}, "ref": wantR, "topic": wantTopic}
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s kind %d: %s\n = %#v\nwant %#v", s.Vsn(), kind, fr.Data, got, want)
				}
				m, err := s.Decode(fr.Data, false)
				if err != nil || m.Topic != wantTopic || m.Event != wantEvent || !bytes.Equal(m.Payload, object) {
					t.Fatalf("%s kind %d: Decode(%s) = %+v, %v", s.Vsn(), kind, fr.Data, m, err)
				}
			}
		}

		// Binary reply, push and broadcast: fields verbatim, or ErrFieldTooLong.
		jrS, rS := jr.String(), r.String()
		fr, err = V2.AppendReply(nil, jr, r, topic, event, payload, true)
		if tooLong(jrS, rS, topic, event) {
			if !errors.Is(err, ErrFieldTooLong) {
				t.Fatalf("binary reply: err = %v", err)
			}
		} else if want := binFrame(1, payload, jrS, rS, topic, event); err != nil || !fr.Binary || !bytes.Equal(fr.Data, want) {
			t.Fatalf("binary reply % x, %v\nwant % x", fr.Data, err, want)
		}
		fr, err = V2.AppendPush(nil, jr, topic, event, payload, true)
		if tooLong(jrS, topic, event) {
			if !errors.Is(err, ErrFieldTooLong) {
				t.Fatalf("binary push: err = %v", err)
			}
		} else if want := binFrame(0, payload, jrS, topic, event); err != nil || !fr.Binary || !bytes.Equal(fr.Data, want) {
			t.Fatalf("binary push % x, %v\nwant % x", fr.Data, err, want)
		}
		fr, err = V2.AppendBroadcast(nil, topic, event, payload, true)
		if tooLong(topic, event) {
			if !errors.Is(err, ErrFieldTooLong) {
				t.Fatalf("binary broadcast: err = %v", err)
			}
		} else if want := binFrame(2, payload, topic, event); err != nil || !fr.Binary || !bytes.Equal(fr.Data, want) {
			t.Fatalf("binary broadcast % x, %v\nwant % x", fr.Data, err, want)
		}
	})
}

func unmarshal(t *testing.T, data []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil || d.More() {
		t.Fatalf("invalid JSON %s: %v", data, err)
	}
	return v
}

func tooLong(fields ...string) bool {
	for _, f := range fields {
		if len(f) > 255 {
			return true
		}
	}
	return false
}

// binFrame builds a binary frame independently: kind, lengths, fields, payload.
func binFrame(kind byte, payload []byte, fields ...string) []byte {
	b := []byte{kind}
	for _, f := range fields {
		b = append(b, byte(len(f)))
	}
	for _, f := range fields {
		b = append(b, f...)
	}
	return append(b, payload...)
}
