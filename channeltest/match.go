package channeltest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strings"

	"github.com/plumehq/plume"
)

// patterns are an assertion's wants, all of which a payload must satisfy.
type patterns []pattern

type pattern struct {
	desc  string
	match func(plume.Payload) bool
}

func (ps patterns) match(p plume.Payload) bool {
	for _, pat := range ps {
		if !pat.match(p) {
			return false
		}
	}
	return true
}

// String describes the wants for failure messages: "" or " matching X".
func (ps patterns) String() string {
	if len(ps) == 0 {
		return ""
	}
	descs := make([]string, len(ps))
	for i, p := range ps {
		descs[i] = p.desc
	}
	return " matching " + strings.Join(descs, " and ")
}

var (
	payloadType = reflect.TypeFor[plume.Payload]()
	bytesType   = reflect.TypeFor[[]byte]()
	binaryType  = reflect.TypeFor[plume.Binary]()
)

// compile turns wants into patterns; a want that cannot be one fails the
// test.
func (h *Harness) compile(op string, wants []any) patterns {
	h.t.Helper()
	ps := make(patterns, 0, len(wants))
	for _, w := range wants {
		p, err := compile(w)
		if err != nil {
			h.t.Fatalf("channeltest: %s: %v", op, err)
		}
		if p.match != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

func compile(w any) (pattern, error) {
	switch w := w.(type) {
	case nil:
		return pattern{}, nil
	case plume.Binary:
		return binaryPattern(w), nil
	case []byte:
		return binaryPattern(w), nil
	case plume.Payload:
		if w.IsBinary() {
			return binaryPattern(w.Bytes()), nil
		}
		return jsonPattern(w.Bytes())
	case json.RawMessage:
		return jsonPattern(w)
	}
	if v := reflect.ValueOf(w); v.Kind() == reflect.Func {
		return predicate(v)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return pattern{}, fmt.Errorf("want %T: %v", w, err)
	}
	return jsonPattern(b)
}

func binaryPattern(want []byte) pattern {
	return pattern{
		desc: fmt.Sprintf("<binary % x>", want),
		match: func(p plume.Payload) bool {
			return p.IsBinary() && bytes.Equal(p.Bytes(), want)
		},
	}
}

func jsonPattern(text []byte) (pattern, error) {
	want, err := decodeJSON(text)
	if err != nil {
		return pattern{}, fmt.Errorf("want %s: %v", text, err)
	}
	return pattern{
		desc: string(text),
		match: func(p plume.Payload) bool {
			if p.IsBinary() {
				return false
			}
			got, err := decodeJSON(p.Bytes())
			return err == nil && matchJSON(want, got)
		},
	}, nil
}

// predicate wraps a func(T) bool.
func predicate(f reflect.Value) (pattern, error) {
	ft := f.Type()
	if f.IsNil() || ft.NumIn() != 1 || ft.IsVariadic() || ft.NumOut() != 1 || ft.Out(0).Kind() != reflect.Bool {
		return pattern{}, fmt.Errorf("want %s: a predicate must be a non-nil func(T) bool", ft)
	}
	in := ft.In(0)
	return pattern{
		desc: ft.String(),
		match: func(p plume.Payload) bool {
			var arg reflect.Value
			switch {
			case in == payloadType:
				arg = reflect.ValueOf(p)
			case in == bytesType || in == binaryType:
				if !p.IsBinary() {
					return false
				}
				arg = reflect.ValueOf(p.Bytes()).Convert(in)
			default:
				if p.IsBinary() {
					return false
				}
				ptr := reflect.New(in)
				if json.Unmarshal(payloadText(p), ptr.Interface()) != nil {
					return false
				}
				arg = ptr.Elem()
			}
			return f.Call([]reflect.Value{arg})[0].Bool()
		},
	}, nil
}

func payloadText(p plume.Payload) []byte {
	if len(p.Bytes()) == 0 {
		return []byte("null")
	}
	return p.Bytes()
}

func decodeJSON(b []byte) (any, error) {
	if len(b) == 0 {
		b = []byte("null")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return v, nil
}

// matchJSON compares decoded JSON as an Elixir literal pattern matches: an
// object needs at least want's keys, everything else must be equal.
func matchJSON(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !matchJSON(wv, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !matchJSON(w[i], g[i]) {
				return false
			}
		}
		return true
	case json.Number:
		g, ok := got.(json.Number)
		if !ok {
			return false
		}
		if w == g {
			return true
		}
		// 1, 1.0 and 1e0 are the same number; compare exactly.
		wr, ok1 := new(big.Rat).SetString(string(w))
		gr, ok2 := new(big.Rat).SetString(string(g))
		return ok1 && ok2 && wr.Cmp(gr) == 0
	}
	return want == got
}
