package plume_test

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/plumehq/plume"
)

type (
	pm = map[string]any
	pl = []any
)

// TestParseParams follows Plug.Conn.Query.decode, which Phoenix uses for
// socket params; most cases come from Plug's own test suite.
func TestParseParams(t *testing.T) {
	cases := []struct {
		query string
		want  plume.Params
	}{
		{"", plume.Params{}},
		{"foo=bar&baz=bat", plume.Params{"foo": "bar", "baz": "bat"}},
		{"users[name]=hello&users[age]=17&users[address][street]=foo",
			plume.Params{"users": pm{"name": "hello", "age": "17", "address": pm{"street": "foo"}}}},
		{"my+weird+field=q1%212%22%27w%245%267%2Fz8%29%3F", plume.Params{"my weird field": "q1!2\"'w$5&7/z8)?"}},
		{"a%5Bb%5D=1", plume.Params{"a": pm{"b": "1"}}}, // keys are decoded before they are split
		{"=", plume.Params{"": ""}},
		{"key", plume.Params{"key": ""}},
		{"key=", plume.Params{"key": ""}},
		{"=value", plume.Params{"": "value"}},
		{"a=b=c", plume.Params{"a": "b=c"}},
		{"&x=1&&y=2&", plume.Params{"x": "1", "y": "2"}},
		// last value wins
		{"foo=bar&foo=baz", plume.Params{"foo": "baz"}},
		{"a[b]=1&a[c]=2&a[b]=3", plume.Params{"a": pm{"b": "3", "c": "2"}}},
		// lists
		{"foo[]", plume.Params{"foo": pl{""}}},
		{"foo[]=", plume.Params{"foo": pl{""}}},
		{"foo[]=bar&foo[]=baz", plume.Params{"foo": pl{"bar", "baz"}}},
		{"foo[]=bar&foo[]=baz&bat[]=1&bat[]=2", plume.Params{"foo": pl{"bar", "baz"}, "bat": pl{"1", "2"}}},
		{"a[]=1&b=2&a[]=3", plume.Params{"a": pl{"1", "3"}, "b": "2"}},
		// nesting
		{"x[y][z]=1", plume.Params{"x": pm{"y": pm{"z": "1"}}}},
		{"x[y][z][]=1", plume.Params{"x": pm{"y": pm{"z": pl{"1"}}}}},
		{"x[y][z]=1&x[y][z]=2", plume.Params{"x": pm{"y": pm{"z": "2"}}}},
		{"x[y][z][]=1&x[y][z][]=2", plume.Params{"x": pm{"y": pm{"z": pl{"1", "2"}}}}},
		{"x[y][][z]=1", plume.Params{"x": pm{"y": pl{pm{"z": "1"}}}}},
		{"x[y][][z][]=1", plume.Params{"x": pm{"y": pl{pm{"z": pl{"1"}}}}}},
		{"x[][][]=1", plume.Params{"x": pl{pl{pl{"1"}}}}},
		{"a[][b]=1&a[][c]=2", plume.Params{"a": pl{pm{"b": "1", "c": "2"}}}},
		// "last always wins on bad queries"
		{"x[]=1&x[y]=1", plume.Params{"x": pm{"y": "1"}}},
		{"x[y][][w]=2&x[y]=1", plume.Params{"x": pm{"y": "1"}}},
		{"x=1&x[y]=1", plume.Params{"x": pm{"y": "1"}}},
		{"x[y]=1&x=1", plume.Params{"x": "1"}},
		{"x[y][0][w]=2&x[y]=1", plume.Params{"x": pm{"y": "1"}}},
		{"x[y]=1&x[]=2", plume.Params{"x": pl{"2"}}},
		// Key shapes: a key is nested only if it ends in "]" and its first
		// "[" is not its first byte; the part after that "[" is split on "][".
		{"[a]=1", plume.Params{"[a]": "1"}},
		{"[]=1", plume.Params{"[]": "1"}},
		{"a[b=1", plume.Params{"a[b": "1"}},
		{"a]=1", plume.Params{"a]": "1"}},
		{"a[b]c=1", plume.Params{"a[b]c": "1"}},
		{"a[b][c=1", plume.Params{"a[b][c": "1"}},
		{"a[b][=1", plume.Params{"a[b][": "1"}},
		{"a[b]c]=1", plume.Params{"a": pm{"b]c": "1"}}},
		{"a[b]x[c]=1", plume.Params{"a": pm{"b]x[c": "1"}}},
		{"a[[b]]=1", plume.Params{"a": pm{"[b]": "1"}}},
		{"a[b]]=1", plume.Params{"a": pm{"b]": "1"}}},
		{"a[b]][c]=1", plume.Params{"a": pm{"b]": pm{"c": "1"}}}},
		{"a[]b[]=1", plume.Params{"a": pm{"]b[": "1"}}},
		{"a[ b ]=1", plume.Params{"a": pm{" b ": "1"}}},
		// phoenix.js params next to vsn
		{"token=abc.def&user_id=42&vsn=2.0.0", plume.Params{"token": "abc.def", "user_id": "42", "vsn": "2.0.0"}},
		// A pair that does not decode is skipped (Plug raises, a 400).
		{"a=%zz&b=1", plume.Params{"b": "1"}},
		{"%zz=1&b=1", plume.Params{"b": "1"}},
		{"a=%E2%82%AC", plume.Params{"a": "€"}},
	}
	for _, tc := range cases {
		got := plume.ParseParams(tc.query)
		if !reflect.DeepEqual(got, tc.want) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(tc.want)
			t.Errorf("ParseParams(%q)\n got %s %#v\nwant %s", tc.query, gj, got, wj)
		}
	}
}

func TestParseParamsDepth(t *testing.T) {
	deep := func(n int) string { return "a" + strings.Repeat("[b]", n) + "=1" }
	p := plume.ParseParams(deep(32) + "&c=2")
	v := any(p["a"])
	for i := 0; i < 32; i++ {
		mm, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("level %d is %#v", i, v)
		}
		v = mm["b"]
	}
	if v != "1" || p["c"] != "2" {
		t.Fatalf("32 levels: leaf %#v, c %#v", v, p["c"])
	}
	// Deeper keys are dropped whole.
	p = plume.ParseParams(deep(33) + "&c=2")
	if want := (plume.Params{"c": "2"}); !reflect.DeepEqual(p, want) {
		t.Fatalf("33 levels: %#v, want %#v", p, want)
	}
	p = plume.ParseParams(deep(10000))
	if len(p) != 0 {
		t.Fatalf("10000 levels: %#v", p)
	}
}

func TestParamsString(t *testing.T) {
	p := plume.ParseParams("a=1&b[c]=2&d[]=3")
	if p.String("a") != "1" || p.String("b") != "" || p.String("d") != "" || p.String("missing") != "" {
		t.Fatalf("String: %q %q %q %q", p.String("a"), p.String("b"), p.String("d"), p.String("missing"))
	}
}

// FuzzParseParams checks that any query parses without panicking into JSON
// that can be sent back, of bounded depth, and that plain keys agree with
// net/url.
func FuzzParseParams(f *testing.F) {
	for _, s := range []string{
		"", "a=1", "a[b]=1&a[c][]=2", "a[]=1&a[]=2", "x[][][]=1", "a[][b]=1&a[][b]=2&a[][c]=3",
		"x[y]=1&x=1&x[z]=2", "a%5Bb%5D=%zz", "[a]=1&a[=2&a]]=3", "a[b]][c]=1", "=&&=&",
		"a" + strings.Repeat("[]", 40) + "=1", "vsn=2.0.0&token=x+y%20z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		p := plume.ParseParams(q)
		if _, err := json.Marshal(p); err != nil {
			t.Fatalf("ParseParams(%q) does not encode: %v", q, err)
		}
		if d := paramDepth(p, 0); d > 34 {
			t.Fatalf("ParseParams(%q) is %d deep", q, d)
		}
		// A key without brackets that is present in net/url's parse has
		// its last value, unless a nested key of the same name came later.
		vals, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		for k, vs := range vals {
			if strings.ContainsAny(k, "[]") {
				continue
			}
			laterNested := false
			for k2 := range vals {
				if strings.HasPrefix(k2, k+"[") {
					laterNested = true
				}
			}
			if !laterNested && p[k] != vs[len(vs)-1] {
				t.Fatalf("ParseParams(%q)[%q] = %#v, want %q", q, k, p[k], vs[len(vs)-1])
			}
		}
	})
}

func paramDepth(v any, d int) int {
	max := d
	switch v := v.(type) {
	case plume.Params:
		for _, x := range v {
			if n := paramDepth(x, d+1); n > max {
				max = n
			}
		}
	case map[string]any:
		for _, x := range v {
			if n := paramDepth(x, d+1); n > max {
				max = n
			}
		}
	case []any:
		for _, x := range v {
			if n := paramDepth(x, d+1); n > max {
				max = n
			}
		}
	}
	return max
}
