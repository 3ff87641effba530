package wire

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string, escaping exactly as encoding/json
// does with HTML escaping off (Phoenix's Jason does not escape HTML either):
// `"` and `\` are backslash-escaped, control characters use \b \f \n \r \t
// or \u00XX, U+2028 and U+2029 become \u2028 and \u2029, and each byte of
// invalid UTF-8 becomes \ufffd.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// validJSON reports whether data is one JSON value in valid UTF-8. Jason,
// which Phoenix decodes with, refuses invalid UTF-8 in strings; encoding/json
// alone would accept it and let it leak into echoed refs and payloads.
func validJSON(data []byte) bool {
	return utf8.Valid(data) && json.Valid(data)
}

// The scanning helpers below only work on text that validJSON accepted:
// they find value boundaries and never check syntax.

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value that starts at data[i].
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				i = skipString(data, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	default: // number, true, false, null
		for i < len(data) {
			switch data[i] {
			case ',', ']', '}', ' ', '\t', '\r', '\n':
				return i
			}
			i++
		}
		return i
	}
}

// skipString returns the end of the JSON string that starts at data[i].
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// decodeRef converts a raw JSON value to a Ref: null, a string or a number.
// Strings are put in canonical form (see [Ref]); numbers are kept as sent.
func decodeRef(raw []byte) (Ref, bool) {
	raw = trimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case 'n':
		return "", string(raw) == "null"
	case '"':
		if len(raw) < 2 || raw[len(raw)-1] != '"' {
			return "", false
		}
		// Without escapes and without U+2028/U+2029 (whose UTF-8 starts
		// with 0xE2) valid JSON string text is already canonical.
		if bytes.IndexByte(raw, '\\') < 0 && bytes.IndexByte(raw, 0xE2) < 0 {
			return Ref(raw), true
		}
		s, ok := decodeString(raw)
		if !ok {
			return "", false
		}
		return StringRef(s), true
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return Ref(raw), true
	}
	return "", false
}

// decodeString decodes a raw JSON value that must be a string.
func decodeString(raw []byte) (string, bool) {
	raw = trimSpace(raw)
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	// Fast path: no escapes.
	simple := true
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			simple = false
			break
		}
	}
	if simple && utf8.Valid(inner) {
		return internString(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// internString returns the constant for the protocol's most frequent topic
// and event names, so that decoding them does not allocate.
func internString(b []byte) string {
	switch string(b) {
	case TopicPhoenix:
		return TopicPhoenix
	case EventHeartbeat:
		return EventHeartbeat
	case EventJoin:
		return EventJoin
	case EventLeave:
		return EventLeave
	}
	return string(b)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// appendRef appends a ref as JSON: null when empty.
func appendRef(dst []byte, r Ref) []byte {
	if r.IsNull() {
		return append(dst, "null"...)
	}
	return append(dst, r...)
}

// appendJSONOrNull appends raw JSON, or null when empty.
func appendJSONOrNull(dst, raw []byte) []byte {
	if len(raw) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, raw...)
}
