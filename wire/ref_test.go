package wire

// Reference implementations for differential tests: slow, written with
// encoding/json, regexp and math/big, sharing no code with the package.

import (
	"bytes"
	"encoding/json"
	"math/big"
	"regexp"
	"strings"
	"unicode/utf8"
)

// stdString encodes s with encoding/json without HTML escaping.
func stdString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// refRef converts one raw JSON array element or object value to a Ref the
// way Phoenix sees it: null, a string (canonical encoding) or a number.
func refRef(raw json.RawMessage) (Ref, bool) {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return "", false
	}
	switch v := v.(type) {
	case nil:
		return "", true
	case string:
		return Ref(stdString(v)), true
	case json.Number:
		return Ref(bytes.TrimSpace(raw)), true
	}
	return "", false
}

func refStr(raw json.RawMessage) (string, bool) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

func refDecodeV2Text(data []byte) (Message, bool) {
	if !utf8.Valid(data) {
		return Message{}, false
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(data, &parts); err != nil || len(parts) < 5 {
		return Message{}, false
	}
	var m Message
	var ok1, ok2, ok3, ok4 bool
	m.JoinRef, ok1 = refRef(parts[0])
	m.Ref, ok2 = refRef(parts[1])
	m.Topic, ok3 = refStr(parts[2])
	m.Event, ok4 = refStr(parts[3])
	m.Payload = bytes.TrimSpace(parts[4])
	return m, ok1 && ok2 && ok3 && ok4
}

func refDecodeV1(data []byte) (Message, bool) {
	if !utf8.Valid(data) {
		return Message{}, false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return Message{}, false
	}
	topic, ok1 := obj["topic"]
	event, ok2 := obj["event"]
	payload, ok3 := obj["payload"]
	ref, ok4 := obj["ref"]
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return Message{}, false
	}
	var m Message
	var ok bool
	if m.Topic, ok = refStr(topic); !ok {
		return Message{}, false
	}
	if m.Event, ok = refStr(event); !ok {
		return Message{}, false
	}
	if m.Ref, ok = refRef(ref); !ok {
		return Message{}, false
	}
	if jr, present := obj["join_ref"]; present {
		if m.JoinRef, ok = refRef(jr); !ok {
			return Message{}, false
		}
	}
	m.Payload = bytes.TrimSpace(payload)
	return m, true
}

func refDecodeBinary(b []byte) (Message, bool) {
	if len(b) < 5 || b[0] != 0 {
		return Message{}, false
	}
	lens := b[1:5]
	rest := b[5:]
	var fields [4]string
	for i, n := range lens {
		if len(rest) < int(n) {
			return Message{}, false
		}
		fields[i] = string(rest[:n])
		rest = rest[n:]
		if !utf8.ValidString(fields[i]) {
			return Message{}, false
		}
	}
	return Message{
		JoinRef: Ref(stdString(fields[0])),
		Ref:     Ref(stdString(fields[1])),
		Topic:   fields[2],
		Event:   fields[3],
		Payload: rest,
		Binary:  true,
	}, true
}

// semverRE is the regular expression from semver.org, which accepts what
// Elixir's Version.parse accepts.
var semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
	`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// refNegotiate returns "1.0.0", "2.0.0" or "" (refused), evaluating
// "~> x.0.0" as Elixir does: >= x.0.0 and < x.1.0-0, pre-releases allowed.
func refNegotiate(vsn string) string {
	if vsn == "" {
		vsn = "1.0.0"
	}
	m := semverRE.FindStringSubmatch(vsn)
	if m == nil {
		return ""
	}
	var v [3]*big.Int
	for i := range v {
		v[i], _ = new(big.Int).SetString(m[i+1], 10)
	}
	hasPre := m[4] != ""
	cmp := func(x, y, z int64) int {
		for i, n := range []int64{x, y, z} {
			if c := v[i].Cmp(big.NewInt(n)); c != 0 {
				return c
			}
		}
		return 0
	}
	for _, major := range []int64{1, 2} {
		lo := cmp(major, 0, 0)
		geLow := lo > 0 || (lo == 0 && !hasPre)
		// Below x.1.0-0: every pre-release of x.1.0 is above x.1.0-0.
		ltHigh := cmp(major, 1, 0) < 0
		if geLow && ltHigh {
			return []string{"", "1.0.0", "2.0.0"}[major]
		}
	}
	return ""
}
