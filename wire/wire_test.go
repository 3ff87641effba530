package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// unhex turns "00 01 ff" (the transcripts' notation) into bytes.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameMessage(a, b Message) bool {
	return a.JoinRef == b.JoinRef && a.Ref == b.Ref && a.Topic == b.Topic &&
		a.Event == b.Event && bytes.Equal(a.Payload, b.Payload) && a.Binary == b.Binary
}

type decodeCase struct {
	name   string
	data   []byte
	binary bool
	want   Message
}

func text(name, data string, want Message) decodeCase {
	return decodeCase{name: name, data: []byte(data), want: want}
}

func msg(joinRef, ref Ref, topic, event, payload string) Message {
	return Message{JoinRef: joinRef, Ref: ref, Topic: topic, Event: event, Payload: []byte(payload)}
}

func checkDecode(t *testing.T, s Serializer, tests []decodeCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Decode(tt.data, tt.binary)
			if err != nil {
				t.Fatalf("Decode(%q) error: %v", tt.data, err)
			}
			if !sameMessage(got, tt.want) {
				t.Fatalf("Decode(%q)\n got %+v (payload %q)\nwant %+v (payload %q)",
					tt.data, got, got.Payload, tt.want, tt.want.Payload)
			}
		})
	}
}

func TestDecodeV2Text(t *testing.T) {
	checkDecode(t, V2, []decodeCase{
		// Frames from the transcripts.
		text("heartbeat", `[null,"1","phoenix","heartbeat",{}]`,
			msg("", `"1"`, "phoenix", "heartbeat", `{}`)),
		text("join", `["2","2","campaign:x","phx_join",{"user_id":"u1"}]`,
			msg(`"2"`, `"2"`, "campaign:x", "phx_join", `{"user_id":"u1"}`)),
		text("push", `["2","8","campaign:x","new_donation",{"amount":100,"donor":"Ann"}]`,
			msg(`"2"`, `"8"`, "campaign:x", "new_donation", `{"amount":100,"donor":"Ann"}`)),
		text("leave", `["3","31","campaign:y","phx_leave",{}]`,
			msg(`"3"`, `"31"`, "campaign:y", "phx_leave", `{}`)),
		text("extra trailing element ignored", `["1","1","phoenix","heartbeat",{},"extra"]`,
			msg(`"1"`, `"1"`, "phoenix", "heartbeat", `{}`)),
		text("many extra elements", `["1","1","t","e",{},1,[2,{"a":[]}],"x]",null]`,
			msg(`"1"`, `"1"`, "t", "e", `{}`)),
		// Any JSON payload type (V2.10).
		text("payload string", `["2","16","campaign:x","ping","just a string"]`,
			msg(`"2"`, `"16"`, "campaign:x", "ping", `"just a string"`)),
		text("payload number", `["2","17","campaign:x","ping",42]`,
			msg(`"2"`, `"17"`, "campaign:x", "ping", `42`)),
		text("payload array", `["2","18","campaign:x","ping",[1,"two"]]`,
			msg(`"2"`, `"18"`, "campaign:x", "ping", `[1,"two"]`)),
		text("payload null", `["2","19","campaign:x","ping",null]`,
			msg(`"2"`, `"19"`, "campaign:x", "ping", `null`)),
		text("payload bool", `["2","19","campaign:x","ping",true]`,
			msg(`"2"`, `"19"`, "campaign:x", "ping", `true`)),
		text("payload nested", `["2","15","campaign:x","ping",{"hello":"world","n":[1,2,3]}]`,
			msg(`"2"`, `"15"`, "campaign:x", "ping", `{"hello":"world","n":[1,2,3]}`)),
		text("payload with brackets in strings", `["2","15","c","p",{"a]":"[{\"}"}]`,
			msg(`"2"`, `"15"`, "c", "p", `{"a]":"[{\"}"}`)),
		// Refs as strings, numbers and null, kept with their type.
		text("number refs", `[3,7,"room:1","new_msg",{}]`,
			msg(`3`, `7`, "room:1", "new_msg", `{}`)),
		text("negative and float refs", `[-1,2.5e3,"room:1","e",{}]`,
			msg(`-1`, `2.5e3`, "room:1", "e", `{}`)),
		text("null refs", `[null,null,"room:1","e",{}]`,
			msg("", "", "room:1", "e", `{}`)),
		text("empty string refs", `["","","room:1","e",{}]`,
			msg(`""`, `""`, "room:1", "e", `{}`)),
		text("escaped refs canonicalised", `["\u0033","a\/b\"c","room:1","e",{}]`,
			msg(`"3"`, `"a/b\"c"`, "room:1", "e", `{}`)),
		text("U+2028 in ref escaped", "[\"a\u2028\",\"1\",\"t\",\"e\",{}]",
			msg(`"a\u2028"`, `"1"`, "t", "e", `{}`)),
		// Whitespace anywhere JSON allows it.
		text("whitespace", " \t\r\n[ \"1\" , 2 ,\n\"t\" ,\t\"e\" , { \"a\" : 1 } ] \n",
			msg(`"1"`, `2`, "t", "e", `{ "a" : 1 }`)),
		// Topic and event with escapes and non-ASCII text.
		text("escaped topic and event", `[null,"1","room:\u00e9\n","ev\"ent",{}]`,
			msg("", `"1"`, "room:é\n", `ev"ent`, `{}`)),
		text("utf8 topic", `[null,"1","café:☕","😀",{}]`,
			msg("", `"1"`, "café:☕", "😀", `{}`)),
		text("empty topic and event", `[null,"1","","",{}]`,
			msg("", `"1"`, "", "", `{}`)),
	})
}

func TestDecodeV2Binary(t *testing.T) {
	bin := func(name string, data []byte, want Message) decodeCase {
		want.Binary = true
		return decodeCase{name: name, data: data, binary: true, want: want}
	}
	checkDecode(t, V2, []decodeCase{
		// V2.11 and LP.3 / LP.9 frames.
		bin("transcript V2.11", unhex(t, "00 01 02 0a 04 32 32 30 63 61 6d 70 61 69 67 6e 3a 78 70 69 6e 67 de ad be ef 00 01"),
			msg(`"2"`, `"20"`, "campaign:x", "ping", "\xde\xad\xbe\xef\x00\x01")),
		bin("transcript V2.11 empty payload", unhex(t, "00 01 02 0a 04 32 32 31 63 61 6d 70 61 69 67 6e 3a 78 70 69 6e 67"),
			msg(`"2"`, `"21"`, "campaign:x", "ping", "")),
		bin("transcript LP.3", unb64(t, "AAEBCwQxNWNhbXBhaWduOmxwcGluZwECAw=="),
			msg(`"1"`, `"5"`, "campaign:lp", "ping", "\x01\x02\x03")),
		bin("transcript LP.9", unb64(t, "AAEBDgQxMmNhbXBhaWduOmxwYmlucGluZ2hp"),
			msg(`"1"`, `"2"`, "campaign:lpbin", "ping", "hi")),
		// Empty join_ref and ref decode to "" (a string), as in Phoenix.
		bin("empty refs", []byte("\x00\x00\x00\x01\x01te{}"),
			msg(`""`, `""`, "t", "e", "{}")),
		bin("header only", []byte{0, 0, 0, 0, 0},
			msg(`""`, `""`, "", "", "")),
		bin("refs needing escapes", []byte("\x00\x02\x01\x01\x01a\"\x01te"),
			msg(`"a\""`, `"\u0001"`, "t", "e", "")),
		bin("255-byte fields", append(append([]byte{0, 255, 0, 255, 0}, strings.Repeat("j", 255)...), strings.Repeat("t", 255)...),
			msg(Ref(`"`+strings.Repeat("j", 255)+`"`), `""`, strings.Repeat("t", 255), "", "")),
	})
}

func TestDecodeV1(t *testing.T) {
	checkDecode(t, V1, []decodeCase{
		// V1.1, V1.2, V1.3 and LP.10.
		text("heartbeat", `{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`,
			msg("", `"1"`, "phoenix", "heartbeat", `{}`)),
		text("join with join_ref", `{"topic":"campaign:v","event":"phx_join","payload":{"user_id":"w1"},"ref":"2","join_ref":"2"}`,
			msg(`"2"`, `"2"`, "campaign:v", "phx_join", `{"user_id":"w1"}`)),
		text("join without join_ref key", `{"topic":"campaign:v2","event":"phx_join","payload":{},"ref":"3"}`,
			msg("", `"3"`, "campaign:v2", "phx_join", `{}`)),
		text("join_ref null", `{"topic":"t","event":"e","payload":{},"ref":"3","join_ref":null}`,
			msg("", `"3"`, "t", "e", `{}`)),
		text("number refs", `{"topic":"t","event":"e","payload":{},"ref":4,"join_ref":3}`,
			msg(`3`, `4`, "t", "e", `{}`)),
		text("null ref", `{"topic":"t","event":"e","payload":{},"ref":null}`,
			msg("", "", "t", "e", `{}`)),
		text("key order free", `{"ref":"1","payload":[1],"join_ref":"9","event":"e","topic":"t"}`,
			msg(`"9"`, `"1"`, "t", "e", `[1]`)),
		text("unknown keys ignored", `{"x":{"topic":1},"topic":"t","event":"e","payload":"p","ref":"1","y":[]}`,
			msg("", `"1"`, "t", "e", `"p"`)),
		text("duplicate keys: last wins", `{"topic":"a","topic":"t","event":"e","payload":1,"payload":2,"ref":"1"}`,
			msg("", `"1"`, "t", "e", `2`)),
		text("escaped keys", `{"\u0074opic":"t","even\u0074":"e","payload":null,"re\u0066":"1","join\u005fref":"2"}`,
			msg(`"2"`, `"1"`, "t", "e", `null`)),
		text("payload types", `{"topic":"t","event":"e","payload":"s","ref":"1"}`,
			msg("", `"1"`, "t", "e", `"s"`)),
		text("whitespace", " {\n \"topic\" : \"t\" ,\t\"event\":\"e\", \"payload\" : { } , \"ref\" : \"1\" } ",
			msg("", `"1"`, "t", "e", `{ }`)),
	})
}

func TestDecodeRejects(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name   string
		s      Serializer
		data   []byte
		binary bool
	}{
		// V2 text.
		{"v2 not json (V2.21)", V2, []byte("this is not json"), false},
		{"v2 empty", V2, nil, false},
		{"v2 spaces", V2, []byte("  "), false},
		{"v2 truncated", V2, []byte(`["1","1","phoenix","heartbeat",{}`), false},
		{"v2 trailing garbage", V2, []byte(`["1","1","phoenix","heartbeat",{}] x`), false},
		{"v2 two values", V2, []byte(`["1","1","t","e",{}][]`), false},
		{"v2 object (V2.22)", V2, []byte(`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`), false},
		{"v2 four elements (V2.22)", V2, []byte(`["1","1","phoenix","heartbeat"]`), false},
		{"v2 empty array", V2, []byte(`[]`), false},
		{"v2 null", V2, []byte(`null`), false},
		{"v2 string", V2, []byte(`"[1,2,3,4,5]"`), false},
		{"v2 number", V2, []byte(`5`), false},
		{"v2 nested array", V2, []byte(`[["1","1","t","e",{}]]`), false},
		{"v2 topic number", V2, []byte(`["1","1",1,"e",{}]`), false},
		{"v2 topic null", V2, []byte(`["1","1",null,"e",{}]`), false},
		{"v2 event object", V2, []byte(`["1","1","t",{},{}]`), false},
		{"v2 event array", V2, []byte(`["1","1","t",["e"],{}]`), false},
		{"v2 join_ref bool", V2, []byte(`[true,"1","t","e",{}]`), false},
		{"v2 ref object", V2, []byte(`["1",{"r":1},"t","e",{}]`), false},
		{"v2 ref array", V2, []byte(`["1",[1],"t","e",{}]`), false},
		{"v2 invalid utf8 in string", V2, []byte("[\"1\",\"1\",\"t\xff\",\"e\",{}]"), false},
		{"v2 invalid utf8 in ref", V2, []byte("[\"\xc3\",\"1\",\"t\",\"e\",{}]"), false},
		{"v2 invalid utf8 in payload", V2, []byte("[\"1\",\"1\",\"t\",\"e\",{\"a\":\"\xed\xa0\x80\"}]"), false},
		{"v2 raw control char", V2, []byte("[\"1\",\"1\",\"t\n\",\"e\",{}]"), false},
		{"v2 bad escape", V2, []byte(`["1","1","\x","e",{}]`), false},
		{"v2 trailing comma", V2, []byte(`["1","1","t","e",{},]`), false},
		{"v2 single quotes", V2, []byte(`['1','1','t','e',{}]`), false},
		{"v2 NaN payload", V2, []byte(`["1","1","t","e",NaN]`), false},
		// V2 binary.
		{"binary kind 1", V2, []byte{1, 0, 0, 0, 0}, true},
		{"binary kind 2", V2, []byte{2, 0, 0, 0, 0}, true},
		{"binary kind 9 (V2.23)", V2, []byte{9, 9, 9}, true},
		{"binary empty", V2, nil, true},
		{"binary 1-byte header", V2, []byte{0}, true},
		{"binary 4-byte header", V2, []byte{0, 0, 0, 0}, true},
		{"binary truncated join_ref", V2, []byte{0, 2, 0, 0, 0, 'a'}, true},
		{"binary truncated ref", V2, []byte{0, 1, 2, 0, 0, 'a', 'b'}, true},
		{"binary truncated topic", V2, []byte{0, 0, 0, 3, 0, 'a', 'b'}, true},
		{"binary truncated event", V2, []byte{0, 0, 0, 1, 4, 't', 'e', 'v', 'e'}, true},
		{"binary all max, nothing after", V2, []byte{0, 255, 255, 255, 255}, true},
		{"binary invalid utf8 topic", V2, []byte{0, 0, 0, 1, 1, 0xff, 'e'}, true},
		{"binary invalid utf8 event", V2, []byte{0, 0, 0, 1, 1, 't', 0xc3}, true},
		{"binary invalid utf8 join_ref", V2, []byte{0, 1, 0, 1, 1, 0x80, 't', 'e'}, true},
		{"binary invalid utf8 ref", V2, []byte{0, 0, 1, 1, 1, 0xfe, 't', 'e'}, true},
		{"binary text-looking", V2, []byte(`[null,"1","phoenix","heartbeat",{}]`), true},
		// V1.
		{"v1 not json (V1.12)", V1, []byte("not json"), false},
		{"v1 empty", V1, nil, false},
		{"v1 array (V1.13)", V1, []byte(`[null,"1","phoenix","heartbeat",{}]`), false},
		{"v1 null", V1, []byte(`null`), false},
		{"v1 string", V1, []byte(`"x"`), false},
		{"v1 missing ref (V1.10)", V1, []byte(`{"topic":"phoenix","event":"heartbeat","payload":{}}`), false},
		{"v1 missing topic", V1, []byte(`{"event":"heartbeat","payload":{},"ref":"1"}`), false},
		{"v1 missing event", V1, []byte(`{"topic":"phoenix","payload":{},"ref":"1"}`), false},
		{"v1 missing payload", V1, []byte(`{"topic":"phoenix","event":"heartbeat","ref":"1"}`), false},
		{"v1 empty object", V1, []byte(`{}`), false},
		{"v1 key case matters", V1, []byte(`{"Topic":"t","event":"e","payload":{},"ref":"1"}`), false},
		{"v1 nested keys do not count", V1, []byte(`{"x":{"topic":"t"},"event":"e","payload":{},"ref":"1"}`), false},
		{"v1 topic number", V1, []byte(`{"topic":1,"event":"e","payload":{},"ref":"1"}`), false},
		{"v1 event null", V1, []byte(`{"topic":"t","event":null,"payload":{},"ref":"1"}`), false},
		{"v1 ref bool", V1, []byte(`{"topic":"t","event":"e","payload":{},"ref":false}`), false},
		{"v1 join_ref object", V1, []byte(`{"topic":"t","event":"e","payload":{},"ref":"1","join_ref":{}}`), false},
		{"v1 invalid utf8", V1, []byte("{\"topic\":\"t\xff\",\"event\":\"e\",\"payload\":{},\"ref\":\"1\"}"), false},
		{"v1 trailing garbage", V1, []byte(`{"topic":"t","event":"e","payload":{},"ref":"1"}}`), false},
		{"v1 binary (V1.11)", V1, unhex(t, "00 01 01 07 09 31 31 70 68 6f 65 6e 69 78 68 65 61 72 74 62 65 61 74 7b 7d"), true},
		{"v1 binary json", V1, []byte(`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`), true},
		{"v1 long garbage", V1, []byte(long), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tt.s.Decode(tt.data, tt.binary)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode(%q, %v) = %+v, %v; want ErrMalformed", tt.data, tt.binary, m, err)
			}
		})
	}
}

// TestDecodeMatchesReference runs every table frame through the reference
// decoders too, so the tables and the references check each other.
func TestDecodeMatchesReference(t *testing.T) {
	frames := []string{
		`[null,"1","phoenix","heartbeat",{}]`, `[3,7,"t","e",{}]`, `["\u0033","x","t","e",1]`,
		`{"topic":"t","event":"e","payload":{},"ref":"1"}`, `{"\u0074opic":"t","event":"e","payload":{},"ref":1,"join_ref":"\ud83d\ude00"}`,
		`["1","1","t","e"]`, `[true,"1","t","e",{}]`, ` [ "1" , "2" , "t" , "e" , [ ] , 3 ] `,
		"[\"\u2028\",\"1\",\"t\",\"e\",{}]", `["\ud800","1","t","e",{}]`,
	}
	for _, f := range frames {
		for _, s := range []Serializer{V1, V2} {
			got, err := s.Decode([]byte(f), false)
			var want Message
			var ok bool
			if s == V1 {
				want, ok = refDecodeV1([]byte(f))
			} else {
				want, ok = refDecodeV2Text([]byte(f))
			}
			if (err == nil) != ok || (ok && !sameMessage(got, want)) {
				t.Errorf("%s.Decode(%s) = %+v, %v; reference %+v, %v", s.Vsn(), f, got, err, want, ok)
			}
		}
	}
}

type encodeCase struct {
	name string
	enc  func(dst []byte) (Frame, error)
	want string // text frame, or hex for binary
	bin  bool
}

func checkEncode(t *testing.T, tests []encodeCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			f, err := tt.enc(prefix[:len(prefix):len(prefix)])
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if f.Binary != tt.bin {
				t.Fatalf("Binary = %v, want %v", f.Binary, tt.bin)
			}
			if !bytes.HasPrefix(f.Data, prefix) {
				t.Fatalf("dst not appended to: %q", f.Data)
			}
			got := f.Data[len(prefix):]
			want := []byte(tt.want)
			if tt.bin {
				want = unhex(t, tt.want)
			} else if !json.Valid(got) {
				t.Errorf("invalid JSON: %s", got)
			}
			if !bytes.Equal(got, want) {
				if tt.bin {
					t.Fatalf("got  % x\nwant % x", got, want)
				}
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestEncodeV2Text(t *testing.T) {
	obj := func(s string) []byte { return []byte(s) }
	checkEncode(t, []encodeCase{
		{name: "heartbeat reply (V2.1)", want: `[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`,
			enc: func(d []byte) (Frame, error) { return V2.AppendReply(d, "", `"1"`, "phoenix", "ok", obj(`{}`), false) }},
		{name: "join reply (V2.2)", want: `["2","2","campaign:x","phx_reply",{"response":{},"status":"ok"}]`,
			enc: func(d []byte) (Frame, error) {
				return V2.AppendReply(d, `"2"`, `"2"`, "campaign:x", "ok", obj(`{}`), false)
			}},
		{name: "unmatched topic (V2.4)", want: `[null,"4","nope:1","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`,
			enc: func(d []byte) (Frame, error) {
				return V2.AppendReply(d, "", `"4"`, "nope:1", "error", obj(`{"reason":"unmatched topic"}`), false)
			}},
		{name: "reply string (V2.10)", want: `["2","16","campaign:x","phx_reply",{"response":"just a string","status":"ok"}]`,
			enc: func(d []byte) (Frame, error) {
				return V2.AppendReply(d, `"2"`, `"16"`, "campaign:x", "ok", obj(`"just a string"`), false)
			}},
		{name: "reply number (V2.10)", want: `["2","17","campaign:x","phx_reply",{"response":42,"status":"ok"}]`,
			enc: func(d []byte) (Frame, error) {
				return V2.AppendReply(d, `"2"`, `"17"`, "campaign:x", "ok", obj(`42`), false)
			}},
		{name: "reply array (V2.10)", want: `["2","18","campaign:x","phx_reply",{"response":[1,"two"],"status":"ok"}]`,
			enc: func(d []byte) (Frame, error) {
				return V2.AppendReply(d, `"2"`, `"18"`, "campaign:x", "ok", obj(`[1,"two"]`), false)
			}},
		{name: "reply null (V2.10)", want: `["2","19","campaign:x","phx_reply",{"response":null,"status":"ok"}]`,
			enc: func(d []byte) (Frame, error) {
				return V2.AppendReply(d, `"2"`, `"19"`, "campaign:x", "ok", obj(`null`), false)
			}},
		{name: "reply empty response is null", want: `["2","19","campaign:x","phx_reply",{"response":null,"status":"ok"}]`,
			enc: func(d []byte) (Frame, error) { return V2.AppendReply(d, `"2"`, `"19"`, "campaign:x", "ok", nil, false) }},
		{name: "reply number refs echoed", want: `[3,7,"room:1","phx_reply",{"response":{},"status":"ok"}]`,
			enc: func(d []byte) (Frame, error) { return V2.AppendReply(d, `3`, `7`, "room:1", "ok", obj(`{}`), false) }},
		{name: "push (V2.2)", want: `["2",null,"campaign:x","campaign_data",{"donors":0,"goal":100000000,"id":"x","raised":0}]`,
			enc: func(d []byte) (Frame, error) {
				return V2.AppendPush(d, `"2"`, "campaign:x", "campaign_data", obj(`{"donors":0,"goal":100000000,"id":"x","raised":0}`), false)
			}},
		{name: "push presence_state (V2.2)", want: `["2",null,"campaign:x","presence_state",{}]`,
			enc: func(d []byte) (Frame, error) {
				return V2.AppendPush(d, `"2"`, "campaign:x", "presence_state", obj(`{}`), false)
			}},
		{name: "broadcast (V2.7)", want: `[null,null,"campaign:x","donation_received",{"amount":100,"donor":"Ann","timestamp":"2026-11-27T19:25:43.725086Z"}]`,
			enc: func(d []byte) (Frame, error) {
				return V2.AppendBroadcast(d, "campaign:x", "donation_received", obj(`{"amount":100,"donor":"Ann","timestamp":"2026-11-27T19:25:43.725086Z"}`), false)
			}},
		{name: "phx_close (V2.17)", want: `["2","2","campaign:x","phx_close",{}]`,
			enc: func(d []byte) (Frame, error) {
				return AppendMessage(V2, d, `"2"`, `"2"`, "campaign:x", EventClose, obj(`{}`))
			}},
		{name: "phx_error (V2.19)", want: `["40","40","campaign:crash","phx_error",{}]`,
			enc: func(d []byte) (Frame, error) {
				return AppendMessage(V2, d, `"40"`, `"40"`, "campaign:crash", EventError, obj(`{}`))
			}},
		{name: "escaped topic, event and status", want: `["1",null,"a\"b\\c\n\u0001\u2028<>&","é\ufffd",{}]`,
			enc: func(d []byte) (Frame, error) {
				return V2.AppendPush(d, `"1"`, "a\"b\\c\n\x01\u2028<>&", "é\xff", obj(`{}`), false)
			}},
		{name: "payload with leading space is an object", want: `[null,null,"t","e", {}]`,
			enc: func(d []byte) (Frame, error) { return V2.AppendBroadcast(d, "t", "e", obj(` {}`), false) }},
	})
}

func TestEncodeV2Binary(t *testing.T) {
	checkEncode(t, []encodeCase{
		{name: "reply (V2.11)", bin: true,
			want: "01 01 02 0a 02 32 32 30 63 61 6d 70 61 69 67 6e 3a 78 6f 6b de ad be ef 00 01",
			enc: func(d []byte) (Frame, error) {
				return V2.AppendReply(d, `"2"`, `"20"`, "campaign:x", "ok", []byte("\xde\xad\xbe\xef\x00\x01"), true)
			}},
		{name: "reply empty payload (V2.11)", bin: true,
			want: "01 01 02 0a 02 32 32 31 63 61 6d 70 61 69 67 6e 3a 78 6f 6b",
			enc: func(d []byte) (Frame, error) {
				return V2.AppendReply(d, `"2"`, `"21"`, "campaign:x", "ok", nil, true)
			}},
		{name: "reply (LP.3)", bin: true,
			want: hex.EncodeToString([]byte("\x01\x01\x01\x0b\x0215campaign:lpok\x01\x02\x03")),
			enc: func(d []byte) (Frame, error) {
				return V2.AppendReply(d, `"1"`, `"5"`, "campaign:lp", "ok", []byte{1, 2, 3}, true)
			}},
		{name: "reply null refs are empty", bin: true,
			want: hex.EncodeToString([]byte("\x01\x00\x00\x01\x05terror")),
			enc:  func(d []byte) (Frame, error) { return V2.AppendReply(d, "", "null", "t", "error", nil, true) }},
		{name: "reply number refs", bin: true,
			want: hex.EncodeToString([]byte("\x01\x01\x02\x01\x02312tokX")),
			enc:  func(d []byte) (Frame, error) { return V2.AppendReply(d, `3`, `12`, "t", "ok", []byte("X"), true) }},
		{name: "reply escaped string ref", bin: true,
			want: hex.EncodeToString([]byte("\x01\x04\x00\x01\x02a\"\xc3\xa9tok")),
			enc:  func(d []byte) (Frame, error) { return V2.AppendReply(d, `"a\"\u00e9"`, ``, "t", "ok", nil, true) }},
		{name: "push has 4-byte header, no ref", bin: true,
			want: hex.EncodeToString([]byte("\x00\x01\x0a\x04" + "2campaign:xpush\xde\xad")),
			enc: func(d []byte) (Frame, error) {
				return V2.AppendPush(d, `"2"`, "campaign:x", "push", []byte{0xde, 0xad}, true)
			}},
		{name: "push null join_ref", bin: true,
			want: hex.EncodeToString([]byte("\x00\x00\x01\x01te")),
			enc:  func(d []byte) (Frame, error) { return V2.AppendPush(d, "", "t", "e", nil, true) }},
		{name: "broadcast 3-byte header", bin: true,
			want: hex.EncodeToString([]byte("\x02\x0a\x04campaign:xping\x00\x01")),
			enc: func(d []byte) (Frame, error) {
				return V2.AppendBroadcast(d, "campaign:x", "ping", []byte{0, 1}, true)
			}},
		{name: "binary payload need not be an object", bin: true,
			want: hex.EncodeToString([]byte("\x02\x01\x01te[1]")),
			enc:  func(d []byte) (Frame, error) { return V2.AppendBroadcast(d, "t", "e", []byte("[1]"), true) }},
		{name: "255-byte fields fit", bin: true,
			want: hex.EncodeToString([]byte("\x02\xff\xff" + strings.Repeat("t", 255) + strings.Repeat("e", 255))),
			enc: func(d []byte) (Frame, error) {
				return V2.AppendBroadcast(d, strings.Repeat("t", 255), strings.Repeat("e", 255), nil, true)
			}},
	})
}

func TestEncodeV1(t *testing.T) {
	checkEncode(t, []encodeCase{
		{name: "heartbeat reply (V1.1)", want: `{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"phoenix"}`,
			enc: func(d []byte) (Frame, error) {
				return V1.AppendReply(d, "", `"1"`, "phoenix", "ok", []byte(`{}`), false)
			}},
		{name: "reply never has join_ref (V1.2)", want: `{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"2","topic":"campaign:v"}`,
			enc: func(d []byte) (Frame, error) {
				return V1.AppendReply(d, `"2"`, `"2"`, "campaign:v", "ok", []byte(`{}`), false)
			}},
		{name: "reply error (V1.4)", want: `{"event":"phx_reply","payload":{"response":{"reason":"unmatched topic"},"status":"error"},"ref":"4","topic":"nope:1"}`,
			enc: func(d []byte) (Frame, error) {
				return V1.AppendReply(d, `"4"`, `"4"`, "nope:1", "error", []byte(`{"reason":"unmatched topic"}`), false)
			}},
		{name: "reply any response", want: `{"event":"phx_reply","payload":{"response":[1,"two"],"status":"ok"},"ref":8,"topic":"t"}`,
			enc: func(d []byte) (Frame, error) {
				return V1.AppendReply(d, `2`, `8`, "t", "ok", []byte(`[1,"two"]`), false)
			}},
		{name: "reply empty response is null", want: `{"event":"phx_reply","payload":{"response":null,"status":"ok"},"ref":null,"topic":"t"}`,
			enc: func(d []byte) (Frame, error) { return V1.AppendReply(d, "", "", "t", "ok", nil, false) }},
		{name: "push: ref null, no join_ref (V1.2)", want: `{"event":"campaign_data","payload":{"donors":0,"goal":100000000,"id":"v","raised":0},"ref":null,"topic":"campaign:v"}`,
			enc: func(d []byte) (Frame, error) {
				return V1.AppendPush(d, `"2"`, "campaign:v", "campaign_data", []byte(`{"donors":0,"goal":100000000,"id":"v","raised":0}`), false)
			}},
		{name: "broadcast (V1.5)", want: `{"event":"donation_received","payload":{"amount":7,"donor":"Vic","timestamp":"2026-11-27T19:25:57.194079Z"},"ref":null,"topic":"campaign:v"}`,
			enc: func(d []byte) (Frame, error) {
				return V1.AppendBroadcast(d, "campaign:v", "donation_received", []byte(`{"amount":7,"donor":"Vic","timestamp":"2026-11-27T19:25:57.194079Z"}`), false)
			}},
		{name: "phx_close ref = join_ref (V1.8)", want: `{"event":"phx_close","payload":{},"ref":"2","topic":"campaign:v"}`,
			enc: func(d []byte) (Frame, error) {
				return AppendMessage(V1, d, `"2"`, `"2"`, "campaign:v", EventClose, []byte(`{}`))
			}},
		{name: "escapes", want: `{"event":"\t\u001f","payload":{},"ref":null,"topic":"\"\\\u2029"}`,
			enc: func(d []byte) (Frame, error) {
				return V1.AppendPush(d, "", "\"\\\u2029", "\t\x1f", []byte(`{}`), false)
			}},
	})
}

// TestReplyEchoesRefs decodes client frames from the transcripts and replies
// with the decoded refs: the server frame must be the captured one.
func TestReplyEchoesRefs(t *testing.T) {
	tests := []struct {
		s                Serializer
		in               string
		status, response string
		want             string
	}{
		{V2, `[null,"1","phoenix","heartbeat",{}]`, "ok", `{}`,
			`[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`},
		{V2, `["2","9","campaign:x","new_donation",{"amount":-1,"donor":"Ann"}]`, "error", `{"reason":"invalid_donation"}`,
			`["2","9","campaign:x","phx_reply",{"response":{"reason":"invalid_donation"},"status":"error"}]`},
		{V2, `["2","15","campaign:x","ping",{"hello":"world","n":[1,2,3]}]`, "ok", `{"hello":"world","n":[1,2,3]}`,
			`["2","15","campaign:x","phx_reply",{"response":{"hello":"world","n":[1,2,3]},"status":"ok"}]`},
		{V2, `[3,"3","room:1","phx_join",{}]`, "ok", `{}`,
			`[3,"3","room:1","phx_reply",{"response":{},"status":"ok"}]`},
		{V2, `["3",3,"room:1","phx_join",{}]`, "ok", `{}`,
			`["3",3,"room:1","phx_reply",{"response":{},"status":"ok"}]`},
		{V2, `[null,null,"room:1","x",{}]`, "ok", `{}`,
			`[null,null,"room:1","phx_reply",{"response":{},"status":"ok"}]`},
		{V1, `{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`, "ok", `{}`,
			`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"phoenix"}`},
		{V1, `{"topic":"campaign:v","event":"ping","payload":{"p":1},"ref":"8","join_ref":"2"}`, "ok", `{"p":1}`,
			`{"event":"phx_reply","payload":{"response":{"p":1},"status":"ok"},"ref":"8","topic":"campaign:v"}`},
		{V1, `{"topic":"t","event":"e","payload":{},"ref":8}`, "ok", `{}`,
			`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":8,"topic":"t"}`},
	}
	for _, tt := range tests {
		m, err := tt.s.Decode([]byte(tt.in), false)
		if err != nil {
			t.Fatalf("Decode(%s): %v", tt.in, err)
		}
		f, err := tt.s.AppendReply(nil, m.JoinRef, m.Ref, m.Topic, tt.status, []byte(tt.response), false)
		if err != nil {
			t.Fatal(err)
		}
		if string(f.Data) != tt.want || f.Binary {
			t.Errorf("reply to %s\n got %s\nwant %s", tt.in, f.Data, tt.want)
		}
	}

	// Binary: V2.11 and LP.3, byte for byte.
	for _, tt := range []struct{ in, want []byte }{
		{unhex(t, "00 01 02 0a 04 32 32 30 63 61 6d 70 61 69 67 6e 3a 78 70 69 6e 67 de ad be ef 00 01"),
			unhex(t, "01 01 02 0a 02 32 32 30 63 61 6d 70 61 69 67 6e 3a 78 6f 6b de ad be ef 00 01")},
		{unhex(t, "00 01 02 0a 04 32 32 31 63 61 6d 70 61 69 67 6e 3a 78 70 69 6e 67"),
			unhex(t, "01 01 02 0a 02 32 32 31 63 61 6d 70 61 69 67 6e 3a 78 6f 6b")},
		{unb64(t, "AAEBCwQxNWNhbXBhaWduOmxwcGluZwECAw=="), []byte("\x01\x01\x01\x0b\x0215campaign:lpok\x01\x02\x03")},
		{unb64(t, "AAEBDgQxMmNhbXBhaWduOmxwYmlucGluZ2hp"), []byte("\x01\x01\x01\x0e\x0212campaign:lpbinokhi")},
	} {
		m, err := V2.Decode(tt.in, true)
		if err != nil {
			t.Fatal(err)
		}
		f, err := V2.AppendReply(nil, m.JoinRef, m.Ref, m.Topic, "ok", m.Payload, m.Binary)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.Data, tt.want) || !f.Binary {
			t.Errorf("binary reply\n got % x\nwant % x", f.Data, tt.want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	long := strings.Repeat("x", 256)
	longRef := StringRef(long)
	tests := []struct {
		name string
		enc  func() (Frame, error)
		want error
	}{
		{"v2 push join_ref too long", func() (Frame, error) { return V2.AppendPush(nil, longRef, "t", "e", nil, true) }, ErrFieldTooLong},
		{"v2 push topic too long", func() (Frame, error) { return V2.AppendPush(nil, `"1"`, long, "e", nil, true) }, ErrFieldTooLong},
		{"v2 push event too long", func() (Frame, error) { return V2.AppendPush(nil, `"1"`, "t", long, nil, true) }, ErrFieldTooLong},
		{"v2 reply join_ref too long", func() (Frame, error) { return V2.AppendReply(nil, longRef, `"1"`, "t", "ok", nil, true) }, ErrFieldTooLong},
		{"v2 reply ref too long", func() (Frame, error) { return V2.AppendReply(nil, `"1"`, longRef, "t", "ok", nil, true) }, ErrFieldTooLong},
		{"v2 reply number ref too long", func() (Frame, error) {
			return V2.AppendReply(nil, `"1"`, Ref(strings.Repeat("9", 256)), "t", "ok", nil, true)
		}, ErrFieldTooLong},
		{"v2 reply topic too long", func() (Frame, error) { return V2.AppendReply(nil, `"1"`, `"1"`, long, "ok", nil, true) }, ErrFieldTooLong},
		{"v2 reply status too long", func() (Frame, error) { return V2.AppendReply(nil, `"1"`, `"1"`, "t", long, nil, true) }, ErrFieldTooLong},
		{"v2 broadcast topic too long", func() (Frame, error) { return V2.AppendBroadcast(nil, long, "e", nil, true) }, ErrFieldTooLong},
		{"v2 broadcast event too long", func() (Frame, error) { return V2.AppendBroadcast(nil, "t", long, nil, true) }, ErrFieldTooLong},
		{"v2 multibyte topic over 255 bytes", func() (Frame, error) {
			return V2.AppendBroadcast(nil, strings.Repeat("é", 128), "e", nil, true)
		}, ErrFieldTooLong},
		{"v1 push binary", func() (Frame, error) { return V1.AppendPush(nil, `"1"`, "t", "e", []byte{1}, true) }, ErrBinaryUnsupported},
		{"v1 reply binary", func() (Frame, error) { return V1.AppendReply(nil, `"1"`, `"1"`, "t", "ok", []byte{1}, true) }, ErrBinaryUnsupported},
		{"v1 broadcast binary", func() (Frame, error) { return V1.AppendBroadcast(nil, "t", "e", []byte{1}, true) }, ErrBinaryUnsupported},
	}
	for _, payload := range []string{``, ` `, `"s"`, `42`, `[1]`, `null`, `true`, `x{}`} {
		p := []byte(payload)
		tests = append(tests,
			struct {
				name string
				enc  func() (Frame, error)
				want error
			}{"v2 push " + payload, func() (Frame, error) { return V2.AppendPush(nil, `"1"`, "t", "e", p, false) }, ErrPayloadNotObject},
			struct {
				name string
				enc  func() (Frame, error)
				want error
			}{"v2 broadcast " + payload, func() (Frame, error) { return V2.AppendBroadcast(nil, "t", "e", p, false) }, ErrPayloadNotObject},
			struct {
				name string
				enc  func() (Frame, error)
				want error
			}{"v1 push " + payload, func() (Frame, error) { return V1.AppendPush(nil, `"1"`, "t", "e", p, false) }, ErrPayloadNotObject},
			struct {
				name string
				enc  func() (Frame, error)
				want error
			}{"v1 broadcast " + payload, func() (Frame, error) { return V1.AppendBroadcast(nil, "t", "e", p, false) }, ErrPayloadNotObject},
			struct {
				name string
				enc  func() (Frame, error)
				want error
			}{"message " + payload, func() (Frame, error) { return AppendMessage(V2, nil, `"1"`, `"1"`, "t", "e", p) }, ErrPayloadNotObject},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := tt.enc()
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if f.Data != nil || f.Binary {
				t.Fatalf("frame on error: %+v", f)
			}
		})
	}
}

func TestAppendMessageFallback(t *testing.T) {
	// A Serializer from outside the package: AppendMessage uses AppendPush.
	s := struct{ Serializer }{V2}
	f, err := AppendMessage(s, nil, `"2"`, `"2"`, "t", "phx_close", []byte(`{}`))
	if err != nil || string(f.Data) != `["2",null,"t","phx_close",{}]` {
		t.Fatalf("got %s, %v", f.Data, err)
	}
}

func TestRef(t *testing.T) {
	tests := []struct {
		r      Ref
		null   bool
		str    string
		fromGo string // when set, StringRef(fromGo) must equal r
	}{
		{"", true, "", ""},
		{"null", true, "", ""},
		{`""`, false, "", "\x00skip"},
		{`"3"`, false, "3", "3"},
		{`3`, false, "3", ""},
		{`-1.5e3`, false, "-1.5e3", ""},
		{`"a\"b"`, false, `a"b`, `a"b`},
		{`"\u0001\b\f\n\r\t\\"`, false, "\x01\b\f\n\r\t\\", "\x01\b\f\n\r\t\\"},
		{`"\u2028é😀"`, false, "\u2028é😀", "\u2028é😀"},
		{`"\ufffd"`, false, "\ufffd", "\xff"},
		{`"\u0033"`, false, "3", ""},        // not canonical, but String still decodes it
		{`"\ud83d\ude00"`, false, "😀", ""},  // surrogate pair
		{`"\/"`, false, "/", ""},            // JSON-only escape
		{"\"\x7f\"", false, "\x7f", "\x7f"}, // DEL is not escaped by encoding/json
		{`"<&>"`, false, "<&>", "<&>"},      // no HTML escaping
	}
	for _, tt := range tests {
		if got := tt.r.IsNull(); got != tt.null {
			t.Errorf("%s.IsNull() = %v", tt.r, got)
		}
		if got := tt.r.String(); got != tt.str {
			t.Errorf("%s.String() = %q, want %q", tt.r, got, tt.str)
		}
		if tt.fromGo != "" && tt.fromGo != "\x00skip" {
			if got := StringRef(tt.fromGo); got != tt.r {
				t.Errorf("StringRef(%q) = %s, want %s", tt.fromGo, got, tt.r)
			}
		}
	}
	if got := StringRef(""); got != `""` || got.IsNull() {
		t.Errorf(`StringRef("") = %q`, got)
	}
	// StringRef output is always valid JSON and round-trips through String.
	for _, s := range []string{"", "\a\v\x7f", "\U000e0001", "\xed\xa0\x80", "a\x00b", "\u00ad"} {
		r := StringRef(s)
		if !json.Valid([]byte(r)) {
			t.Errorf("StringRef(%q) = %s is not JSON", s, r)
		}
		if want := string([]rune(s)); r.String() != want {
			t.Errorf("StringRef(%q).String() = %q, want %q", s, r.String(), want)
		}
	}
}

func TestIsJSONObject(t *testing.T) {
	for in, want := range map[string]bool{
		`{}`: true, ` {"a":1}`: true, "\n\t\r {": true,
		``: false, ` `: false, `[]`: false, `"{"`: false, `null`: false, `1`: false, "\v{}": false,
	} {
		if got := IsJSONObject([]byte(in)); got != want {
			t.Errorf("IsJSONObject(%q) = %v", in, got)
		}
	}
}

func TestVsn(t *testing.T) {
	if V1.Vsn() != "1.0.0" || V2.Vsn() != "2.0.0" {
		t.Fatal(V1.Vsn(), V2.Vsn())
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		vsn  string
		want Serializer // nil: ErrUnsupportedVsn
	}{
		{"", V1}, // absent vsn defaults to 1.0.0
		{"1.0.0", V1},
		{"1.0.5", V1},
		{"1.0.1-dev", V1},
		{"1.0.99999999999999999999", V1}, // Elixir integers are unbounded
		{"1.0.1+build.5", V1},
		{"2.0.0", V2},
		{"2.0.3+build", V2},
		{"2.0.1-rc.1", V2},
		{"2.0.1-0", V2},
		{"2.0.0+20130313144700", V2},
		{"2.0.0+exp.sha.5114f85", V2},
		{"2.0.0+001", V2},            // build identifiers may have leading zeros
		{"2.0.1-alpha-1.x-y.0a", V2}, // hyphens and alphanumerics in pre
		{"2.0.1-0-1", V2},            // "0-1" is alphanumeric, not numeric
		{"2.1.0", nil},
		{"2.1.0-dev", nil},  // above 2.1.0-0
		{"2.0.0-rc.1", nil}, // below 2.0.0
		{"2.0.0-0", nil},
		{"1.0.0-dev", nil},
		{"1.1.0", nil},
		{"1.9.0", nil},
		{"3.0.0", nil},
		{"0.0.1", nil},
		{"0.1.0", nil},
		{"10.0.0", nil},
		{"garbage", nil},
		{"2.0", nil},
		{"2", nil},
		{"2.0.0.0", nil},
		{"02.0.0", nil},
		{"2.00.0", nil},
		{"2.0.00", nil},
		{"2.0.01", nil},
		{"v2.0.0", nil},
		{" 2.0.0", nil},
		{"2.0.0 ", nil},
		{"2.0.0\n", nil},
		{"2.0.0-", nil},
		{"2.0.0+", nil},
		{"2.0.1-rc..1", nil},
		{"2.0.1-01", nil}, // numeric pre identifier with leading zero
		{"2.0.1-rc_1", nil},
		{"2.0.0+build+x", nil},
		{"2.0.0+b_1", nil},
		{"-2.0.0", nil},
		{"+2.0.0", nil},
		{"2..0", nil},
		{".2.0.0", nil},
		{"２.0.0", nil}, // fullwidth digit
		{"2.0.0-β", nil},
		{"1.0", nil},
		{"1", nil},
	}
	for _, tt := range tests {
		got, err := Negotiate(tt.vsn)
		if tt.want == nil {
			if !errors.Is(err, ErrUnsupportedVsn) || got != nil {
				t.Errorf("Negotiate(%q) = %v, %v; want ErrUnsupportedVsn", tt.vsn, got, err)
			}
		} else if err != nil || got != tt.want {
			t.Errorf("Negotiate(%q) = %v, %v; want %s", tt.vsn, got, err, tt.want.Vsn())
		}
		// The reference implementation must agree.
		want := ""
		if tt.want != nil {
			want = tt.want.Vsn()
		}
		if ref := refNegotiate(tt.vsn); ref != want {
			t.Errorf("refNegotiate(%q) = %q, table says %q", tt.vsn, ref, want)
		}
	}
}
