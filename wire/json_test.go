package wire

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func checkAppendString(t *testing.T, s string) {
	t.Helper()
	if got, want := string(AppendString(nil, s)), stdString(s); got != want {
		t.Fatalf("AppendString(%q)\n got %s\nwant %s", s, got, want)
	}
}

func TestAppendStringSpecialCases(t *testing.T) {
	for _, s := range []string{
		"", "plain", `"`, `\`, `"\"`, "\x00", "\b\f\n\r\t", "\x1f\x7f",
		"<script>&</script>", "\u2028\u2029", "a\u2028b\u2029c", "\u2027\u202a",
		"\xff", "\xc3", "\xc3(", "\xe2\x80", "\xe2\x80\xa8\xe2", "\xed\xa0\x80", // truncated, surrogate
		"\xf4\x90\x80\x80", "\xc0\x80", "\xf8\x88\x80\x80\x80", // out of range, overlong, 5-byte
		"\ufffd", "é😀☕", "\U0010ffff", "\u00ad\u200b\ufeff",
	} {
		checkAppendString(t, s)
	}
	// Every single byte, alone and between text.
	for b := range 256 {
		checkAppendString(t, string([]byte{byte(b)}))
		checkAppendString(t, "a"+string([]byte{byte(b)})+"é")
	}
}

func TestAppendStringAllRunes(t *testing.T) {
	var sb strings.Builder
	for r := rune(0); r <= utf8.MaxRune; r++ {
		sb.WriteRune(r) // surrogates become U+FFFD
		if sb.Len() > 1<<16 {
			checkAppendString(t, sb.String())
			sb.Reset()
		}
	}
	checkAppendString(t, sb.String())
}

// TestAppendStringProperty compares AppendString with encoding/json on many
// random strings drawn from bytes that matter to escaping.
func TestAppendStringProperty(t *testing.T) {
	pieces := []string{
		"a", "Z", " ", "/", "<", ">", "&", "'", `"`, `\`, "\x00", "\x01", "\b", "\t", "\n",
		"\v", "\f", "\r", "\x1b", "\x1f", "\x7f", "\x80", "\xbf", "\xc0", "\xc3", "\xe2", "\xe2\x80",
		"\xed", "\xf0", "\xf4", "\xff", "é", "\u2028", "\u2029", "\u2030", "\ufffd", "😀", "\U0010ffff",
		"\xed\xa0\x80", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		var sb strings.Builder
		for k := rng.IntN(12); k > 0; k-- {
			if rng.IntN(4) == 0 {
				sb.WriteByte(byte(rng.IntN(256)))
			} else {
				sb.WriteString(pieces[rng.IntN(len(pieces))])
			}
		}
		checkAppendString(t, sb.String())
	}
}

func TestAppendStringAppends(t *testing.T) {
	dst := []byte("x:")
	if got := string(AppendString(dst, "a\nb")); got != `x:"a\nb"` {
		t.Fatal(got)
	}
}

func TestAppendStringAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	s := "room:lobby \"quoted\" \u2028 é \xff"
	if n := testing.AllocsPerRun(100, func() { _ = AppendString(buf[:0], s) }); n != 0 {
		t.Fatalf("AppendString allocates %v times", n)
	}
}
