package token

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file is a small codec for the Erlang External Term Format (ETF), the
// format of :erlang.term_to_binary/1, covering the terms that plain data
// (Elixir strings, numbers, atoms, lists, tuples and maps) is made of.

// Atom is an Erlang atom (an Elixir atom such as :ok), held as its UTF-8
// name. The atoms nil, true and false are represented by Go's nil, true and
// false instead: [DecodeTerm] never returns Atom("nil"), Atom("true") or
// Atom("false"), though [EncodeTerm] accepts them.
type Atom string

// Tuple is an Erlang tuple such as {:ok, 1}.
type Tuple []any

// Map is an Erlang map whose keys are not all binaries, for example
// %{id: 7} or %{1 => "a"}, as a list of entries. [DecodeTerm] returns the
// entries sorted in Erlang term order; [EncodeTerm] accepts them in any order
// but rejects duplicate keys. A map whose keys are all binaries is decoded to
// a map[string]any instead.
type Map []MapEntry

// MapEntry is one key/value pair of a [Map].
type MapEntry struct {
	Key   any
	Value any
}

// ImproperList is an Erlang list whose tail is not the empty list, such as
// [1 | 2]. Proper lists are []any. [DecodeTerm] returns one only with at least
// one element and a tail that is not a list.
type ImproperList struct {
	Elems []any
	Tail  any
}

// ETF tags.
const (
	etfVersion       = 131
	tagNewFloat      = 70
	tagSmallInteger  = 97
	tagInteger       = 98
	tagFloat         = 99
	tagAtom          = 100
	tagSmallTuple    = 104
	tagLargeTuple    = 105
	tagNil           = 106
	tagString        = 107
	tagList          = 108
	tagBinary        = 109
	tagSmallBig      = 110
	tagLargeBig      = 111
	tagSmallAtom     = 115
	tagMap           = 116
	tagAtomUTF8      = 118
	tagSmallAtomUTF8 = 119
)

const (
	// maxTermDepth bounds the nesting of lists, tuples and maps, on decode
	// and on encode (which also catches cyclic Go values).
	maxTermDepth = 512
	// maxPrealloc caps the capacity reserved for a container before its
	// elements are decoded, so that length fields cannot make nested
	// containers reserve much more memory than the input's size.
	maxPrealloc = 32
	// maxAtomChars is Erlang's limit on the length of an atom.
	maxAtomChars = 255
	// maxStringExt: term_to_binary uses STRING_EXT for lists of bytes
	// shorter than 0xffff elements.
	maxStringExt = 0xffff
)

var (
	errTruncated = errors.New("token: etf: truncated term")
	errDepth     = errors.New("token: etf: term nested too deeply")
)

// DecodeTerm decodes b, which must be :erlang.term_to_binary output (starting
// with the version byte 131, not compressed, with no trailing bytes), into
// Go values:
//
//   - integers: int64, or *big.Int when outside the int64 range;
//   - floats: float64;
//   - binaries: string (the bytes as they are, whether UTF-8 or not);
//   - atoms: nil, true, false, or [Atom];
//   - lists: []any (never nil; [] is an empty slice), or [ImproperList];
//     charlists encoded as STRING_EXT are lists of int64;
//   - tuples: [Tuple];
//   - maps: map[string]any when every key is a binary, otherwise [Map].
//
// Pids, references, ports, funs, bitstrings and compressed terms are
// rejected. DecodeTerm does not panic on malformed input, bounds the memory
// it reserves by the input's size, and bounds nesting depth.
func DecodeTerm(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, errTruncated
	}
	if b[0] != etfVersion {
		return nil, fmt.Errorf("token: etf: bad version byte %d", b[0])
	}
	d := decoder{b: b, off: 1}
	v, err := d.term(0)
	if err != nil {
		return nil, err
	}
	if d.off != len(b) {
		return nil, fmt.Errorf("token: etf: %d trailing bytes", len(b)-d.off)
	}
	return v, nil
}

type decoder struct {
	b   []byte
	off int
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) bytes(n int) ([]byte, error) {
	if n < 0 || n > d.remaining() {
		return nil, errTruncated
	}
	s := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return s, nil
}

func (d *decoder) u8() (int, error) {
	if d.remaining() < 1 {
		return 0, errTruncated
	}
	v := d.b[d.off]
	d.off++
	return int(v), nil
}

func (d *decoder) u16() (int, error) {
	s, err := d.bytes(2)
	if err != nil {
		return 0, err
	}
	return int(binary.BigEndian.Uint16(s)), nil
}

func (d *decoder) u32() (uint32, error) {
	s, err := d.bytes(4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(s), nil
}

// count reads a 4-byte element count and checks that the input can hold that
// many elements of at least perElem bytes each, plus extra bytes.
func (d *decoder) count(perElem, extra int) (int, error) {
	n, err := d.u32()
	if err != nil {
		return 0, err
	}
	rem := d.remaining() - extra
	if rem < 0 || uint64(n)*uint64(perElem) > uint64(rem) {
		return 0, errTruncated
	}
	return int(n), nil
}

func (d *decoder) term(depth int) (any, error) {
	if depth > maxTermDepth {
		return nil, errDepth
	}
	tag, err := d.u8()
	if err != nil {
		return nil, err
	}
	switch tag {
	case tagSmallInteger:
		v, err := d.u8()
		return int64(v), err
	case tagInteger:
		s, err := d.bytes(4)
		if err != nil {
			return nil, err
		}
		return int64(int32(binary.BigEndian.Uint32(s))), nil
	case tagSmallBig:
		n, err := d.u8()
		if err != nil {
			return nil, err
		}
		return d.bigInt(n)
	case tagLargeBig:
		n, err := d.count(1, 1)
		if err != nil {
			return nil, err
		}
		return d.bigInt(n)
	case tagNewFloat:
		s, err := d.bytes(8)
		if err != nil {
			return nil, err
		}
		return checkFloat(math.Float64frombits(binary.BigEndian.Uint64(s)))
	case tagFloat:
		s, err := d.bytes(31)
		if err != nil {
			return nil, err
		}
		text := strings.TrimSpace(strings.TrimRight(string(s), "\x00"))
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, fmt.Errorf("token: etf: bad FLOAT_EXT %q", text)
		}
		return checkFloat(f)
	case tagAtom, tagSmallAtom, tagAtomUTF8, tagSmallAtomUTF8:
		var n int
		if tag == tagSmallAtom || tag == tagSmallAtomUTF8 {
			n, err = d.u8()
		} else {
			n, err = d.u16()
		}
		if err != nil {
			return nil, err
		}
		s, err := d.bytes(n)
		if err != nil {
			return nil, err
		}
		var name string
		if tag == tagAtom || tag == tagSmallAtom {
			if n > maxAtomChars {
				return nil, errors.New("token: etf: atom too long")
			}
			name = latin1ToUTF8(s)
		} else {
			if !utf8.Valid(s) {
				return nil, errors.New("token: etf: atom is not valid UTF-8")
			}
			if utf8.RuneCount(s) > maxAtomChars {
				return nil, errors.New("token: etf: atom too long")
			}
			name = string(s)
		}
		return atomValue(name), nil
	case tagBinary:
		n, err := d.count(1, 0)
		if err != nil {
			return nil, err
		}
		s, err := d.bytes(n)
		return string(s), err
	case tagNil:
		return []any{}, nil
	case tagString:
		n, err := d.u16()
		if err != nil {
			return nil, err
		}
		s, err := d.bytes(n)
		if err != nil {
			return nil, err
		}
		l := make([]any, n)
		for i, c := range s {
			l[i] = int64(c)
		}
		return l, nil
	case tagList:
		var elems []any
		for {
			n, err := d.count(1, 1) // n elements, then the tail
			if err != nil {
				return nil, err
			}
			if elems == nil {
				elems = make([]any, 0, min(n, maxPrealloc))
			}
			for range n {
				v, err := d.term(depth + 1)
				if err != nil {
					return nil, err
				}
				elems = append(elems, v)
			}
			// A tail that is itself a LIST_EXT continues this list; read it
			// here rather than recursing, so that such chains cost neither
			// depth nor copying.
			if d.remaining() > 0 && d.b[d.off] == tagList {
				d.off++
				continue
			}
			tail, err := d.term(depth + 1)
			if err != nil {
				return nil, err
			}
			return joinList(elems, tail), nil
		}
	case tagSmallTuple, tagLargeTuple:
		var n int
		if tag == tagSmallTuple {
			n, err = d.u8()
		} else {
			n, err = d.count(1, 0)
		}
		if err != nil {
			return nil, err
		}
		t := make(Tuple, 0, min(n, maxPrealloc))
		for range n {
			v, err := d.term(depth + 1)
			if err != nil {
				return nil, err
			}
			t = append(t, v)
		}
		return t, nil
	case tagMap:
		n, err := d.count(2, 0)
		if err != nil {
			return nil, err
		}
		entries := make(Map, 0, min(n, maxPrealloc))
		allBinary := true
		for range n {
			k, err := d.term(depth + 1)
			if err != nil {
				return nil, err
			}
			v, err := d.term(depth + 1)
			if err != nil {
				return nil, err
			}
			if _, ok := k.(string); !ok {
				allBinary = false
			}
			entries = append(entries, MapEntry{k, v})
		}
		if allBinary {
			m := make(map[string]any, len(entries))
			for _, e := range entries {
				k := e.Key.(string)
				if _, dup := m[k]; dup {
					return nil, fmt.Errorf("token: etf: duplicate map key %q", k)
				}
				m[k] = e.Value
			}
			return m, nil
		}
		slices.SortStableFunc(entries, func(a, b MapEntry) int { return compareTerms(a.Key, b.Key) })
		for i := 1; i < len(entries); i++ {
			if compareTerms(entries[i-1].Key, entries[i].Key) == 0 {
				return nil, errors.New("token: etf: duplicate map key")
			}
		}
		return entries, nil
	default:
		return nil, fmt.Errorf("token: etf: unsupported tag %d", tag)
	}
}

// bigInt reads the sign byte and n little-endian digit bytes of a bignum.
func (d *decoder) bigInt(n int) (any, error) {
	sign, err := d.u8()
	if err != nil {
		return nil, err
	}
	digits, err := d.bytes(n)
	if err != nil {
		return nil, err
	}
	neg := sign != 0
	if n <= 8 {
		var mag uint64
		for i := n - 1; i >= 0; i-- {
			mag = mag<<8 | uint64(digits[i])
		}
		switch {
		case !neg && mag <= math.MaxInt64:
			return int64(mag), nil
		case neg && mag <= 1<<63:
			return -int64(mag), nil // -(1<<63) wraps to math.MinInt64, as intended
		}
	}
	be := make([]byte, n)
	for i, c := range digits {
		be[n-1-i] = c
	}
	z := new(big.Int).SetBytes(be)
	if neg {
		z.Neg(z)
	}
	if z.IsInt64() {
		return z.Int64(), nil
	}
	return z, nil
}

func checkFloat(f float64) (any, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, errors.New("token: etf: float is not finite")
	}
	return f, nil
}

func latin1ToUTF8(s []byte) string {
	ascii := true
	for _, c := range s {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return string(s)
	}
	r := make([]rune, len(s))
	for i, c := range s {
		r[i] = rune(c)
	}
	return string(r)
}

func atomValue(name string) any {
	switch name {
	case "nil":
		return nil
	case "true":
		return true
	case "false":
		return false
	}
	return Atom(name)
}

// joinList builds the list [elems... | tail], flattening a tail that is
// itself a list, the way cons cells do.
func joinList(elems []any, tail any) any {
	switch t := tail.(type) {
	case []any:
		if len(elems) == 0 {
			return t
		}
		return append(elems, t...)
	case ImproperList:
		if len(elems) == 0 {
			return t
		}
		return ImproperList{Elems: append(elems, t.Elems...), Tail: t.Tail}
	}
	if len(elems) == 0 {
		return tail
	}
	return ImproperList{Elems: elems, Tail: tail}
}

// EncodeTerm encodes v in the External Term Format, byte for byte as
// :erlang.term_to_binary/1 does on OTP 25 and earlier: atoms that fit in
// Latin-1 as ATOM_EXT, lists of small integers as STRING_EXT, integers in the
// smallest of SMALL_INTEGER_EXT, INTEGER_EXT and SMALL_BIG_EXT that holds
// them. (OTP 26 and later write atoms as SMALL_ATOM_UTF8_EXT; every release
// decodes both.) It accepts:
//
//   - nil, bool and [Atom] as atoms;
//   - string and []byte as binaries;
//   - every Go integer type and *big.Int as integers;
//   - float32 and float64 (finite only) as floats;
//   - [Tuple] as a tuple;
//   - []any and other slices and arrays as lists, and [ImproperList];
//   - [Map], map[string]any and other Go maps as maps;
//   - pointers and interfaces to any of these (nil is the atom nil), and
//     named types whose underlying type is one of these.
//
// Structs, channels, functions and complex numbers are rejected. Maps are
// written with their keys in Erlang term order, as OTP does for maps of up to
// 32 keys; OTP 26 and later may order atom keys differently, and OTP writes
// maps of more than 32 keys in hash order, so for those the bytes, not the
// decoded term, can differ from Erlang's.
func EncodeTerm(v any) ([]byte, error) {
	e := encoder{buf: make([]byte, 1, 64)}
	e.buf[0] = etfVersion
	if err := e.term(v, 0); err != nil {
		return nil, err
	}
	return e.buf, nil
}

type encoder struct {
	buf []byte
}

func (e *encoder) term(v any, depth int) error {
	if depth > maxTermDepth {
		return errDepth
	}
	switch v := v.(type) {
	case nil:
		e.atom("nil")
	case bool:
		if v {
			e.atom("true")
		} else {
			e.atom("false")
		}
	case Atom:
		return e.checkedAtom(string(v))
	case string:
		return e.binary(v)
	case []byte:
		return e.binary(string(v))
	case int:
		e.int(int64(v))
	case int8:
		e.int(int64(v))
	case int16:
		e.int(int64(v))
	case int32:
		e.int(int64(v))
	case int64:
		e.int(v)
	case uint:
		e.uint(uint64(v))
	case uint8:
		e.int(int64(v))
	case uint16:
		e.int(int64(v))
	case uint32:
		e.int(int64(v))
	case uint64:
		e.uint(v)
	case *big.Int:
		if v == nil {
			return errors.New("token: etf: nil *big.Int")
		}
		e.bigInt(v)
	case float64:
		return e.float(v)
	case float32:
		return e.float(float64(v))
	case Tuple:
		return e.tuple(len(v), func(i int) any { return v[i] }, depth)
	case []any:
		return e.list(len(v), func(i int) any { return v[i] }, depth)
	case ImproperList:
		return e.improper(v, depth)
	case Map:
		return e.mapEntries(v, depth)
	case map[string]any:
		entries := make(Map, 0, len(v))
		for k, val := range v {
			entries = append(entries, MapEntry{k, val})
		}
		return e.mapEntries(entries, depth)
	default:
		return e.reflect(reflect.ValueOf(v), depth)
	}
	return nil
}

func (e *encoder) reflect(rv reflect.Value, depth int) error {
	switch rv.Kind() {
	case reflect.Bool:
		return e.term(rv.Bool(), depth)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.int(rv.Int())
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.uint(rv.Uint())
		return nil
	case reflect.Float32, reflect.Float64:
		return e.float(rv.Float())
	case reflect.String:
		return e.binary(rv.String())
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return e.binary(string(rv.Bytes()))
		}
		return e.list(rv.Len(), func(i int) any { return rv.Index(i).Interface() }, depth)
	case reflect.Array:
		return e.list(rv.Len(), func(i int) any { return rv.Index(i).Interface() }, depth)
	case reflect.Map:
		entries := make(Map, 0, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			entries = append(entries, MapEntry{it.Key().Interface(), it.Value().Interface()})
		}
		return e.mapEntries(entries, depth)
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			e.atom("nil")
			return nil
		}
		return e.term(rv.Elem().Interface(), depth+1)
	}
	if !rv.IsValid() {
		e.atom("nil")
		return nil
	}
	return fmt.Errorf("token: etf: cannot encode %s as an Erlang term", rv.Type())
}

func (e *encoder) u16(n int) { e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(n)) }
func (e *encoder) u32(n int) { e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(n)) }

func fitsU32(n int) bool { return uint64(n) <= math.MaxUint32 }

func (e *encoder) checkedAtom(name string) error {
	if !utf8.ValidString(name) {
		return errors.New("token: etf: atom is not valid UTF-8")
	}
	if utf8.RuneCountInString(name) > maxAtomChars {
		return errors.New("token: etf: atom longer than 255 characters")
	}
	e.atom(name)
	return nil
}

// atom writes an atom as OTP 25's term_to_binary does: ATOM_EXT with Latin-1
// characters when every character is Latin-1, otherwise (SMALL_)ATOM_UTF8_EXT.
func (e *encoder) atom(name string) {
	latin1 := true
	for _, r := range name {
		if r > 0xff {
			latin1 = false
			break
		}
	}
	switch {
	case latin1:
		e.buf = append(e.buf, tagAtom)
		lenAt := len(e.buf)
		e.buf = append(e.buf, 0, 0)
		for _, r := range name {
			e.buf = append(e.buf, byte(r))
		}
		binary.BigEndian.PutUint16(e.buf[lenAt:], uint16(len(e.buf)-lenAt-2))
	case len(name) <= 255:
		e.buf = append(e.buf, tagSmallAtomUTF8, byte(len(name)))
		e.buf = append(e.buf, name...)
	default:
		e.buf = append(e.buf, tagAtomUTF8)
		e.u16(len(name))
		e.buf = append(e.buf, name...)
	}
}

func (e *encoder) binary(s string) error {
	if !fitsU32(len(s)) {
		return errors.New("token: etf: binary too long")
	}
	e.buf = append(e.buf, tagBinary)
	e.u32(len(s))
	e.buf = append(e.buf, s...)
	return nil
}

func (e *encoder) int(i int64) {
	switch {
	case 0 <= i && i <= 255:
		e.buf = append(e.buf, tagSmallInteger, byte(i))
	case math.MinInt32 <= i && i <= math.MaxInt32:
		e.buf = append(e.buf, tagInteger)
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(int32(i)))
	case i < 0:
		e.smallBig(1, uint64(-i)) // -MinInt64 wraps to 1<<63, its magnitude
	default:
		e.smallBig(0, uint64(i))
	}
}

func (e *encoder) uint(u uint64) {
	if u <= math.MaxInt64 {
		e.int(int64(u))
		return
	}
	e.smallBig(0, u)
}

func (e *encoder) smallBig(sign byte, mag uint64) {
	n := (bits64(mag) + 7) / 8
	e.buf = append(e.buf, tagSmallBig, byte(n), sign)
	for range n {
		e.buf = append(e.buf, byte(mag))
		mag >>= 8
	}
}

func bits64(u uint64) int {
	n := 0
	for u != 0 {
		n++
		u >>= 1
	}
	return n
}

func (e *encoder) bigInt(z *big.Int) {
	if z.IsInt64() {
		e.int(z.Int64())
		return
	}
	be := z.Bytes() // magnitude, big-endian
	var sign byte
	if z.Sign() < 0 {
		sign = 1
	}
	if len(be) <= 255 {
		e.buf = append(e.buf, tagSmallBig, byte(len(be)), sign)
	} else {
		e.buf = append(e.buf, tagLargeBig)
		e.u32(len(be))
		e.buf = append(e.buf, sign)
	}
	for i := len(be) - 1; i >= 0; i-- {
		e.buf = append(e.buf, be[i])
	}
}

func (e *encoder) float(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return errors.New("token: etf: cannot encode a NaN or infinite float")
	}
	e.buf = append(e.buf, tagNewFloat)
	e.buf = binary.BigEndian.AppendUint64(e.buf, math.Float64bits(f))
	return nil
}

func (e *encoder) tuple(n int, at func(int) any, depth int) error {
	if n <= 255 {
		e.buf = append(e.buf, tagSmallTuple, byte(n))
	} else {
		if !fitsU32(n) {
			return errors.New("token: etf: tuple too large")
		}
		e.buf = append(e.buf, tagLargeTuple)
		e.u32(n)
	}
	for i := range n {
		if err := e.term(at(i), depth+1); err != nil {
			return err
		}
	}
	return nil
}

// list writes a proper list, as STRING_EXT when term_to_binary would.
func (e *encoder) list(n int, at func(int) any, depth int) error {
	if n == 0 {
		e.buf = append(e.buf, tagNil)
		return nil
	}
	if n < maxStringExt {
		isString := true
		for i := range n {
			if _, ok := byteValue(at(i)); !ok {
				isString = false
				break
			}
		}
		if isString {
			e.buf = append(e.buf, tagString)
			e.u16(n)
			for i := range n {
				c, _ := byteValue(at(i))
				e.buf = append(e.buf, c)
			}
			return nil
		}
	}
	if !fitsU32(n) {
		return errors.New("token: etf: list too long")
	}
	e.buf = append(e.buf, tagList)
	e.u32(n)
	for i := range n {
		if err := e.term(at(i), depth+1); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, tagNil)
	return nil
}

func (e *encoder) improper(l ImproperList, depth int) error {
	switch v := joinList(slices.Clip(l.Elems), l.Tail).(type) {
	case ImproperList:
		if !fitsU32(len(v.Elems)) {
			return errors.New("token: etf: list too long")
		}
		e.buf = append(e.buf, tagList)
		e.u32(len(v.Elems))
		for _, x := range v.Elems {
			if err := e.term(x, depth+1); err != nil {
				return err
			}
		}
		return e.term(v.Tail, depth+1)
	default:
		return e.term(v, depth)
	}
}

// byteValue reports whether v is an integer from 0 through 255.
func byteValue(v any) (byte, bool) {
	var i int64
	switch v := v.(type) {
	case int:
		i = int64(v)
	case int64:
		i = v
	case int32:
		i = int64(v)
	case int16:
		i = int64(v)
	case int8:
		i = int64(v)
	case uint8:
		return v, true
	case uint:
		if v > 255 {
			return 0, false
		}
		i = int64(v)
	case uint16:
		i = int64(v)
	case uint32:
		i = int64(v)
	case uint64:
		if v > 255 {
			return 0, false
		}
		i = int64(v)
	case *big.Int:
		if v == nil || !v.IsInt64() {
			return 0, false
		}
		i = v.Int64()
	case nil, bool, string, Atom, float64, []any, Tuple, Map, map[string]any:
		return 0, false
	default:
		rv := reflect.ValueOf(v)
		for range maxTermDepth { // follow pointers, as term does
			if k := rv.Kind(); (k != reflect.Pointer && k != reflect.Interface) || rv.IsNil() {
				break
			}
			if z, ok := rv.Interface().(*big.Int); ok {
				return byteValue(z)
			}
			rv = rv.Elem()
		}
		switch rv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			i = rv.Int()
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			if rv.Uint() > 255 {
				return 0, false
			}
			i = int64(rv.Uint())
		default:
			return 0, false
		}
	}
	if i < 0 || i > 255 {
		return 0, false
	}
	return byte(i), true
}

// mapEntries writes a map with its keys in Erlang term order. Each key is
// encoded on its own first; keys that are not plain binaries, atoms or
// integers are decoded back to compare them in their canonical form.
func (e *encoder) mapEntries(entries Map, depth int) error {
	if !fitsU32(len(entries)) {
		return errors.New("token: etf: map too large")
	}
	type encodedEntry struct {
		key     any // canonical form, for ordering
		keyETF  []byte
		value   any
		inputIx int
	}
	enc := make([]encodedEntry, len(entries))
	for i, en := range entries {
		sub := encoder{buf: make([]byte, 1, 16)}
		sub.buf[0] = etfVersion
		if err := sub.term(en.Key, depth+1); err != nil {
			return err
		}
		var canon any
		switch k := en.Key.(type) {
		case string, Atom, int64, int, nil, bool:
			canon = canonicalScalar(k)
		default:
			var err error
			canon, err = DecodeTerm(sub.buf)
			if err != nil {
				return fmt.Errorf("token: etf: map key: %w", err)
			}
		}
		enc[i] = encodedEntry{key: canon, keyETF: sub.buf[1:], value: en.Value, inputIx: i}
	}
	slices.SortStableFunc(enc, func(a, b encodedEntry) int { return compareTerms(a.key, b.key) })
	for i := 1; i < len(enc); i++ {
		if compareTerms(enc[i-1].key, enc[i].key) == 0 {
			return fmt.Errorf("token: etf: duplicate map key %v", enc[i].key)
		}
	}
	e.buf = append(e.buf, tagMap)
	e.u32(len(enc))
	for _, en := range enc {
		e.buf = append(e.buf, en.keyETF...)
		if err := e.term(en.value, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func canonicalScalar(v any) any {
	switch v := v.(type) {
	case int:
		return int64(v)
	case Atom:
		return atomValue(string(v))
	}
	return v
}
