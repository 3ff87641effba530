package token

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bigPow2(n uint) *big.Int { return new(big.Int).Lsh(big.NewInt(1), n) }

type userID int64

type tags []string

type (
	namedUint   uint16
	namedFloat  float32
	namedString string
	namedBool   bool
	namedBytes  []byte
	namedByte   uint8
)

func TestEncodeTerm(t *testing.T) {
	five := 5
	bigFive := big.NewInt(5)
	fivePtr := &five
	var nilPtr *int
	latin1Max := strings.Repeat("é", 255)
	tests := []struct {
		name string
		in   any
		hex  string // without the version byte
	}{
		{"zero", 0, "61 00"},
		{"small int max", 255, "61 ff"},
		{"uint8", uint8(200), "61 c8"},
		{"integer 256", 256, "62 00000100"},
		{"minus one", -1, "62 ffffffff"},
		{"int32 max", int32(math.MaxInt32), "62 7fffffff"},
		{"int32 min", int64(math.MinInt32), "62 80000000"},
		{"int32 max+1", int64(math.MaxInt32) + 1, "6e 04 00 00000080"},
		{"int32 min-1", int64(math.MinInt32) - 1, "6e 04 01 01000080"},
		{"signed_at ms", int64(1700000000000), "6e 06 00 0068e5cf8b01"},
		{"int64 max", int64(math.MaxInt64), "6e 08 00 ffffffffffffff7f"},
		{"int64 min", int64(math.MinInt64), "6e 08 01 0000000000000080"},
		{"uint64 max", uint64(math.MaxUint64), "6e 08 00 ffffffffffffffff"},
		{"big 2^64", bigPow2(64), "6e 09 00 000000000000000001"},
		{"big -2^64", new(big.Int).Neg(bigPow2(64)), "6e 09 01 000000000000000001"},
		{"big small value", big.NewInt(7), "61 07"},
		{"large big", bigPow2(8 * 255), "6f 00000100 00" + strings.Repeat("00", 255) + "01"},
		{"named int", userID(7), "61 07"},
		{"named uint", namedUint(300), "62 0000012c"},
		{"named float", namedFloat(0.5), "46 3fe0000000000000"},
		{"named string", namedString("a"), "6d 00000001 61"},
		{"named bool", namedBool(true), "64 0004 74727565"},
		{"named bytes", namedBytes("a"), "6d 00000001 61"},
		{"slice of named bytes", []namedByte{'a'}, "6d 00000001 61"},
		{"byte array is a list", [1]byte{'a'}, "6b 0001 61"},
		{"uint max", uint(math.MaxUint64), "6e 08 00 ffffffffffffffff"},
		{"uint small", uint(7), "61 07"},
		{"slice of pointers", []*int{&five, nil}, "6c 00000002 6105 6400036e696c 6a"},
		{"charlist of pointers", []any{&five, &bigFive, &fivePtr}, "6b 0003 050505"},
		{"pointer", &five, "61 05"},
		{"nil pointer", nilPtr, "64 0003 6e696c"},
		{"float", 3.5, "46 400c000000000000"},
		{"float32", float32(-0.5), "46 bfe0000000000000"},
		{"negative zero", math.Copysign(0, -1), "46 8000000000000000"},
		{"nil", nil, "64 0003 6e696c"},
		{"true", true, "64 0004 74727565"},
		{"false", false, "64 0005 66616c7365"},
		{"atom", Atom("ok"), "64 0002 6f6b"},
		{"atom nil", Atom("nil"), "64 0003 6e696c"},
		{"latin1 atom", Atom("é"), "64 0001 e9"},
		{"latin1 atom 255 chars", Atom(latin1Max), "64 00ff" + strings.Repeat("e9", 255)},
		{"utf8 atom", Atom("✓"), "77 03 e29c93"},
		{"long utf8 atom", Atom(strings.Repeat("✓", 100)), "76 012c" + strings.Repeat("e29c93", 100)},
		{"empty atom", Atom(""), "64 0000"},
		{"binary", "user-7", "6d 00000006 757365722d37"},
		{"empty binary", "", "6d 00000000"},
		{"bytes", []byte{0, 255}, "6d 00000002 00ff"},
		{"empty list", []any{}, "6a"},
		{"nil slice", []string(nil), "6a"},
		{"charlist", []int{1, 2, 3}, "6b 0003 010203"},
		{"charlist any", []any{int64(104), uint16(105)}, "6b 0002 6869"},
		{"list", []any{"a", 1, true, nil}, "6c 00000004 6d0000000161 6101 6400047472756564 00036e696c 6a"},
		{"charlist of mixed types", []any{int8(1), int16(2), int32(3), uint(4), uint32(5), uint64(6), big.NewInt(7), userID(8), namedUint(9), uint16(10)},
			"6b 000a 0102030405060708090a"},
		{"not charlists", []any{uint64(300), uint(256), userID(-1), namedUint(256), int8(-1), bigPow2(64), uint16(256)},
			"6c 00000007 620000012c 6200000100 62ffffffff 6200000100 62ffffffff 6e0900000000000000000001 6200000100 6a"},
		{"list of 256", []any{256}, "6c 00000001 6200000100 6a"},
		{"list of negative", []int{-1}, "6c 00000001 62ffffffff 6a"},
		{"named slice", tags{"x"}, "6c 00000001 6d0000000178 6a"},
		{"array", [2]bool{true, false}, "6c 00000002 640004747275 65 6400056661 6c7365 6a"},
		{"improper", ImproperList{Elems: []any{1}, Tail: 2}, "6c 00000001 6101 6102"},
		{"improper with list tail", ImproperList{Elems: []any{"a"}, Tail: []any{"b"}}, "6c 00000002 6d0000000161 6d0000000162 6a"},
		{"improper without elems", ImproperList{Tail: Atom("x")}, "64 0001 78"},
		{"empty tuple", Tuple{}, "68 00"},
		{"tuple", Tuple{Atom("ok"), 1}, "68 02 64 0002 6f6b 6101"},
		{"empty map", map[string]any{}, "74 00000000"},
		{"string map sorted", map[string]any{"role": "admin", "id": 7}, "74 00000002 6d00000002 6964 6107 6d00000004 726f6c65 6d00000005 61646d696e"},
		{"atom keys sorted", map[Atom]int{"signed": 1, "data": 2}, "74 00000002 640004 64617461 6102 640006 7369676e6564 6101"},
		{"term order keys", Map{
			{"b", 8}, {Atom("a"), 3}, {1, 1}, {2.0, 2}, {Tuple{}, 4}, {"", 7}, {false, 3},
		}, "74 00000007" +
			"6101 6101" + // 1
			"46 4000000000000000 6102" + // 2.0 (every integer sorts before every float)
			"64 0001 61 6103" + // :a
			"64 0005 66616c7365 6103" + // false
			"68 00 6104" + // {}
			"6d 00000000 6107" + // ""
			"6d 00000001 62 6108"}, // "b"
		{"go map with mixed keys", map[any]int{"b": 2, 1: 1}, "74 00000002 6101 6101 6d00000001 62 6102"},
		{"map with list keys", Map{{[]any{1}, 1}, {[]any{}, 0}, {map[string]any{}, 2}}, "74 00000003" +
			"74 00000000 6102" + // %{} (maps before lists)
			"6a 6100" + // []
			"6b 0001 01 6101"}, // [1]
		{"big and small int keys", Map{{bigPow2(70), 0}, {int64(math.MinInt64), 1}, {new(big.Int).Neg(bigPow2(70)), 2}}, "74 00000003" +
			"6e 09 01 000000000000000040 6102" +
			"6e 08 01 0000000000000080 6101" +
			"6e 09 00 000000000000000040 6100"},
		{"nested", map[string]any{"l": []any{Tuple{1, map[string]any{"k": nil}}}}, "74 00000001 6d000000016c 6c00000001 6802 6101 7400000001 6d000000016b 6400036e696c 6a"},
		{"nil pointer value", map[string]any{"p": (*int)(nil)}, "74 00000001 6d0000000170 6400036e696c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeTerm(tt.in)
			if err != nil {
				t.Fatalf("EncodeTerm(%#v): %v", tt.in, err)
			}
			want := append([]byte{131}, mustHex(t, tt.hex)...)
			if !bytes.Equal(got, want) {
				t.Fatalf("EncodeTerm(%#v)\n got %x\nwant %x", tt.in, got, want)
			}
		})
	}
}

func TestEncodeTermErrors(t *testing.T) {
	cyclic := []any{nil}
	cyclic[0] = cyclic
	type point struct{ X int }
	type selfPtr *selfPtr
	var loop selfPtr
	loop = &loop
	tests := []struct {
		name string
		in   any
	}{
		{"struct", point{1}},
		{"func", func() {}},
		{"chan", make(chan int)},
		{"complex", complex(1, 2)},
		{"NaN", math.NaN()},
		{"Inf", math.Inf(1)},
		{"nil big", (*big.Int)(nil)},
		{"atom too long", Atom(strings.Repeat("a", 256))},
		{"atom not utf8", Atom("\xff")},
		{"cyclic", cyclic},
		{"pointer loop", loop},
		{"pointer loop in list", []any{loop}},
		{"duplicate Map keys", Map{{1, "a"}, {int8(1), "b"}}},
		{"duplicate map keys", map[any]any{1: "a", int64(1): "b"}},
		{"duplicate atom keys", Map{{Atom("true"), 1}, {true, 2}}},
		{"bad map key", map[any]any{point{}: 1}},
		{"bad nested value", []any{1, map[string]any{"x": point{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := EncodeTerm(tt.in); err == nil {
				t.Fatalf("EncodeTerm(%#v) = %x, want an error", tt.in, b)
			}
		})
	}
}

func TestDecodeTerm(t *testing.T) {
	floatExt := "63" + hex.EncodeToString([]byte("3.50000000000000000000e+00")) + "0000000000"
	tests := []struct {
		name string
		hex  string // without the version byte
		want any
	}{
		{"small int", "61 2a", int64(42)},
		{"integer", "62 fffffffb", int64(-5)},
		{"small big", "6e 06 00 0068e5cf8b01", int64(1700000000000)},
		{"small big zero digits", "6e 00 00", int64(0)},
		{"negative zero big", "6e 01 01 00", int64(0)},
		{"small big int64 min", "6e 08 01 0000000000000080", int64(math.MinInt64)},
		{"small big beyond int64", "6e 08 00 0000000000000080", new(big.Int).Lsh(big.NewInt(1), 63)},
		{"small big below int64", "6e 08 01 0100000000000080", new(big.Int).Neg(new(big.Int).Add(bigPow2(63), big.NewInt(1)))},
		{"small big 20 digits", "6e 08 00 d20a1feb8ca954ab", mustBig("12345678901234567890")},
		{"large big", "6f 00000009 00 000000000000000001", bigPow2(64)},
		{"large big small value", "6f 00000001 01 07", int64(-7)},
		{"new float", "46 400c000000000000", 3.5},
		{"old float", floatExt, 3.5},
		{"atom", "64 0002 6f6b", Atom("ok")},
		{"latin1 atom", "64 0002 e96c", Atom("él")},
		{"small atom", "73 02 6f6b", Atom("ok")},
		{"utf8 atom", "76 0003 e29c93", Atom("✓")},
		{"small utf8 atom", "77 03 e29c93", Atom("✓")},
		{"nil", "64 0003 6e696c", nil},
		{"true small utf8", "77 04 74727565", true},
		{"false small", "73 05 66616c7365", false},
		{"binary", "6d 00000002 6869", "hi"},
		{"non-utf8 binary", "6d 00000001 ff", "\xff"},
		{"nil list", "6a", []any{}},
		{"string ext", "6b 0002 6869", []any{int64(104), int64(105)}},
		{"list", "6c 00000002 6101 6d00000001 61 6a", []any{int64(1), "a"}},
		{"improper", "6c 00000001 6101 6102", ImproperList{Elems: []any{int64(1)}, Tail: int64(2)}},
		{"list tail is list", "6c 00000001 6101 6c00000001 6102 6a", []any{int64(1), int64(2)}},
		{"list tail is string", "6c 00000001 6101 6b0001 02", []any{int64(1), int64(2)}},
		{"list tail is improper", "6c 00000001 6101 6c00000001 6102 6103", ImproperList{Elems: []any{int64(1), int64(2)}, Tail: int64(3)}},
		{"empty list ext", "6c 00000000 6a", []any{}},
		{"empty list ext with tail", "6c 00000000 6105", int64(5)},
		{"small tuple", "68 02 6101 6a", Tuple{int64(1), []any{}}},
		{"large tuple", "69 00000001 6101", Tuple{int64(1)}},
		{"binary map", "74 00000002 6d00000001 62 6102 6d00000001 61 6101", map[string]any{"a": int64(1), "b": int64(2)}},
		{"atom map sorted", "74 00000002 640006 7369676e6564 6101 640004 64617461 6102",
			Map{{Atom("data"), int64(2)}, {Atom("signed"), int64(1)}}},
		{"mixed map sorted", "74 00000003 6d00000001 61 6101 46 3ff0000000000000 6102 6101 6103",
			Map{{int64(1), int64(3)}, {1.0, int64(2)}, {"a", int64(1)}}},
		{"empty map", "74 00000000", map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]byte{131}, mustHex(t, tt.hex)...)
			got, err := DecodeTerm(in)
			if err != nil {
				t.Fatalf("DecodeTerm(%x): %v", in, err)
			}
			if !termsEqual(got, tt.want) {
				t.Fatalf("DecodeTerm(%x)\n got %#v\nwant %#v", in, got, tt.want)
			}
		})
	}
}

func mustBig(s string) *big.Int {
	z, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return z
}

// termsEqual compares decoded terms, including their Go types.
func termsEqual(a, b any) bool {
	if reflect.TypeOf(a) != reflect.TypeOf(b) {
		return false
	}
	switch a := a.(type) {
	case *big.Int:
		return a.Cmp(b.(*big.Int)) == 0
	case float64:
		return math.Float64bits(a) == math.Float64bits(b.(float64))
	case []any:
		b := b.([]any)
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if !termsEqual(a[i], b[i]) {
				return false
			}
		}
		return true
	case Tuple:
		return termsEqual([]any(a), []any(b.(Tuple)))
	case ImproperList:
		b := b.(ImproperList)
		return termsEqual(a.Elems, b.Elems) && termsEqual(a.Tail, b.Tail)
	case Map:
		b := b.(Map)
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if !termsEqual(a[i].Key, b[i].Key) || !termsEqual(a[i].Value, b[i].Value) {
				return false
			}
		}
		return true
	case map[string]any:
		b := b.(map[string]any)
		if len(a) != len(b) {
			return false
		}
		for k, v := range a {
			w, ok := b[k]
			if !ok || !termsEqual(v, w) {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestDecodeTermErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string // full input, with the version byte
	}{
		{"empty", ""},
		{"version only", "83"},
		{"bad version", "84 6101"},
		{"trailing", "83 6101 00"},
		{"compressed", "83 50 00000002 789c"},
		{"pid", "83 58 6400036e6f6e 00000001 00000000 00000000"},
		{"reference", "83 5a 0001 6400036e6f6e 00000000 00000001"},
		{"export", "83 71 6400016d 6400016620 61 01"},
		{"bit binary", "83 4d 00000001 03 ff"},
		{"unknown tag", "83 ff"},
		{"NaN", "83 46 7ff8000000000000"},
		{"Inf", "83 46 7ff0000000000000"},
		{"bad old float", "83 63" + strings.Repeat("78", 31)},
		{"atom not utf8", "83 77 01 ff"},
		{"utf8 atom too long", "83 76 0100" + strings.Repeat("61", 256)},
		{"latin1 atom too long", "83 64 0100" + strings.Repeat("61", 256)},
		{"duplicate binary keys", "83 74 00000002 6d00000001 61 6101 6d00000001 61 6102"},
		{"duplicate keys", "83 74 00000002 6101 6101 6101 6102"},
		{"duplicate atom keys", "83 74 00000002 640004 74727565 6101 770474727565 6102"},
		{"binary claims 4GB", "83 6d ffffffff 00"},
		{"list claims 4GB", "83 6c ffffffff 6a"},
		{"tuple claims 4GB", "83 69 ffffffff 6a"},
		{"map claims 4GB", "83 74 ffffffff 6a6a"},
		{"large big claims 4GB", "83 6f ffffffff 00 00"},
		{"string claims 64KB", "83 6b ffff 00"},
		{"atom claims 64KB", "83 64 ffff 00"},
		{"list without tail", "83 6c 00000001 6101"},
		{"map without value", "83 74 00000001 6101"},
		{"tuple short", "83 68 02 6101"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := mustHex(t, tt.in)
			if v, err := DecodeTerm(in); err == nil {
				t.Fatalf("DecodeTerm(%x) = %#v, want an error", in, v)
			}
		})
	}
}

// Every strict prefix of a valid term is an error, never a panic.
func TestDecodeTermTruncated(t *testing.T) {
	full, err := EncodeTerm(Tuple{
		map[string]any{"id": 7, "tags": []any{"a", Atom("b"), 3.5, bigPow2(80), []int{1, 2}}},
		ImproperList{Elems: []any{1}, Tail: Atom("✓")},
		Map{{Tuple{}, int64(-70000)}, {int64(1) << 40, nil}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeTerm(full); err != nil {
		t.Fatalf("DecodeTerm(full): %v", err)
	}
	for i := range len(full) {
		if v, err := DecodeTerm(full[:i]); err == nil {
			t.Fatalf("DecodeTerm(%x) = %#v, want an error", full[:i], v)
		}
	}
}

func TestDecodeTermDepth(t *testing.T) {
	deep := func(n int) []byte {
		b := []byte{131}
		for range n {
			b = append(b, tagSmallTuple, 1)
		}
		return append(b, tagNil)
	}
	if _, err := DecodeTerm(deep(maxTermDepth)); err != nil {
		t.Fatalf("depth %d: %v", maxTermDepth, err)
	}
	if _, err := DecodeTerm(deep(maxTermDepth + 1)); !errors.Is(err, errDepth) {
		t.Fatalf("depth %d: err = %v, want errDepth", maxTermDepth+1, err)
	}
	if _, err := DecodeTerm(deep(1_000_000)); !errors.Is(err, errDepth) {
		t.Fatalf("depth 1e6: err = %v, want errDepth", err)
	}
	// Encoding is bounded the same way, and what decodes re-encodes.
	v, _ := DecodeTerm(deep(maxTermDepth))
	if _, err := EncodeTerm(v); err != nil {
		t.Fatalf("re-encoding depth %d: %v", maxTermDepth, err)
	}
}

// Nested containers that each claim as many elements as there are bytes
// left must not reserve memory in proportion to the claims.
func TestDecodeTermAllocBound(t *testing.T) {
	const levels = 500
	b := []byte{131}
	for i := range levels {
		claim := (levels-1-i)*5 + 999 // all but one of the bytes left
		b = append(b, tagList, byte(claim>>24), byte(claim>>16), byte(claim>>8), byte(claim))
	}
	b = append(b, make([]byte, 1000)...) // padding so the claims look plausible
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := DecodeTerm(b)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("DecodeTerm succeeded on a truncated bomb")
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("decoding a %d-byte input allocated %d bytes", len(b), alloc)
	}
}

func TestTermRoundTrip(t *testing.T) {
	values := []any{
		int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64), bigPow2(100),
		new(big.Int).Neg(bigPow2(2100)), 0.1, -1e300, "", "héllo", nil, true, false,
		Atom("ok"), Atom("ünïcødé ✓"), []any{}, []any{int64(1), int64(2)}, []any{"x", []any{}},
		ImproperList{Elems: []any{"a", int64(1)}, Tail: Atom("b")},
		Tuple{}, Tuple{Atom("ok"), "x"}, make(Tuple, 300),
		map[string]any{}, map[string]any{"a": []any{map[string]any{"b": nil}}},
		Map{{int64(1), "one"}, {Atom("k"), Tuple{}}, {Tuple{int64(1)}, int64(2)}, {map[string]any{"x": int64(1)}, 3.5}},
	}
	for _, v := range values {
		b, err := EncodeTerm(v)
		if err != nil {
			t.Fatalf("EncodeTerm(%#v): %v", v, err)
		}
		got, err := DecodeTerm(b)
		if err != nil {
			t.Fatalf("DecodeTerm(EncodeTerm(%#v)): %v", v, err)
		}
		if !termsEqual(got, v) {
			t.Fatalf("round trip of %#v gave %#v", v, got)
		}
	}
}

func TestCompareTerms(t *testing.T) {
	// In ascending Erlang map-key order.
	ordered := []any{
		new(big.Int).Neg(bigPow2(70)), int64(math.MinInt64), int64(-1), int64(0), int64(2), bigPow2(64),
		math.Inf(-1), -1.5, math.Copysign(0, -1), 0.0, 1.0, 1e300,
		Atom(""), Atom("a"), Atom("ab"), false, nil, Atom("nim"), true, Atom("é"), Atom("✓"),
		Tuple{}, Tuple{"z"}, Tuple{int64(1), int64(1)}, Tuple{int64(1), int64(2)},
		map[string]any{}, Map{{int64(1), int64(9)}}, map[string]any{"a": int64(1)}, map[string]any{"a": int64(2)},
		map[string]any{"a": int64(1), "b": int64(1)},
		[]any{},
		ImproperList{Elems: []any{int64(1)}, Tail: int64(0)}, []any{int64(1)}, []any{int64(1), int64(0)},
		[]any{int64(1), "a"}, []any{int64(2)}, []any{"a"},
		"", "\x00", "a", "ab", "b", "\xff",
	}
	for i, a := range ordered {
		for j, b := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := compareTerms(a, b); got != want {
				t.Errorf("compareTerms(%#v, %#v) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func FuzzDecodeTerm(f *testing.F) {
	for _, c := range loadVectors(f).Cases {
		f.Add(mustHex(f, c.PayloadETFHex))
	}
	for _, v := range []any{
		Tuple{map[string]any{"id": 1}, []any{Atom("a"), 1.5, "s"}, ImproperList{Elems: []any{1}, Tail: 2}},
		Map{{Atom("data"), 1}, {Atom("signed"), int64(1) << 41}},
		[]int{1, 2, 3}, bigPow2(3000), Atom("✓"),
	} {
		b, err := EncodeTerm(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{131, tagSmallAtom, 2, 'o', 'k'})
	f.Add([]byte{131, tagList, 0xff, 0xff, 0xff, 0xff, tagNil})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeTerm(b)
		if err != nil {
			return
		}
		enc, err := EncodeTerm(v)
		if err != nil {
			t.Fatalf("EncodeTerm(DecodeTerm(%x) = %#v): %v", b, v, err)
		}
		v2, err := DecodeTerm(enc)
		if err != nil {
			t.Fatalf("DecodeTerm(%x) (re-encoded from %x): %v", enc, b, err)
		}
		if !termsEqual(v, v2) {
			t.Fatalf("round trip changed the term:\n%#v\n%#v", v, v2)
		}
		enc2, err := EncodeTerm(v2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %x vs %x (%v)", enc, enc2, err)
		}
	})
}

// A list whose tail is another LIST_EXT, repeatedly, is one flat list; the
// chain costs no nesting depth.
func TestDecodeTermListChain(t *testing.T) {
	const links = 10000
	b := []byte{131}
	for i := range links {
		b = append(b, tagList, 0, 0, 0, 1, tagSmallInteger, byte(i))
	}
	b = append(b, tagString, 0, 2, 'h', 'i')
	v, err := DecodeTerm(b)
	if err != nil {
		t.Fatal(err)
	}
	l, ok := v.([]any)
	if !ok || len(l) != links+2 || l[links-1] != int64((links-1)%256) || l[links+1] != int64('i') {
		t.Fatalf("DecodeTerm returned %T of length %d", v, len(l))
	}
}
