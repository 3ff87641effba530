package wire

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// jsonGen writes random JSON (sometimes slightly broken) aimed at the
// scanner's corners: strings with escaped quotes and backslashes, brackets
// inside strings, nesting, whitespace everywhere.
type jsonGen struct {
	rng *rand.Rand
	sb  strings.Builder
}

var genStrings = []string{
	`""`, `"a"`, `"phoenix"`, `"heartbeat"`, `"phx_join"`, `"3"`, `"room:1"`, `"\""`, `"\\"`, `"\\\""`,
	`"]"`, `"["`, `"}"`, `"{"`, `","`, `"a\"],[\"b"`, `"\u0033"`, `"\ud83d\ude00"`, `"\/"`, `"\b\f\n\r\t"`,
	`"é😀"`, "\"\u2028\"", `"\u2028"`, `"\ud800"`, `"topic"`, `"event"`, `"payload"`, `"ref"`, `"join_ref"`,
	`"\u0074opic"`, `"re\u0066"`,
}

var genLiterals = []string{`null`, `true`, `false`, `0`, `-1`, `3`, `42`, `1.5`, `-0.0e+1`, `1E9`, `12345678901234567890`}

func (g *jsonGen) ws() {
	if g.rng.IntN(4) == 0 {
		g.sb.WriteString([]string{" ", "\n", "\t", "\r\n ", "  "}[g.rng.IntN(5)])
	}
}

func (g *jsonGen) value(depth int) {
	g.ws()
	switch k := g.rng.IntN(10); {
	case k < 4:
		g.sb.WriteString(genStrings[g.rng.IntN(len(genStrings))])
	case k < 6:
		g.sb.WriteString(genLiterals[g.rng.IntN(len(genLiterals))])
	case k < 8 && depth < 4:
		g.array(depth+1, g.rng.IntN(4))
	case depth < 4:
		g.object(depth+1, g.rng.IntN(4))
	default:
		g.sb.WriteString(`"x"`)
	}
	g.ws()
}

func (g *jsonGen) array(depth, n int) {
	g.sb.WriteByte('[')
	g.ws()
	for i := range n {
		if i > 0 {
			g.sb.WriteByte(',')
		}
		g.value(depth)
	}
	g.sb.WriteByte(']')
}

func (g *jsonGen) object(depth, n int) {
	g.sb.WriteByte('{')
	g.ws()
	for i := range n {
		if i > 0 {
			g.sb.WriteByte(',')
		}
		g.ws()
		g.sb.WriteString(genStrings[g.rng.IntN(len(genStrings))])
		g.ws()
		g.sb.WriteByte(':')
		g.value(depth)
	}
	g.sb.WriteByte('}')
}

// slot writes a value that is usually of the wanted kind: 'r' ref, 's' string.
func (g *jsonGen) slot(kind byte) {
	if g.rng.IntN(10) == 0 {
		g.value(1)
		return
	}
	g.ws()
	switch {
	case kind == 'r' && g.rng.IntN(3) == 0:
		g.sb.WriteString(genLiterals[g.rng.IntN(len(genLiterals))])
	default:
		g.sb.WriteString(genStrings[g.rng.IntN(len(genStrings))])
	}
	g.ws()
}

func (g *jsonGen) shapedV2() {
	g.sb.WriteByte('[')
	for i, kind := range []byte("rrssp") {
		if i > 0 {
			g.sb.WriteByte(',')
		}
		if kind == 'p' {
			g.value(1)
		} else {
			g.slot(kind)
		}
	}
	for range g.rng.IntN(3) {
		g.sb.WriteByte(',')
		g.value(1)
	}
	g.sb.WriteByte(']')
}

func (g *jsonGen) shapedV1() {
	keys := []string{`"topic"`, `"event"`, `"payload"`, `"ref"`, `"join_ref"`, `"x"`, `"\u0074opic"`, `"topic"`}
	g.rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	keys = keys[:4+g.rng.IntN(len(keys)-3)]
	g.sb.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			g.sb.WriteByte(',')
		}
		g.ws()
		g.sb.WriteString(k)
		g.ws()
		g.sb.WriteByte(':')
		switch k {
		case `"ref"`, `"join_ref"`:
			g.slot('r')
		case `"payload"`, `"x"`:
			g.value(1)
		default:
			g.slot('s')
		}
	}
	g.sb.WriteByte('}')
}

// frame returns a V2-shaped array or a V1-shaped object, sometimes damaged.
func (g *jsonGen) frame() []byte {
	g.sb.Reset()
	g.ws()
	switch g.rng.IntN(4) {
	case 0:
		g.array(0, 3+g.rng.IntN(5))
	case 1:
		g.object(0, 2+g.rng.IntN(6))
	case 2:
		g.shapedV2()
	default:
		g.shapedV1()
	}
	g.ws()
	b := []byte(g.sb.String())
	if g.rng.IntN(8) == 0 && len(b) > 0 { // damage one byte
		const damage = "\"\\,:[]{} x\xff"
		b[g.rng.IntN(len(b))] = damage[g.rng.IntN(len(damage))]
	}
	return b
}

func TestDecodeDifferential(t *testing.T) {
	g := &jsonGen{rng: rand.New(rand.NewPCG(7, 11))}
	n := 50000
	if testing.Short() {
		n = 5000
	}
	var okV1, okV2 int
	for range n {
		data := g.frame()
		got, err := V2.Decode(data, false)
		want, ok := refDecodeV2Text(data)
		if (err == nil) != ok || (ok && !sameMessage(got, want)) {
			t.Fatalf("V2.Decode(%s)\n got %+v, %v\nwant %+v, %v", data, got, err, want, ok)
		}
		if ok {
			okV2++
		}
		got, err = V1.Decode(data, false)
		want, ok = refDecodeV1(data)
		if (err == nil) != ok || (ok && !sameMessage(got, want)) {
			t.Fatalf("V1.Decode(%s)\n got %+v, %v\nwant %+v, %v", data, got, err, want, ok)
		}
		if ok {
			okV1++
		}
	}
	// The generator must reach the accepting paths, not only rejections.
	if okV1 < n/100 || okV2 < n/100 {
		t.Fatalf("too few valid frames: V1 %d, V2 %d of %d", okV1, okV2, n)
	}
	t.Logf("accepted: V1 %d, V2 %d of %d", okV1, okV2, n)
}
