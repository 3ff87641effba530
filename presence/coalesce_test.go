package presence

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"reflect"
	"testing"

	"github.com/plumehq/plume/pubsub"
)

func ent(key, ref string) *entry {
	return &entry{key: key, ref: ref, meta: map[string]any{"phx_ref": ref}}
}

func refsOf(es []*entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.key+"/"+e.ref)
	}
	return out
}

func TestCoalescer(t *testing.T) {
	a1, b1, b2, b3, c1, d1 := ent("a", "a1"), ent("b", "b1"), ent("b", "b2"), ent("b", "b3"), ent("c", "c1"), ent("d", "d1")
	for _, tc := range []struct {
		name         string
		diffs        []*rawDiff
		joins, leave []string
	}{
		{
			name:  "joins keep their order",
			diffs: []*rawDiff{diffOf([]*entry{c1}, nil), diffOf([]*entry{a1}, nil), diffOf([]*entry{b1}, nil)},
			joins: []string{"c/c1", "a/a1", "b/b1"},
		},
		{
			name:  "join then leave cancels",
			diffs: []*rawDiff{diffOf([]*entry{a1}, nil), diffOf([]*entry{c1}, nil), diffOf(nil, []*entry{a1})},
			joins: []string{"c/c1"},
		},
		{
			name: "updates of a meta sent before: leave the first, join the last",
			diffs: []*rawDiff{
				diffOf([]*entry{b2}, []*entry{b1}),
				diffOf([]*entry{b3}, []*entry{b2}),
			},
			joins: []string{"b/b3"},
			leave: []string{"b/b1"},
		},
		{
			name: "join and updates inside the window: only the last meta joins",
			diffs: []*rawDiff{
				diffOf([]*entry{b1}, nil),
				diffOf([]*entry{b2}, []*entry{b1}),
				diffOf([]*entry{b3}, []*entry{b2}),
			},
			joins: []string{"b/b3"},
		},
		{
			name: "join, update, leave inside the window: nothing",
			diffs: []*rawDiff{
				diffOf([]*entry{b1}, nil),
				diffOf([]*entry{b2}, []*entry{b1}),
				diffOf(nil, []*entry{b2}),
			},
		},
		{
			name:  "leave then join of the same meta (a replica down and up again) cancels",
			diffs: []*rawDiff{diffOf(nil, []*entry{a1, d1}), diffOf([]*entry{a1}, nil)},
			leave: []string{"d/d1"},
		},
		{
			name:  "join, leave, join again of the same meta: one join",
			diffs: []*rawDiff{diffOf([]*entry{a1}, nil), diffOf(nil, []*entry{a1}), diffOf([]*entry{a1}, nil)},
			joins: []string{"a/a1"},
		},
		{
			name: "leaves and joins of many keys",
			diffs: []*rawDiff{
				diffOf(nil, []*entry{a1}),
				diffOf([]*entry{c1}, nil),
				diffOf([]*entry{b2}, []*entry{b1}),
				diffOf([]*entry{d1}, nil),
			},
			joins: []string{"c/c1", "b/b2", "d/d1"},
			leave: []string{"a/a1", "b/b1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c coalescer
			for _, d := range tc.diffs {
				c.merge(d)
			}
			d := c.take()
			if tc.joins == nil && tc.leave == nil {
				if d != nil {
					t.Fatalf("want no diff, got joins %v leaves %v", refsOf(d.joins), refsOf(d.leaves))
				}
				return
			}
			if d == nil {
				t.Fatal("want a diff, got none")
			}
			if got := refsOf(d.joins); !reflect.DeepEqual(got, tc.joins) {
				t.Errorf("joins %v, want %v", got, tc.joins)
			}
			if got := refsOf(d.leaves); !reflect.DeepEqual(got, tc.leave) {
				t.Errorf("leaves %v, want %v", got, tc.leave)
			}
			if c.any() || c.take() != nil {
				t.Error("coalescer not reset by take")
			}
		})
	}
}

func TestApplyDiff(t *testing.T) {
	m := func(ref string) map[string]any { return map[string]any{"phx_ref": ref} }
	view := map[string]Presence{}
	applyDiff(view, Diff{Joins: map[string]Presence{"a": {Metas: []map[string]any{m("1")}}, "b": {Metas: []map[string]any{m("2")}}}})
	applyDiff(view, Diff{Joins: map[string]Presence{"a": {Metas: []map[string]any{m("3"), m("1")}}}})
	if len(view["a"].Metas) != 2 || view["a"].Metas[1]["phx_ref"] != "3" {
		t.Fatalf("a = %v", view["a"].Metas)
	}
	applyDiff(view, Diff{Leaves: map[string]Presence{"a": {Metas: []map[string]any{m("1")}}, "b": {Metas: []map[string]any{m("2")}}, "zz": {Metas: []map[string]any{m("9")}}}})
	if len(view) != 1 || len(view["a"].Metas) != 1 || view["a"].Metas[0]["phx_ref"] != "3" {
		t.Fatalf("view = %v", view)
	}
}

// TestShardIndexIsDeterministic: a topic maps to the same shard on every
// node, whatever the process, since replication pairs shard N of each.
func TestShardIndexIsDeterministic(t *testing.T) {
	a := NewWithPubSub(pubsub.NewLocal(), Options{Replication: Replication{Disabled: true}})
	b := NewWithPubSub(pubsub.NewLocal(), Options{Replication: Replication{Disabled: true}})
	defer a.Close()
	defer b.Close()
	seen := map[int]bool{}
	for i := 0; i < 1000; i++ {
		topic := fmt.Sprint("room:", i)
		if a.shardIndex(topic) != b.shardIndex(topic) {
			t.Fatalf("%s: shard %d on one tracker, %d on another", topic, a.shardIndex(topic), b.shardIndex(topic))
		}
		seen[a.shardIndex(topic)] = true
	}
	if len(seen) != 8 {
		t.Fatalf("1000 topics went to %d of 8 shards", len(seen))
	}
	// The hash is FNV-1a: it must never change, or nodes of different
	// versions would pair different topics during a rolling upgrade.
	h := fnv.New64a()
	h.Write([]byte("room:lobby"))
	if fnv1a("room:lobby") != h.Sum64() {
		t.Fatal("fnv1a differs from hash/fnv")
	}
}

func TestAppendMetaMatchesEncodingJSON(t *testing.T) {
	type named string
	metas := []map[string]any{
		nil,
		{},
		{"phx_ref": "GOxtQ6L3iTp6GgKc", "online_at": 1700000000, "status": "away"},
		{"f": 1.5, "small": 1e-7, "big": 1e21, "neg": -0.000001, "z": 0.0, "f32": float32(3.25), "i64": int64(-9007199254740993),
			"u": uint(7), "u64": uint64(1 << 63), "i32": int32(-5), "u32": uint32(5), "t": true, "n": nil},
		{"quote\"key": "tab\there\nnew \\ slash \x01 ctl", "uni": "héllo ☃ \u2028", "bad": "\xff"},
		{"nested": map[string]any{"a": []any{1, "two", 3.0, nil, map[string]any{"x": false}}}, "empty": []any{}, "nilslice": []any(nil)},
		{"named": named("n"), "strs": []string{"a", "b"}, "ints": map[string]int{"b": 2, "a": 1}, "raw": json.RawMessage(`{"k":1}`)},
	}
	for _, m := range metas {
		got, err := appendMeta(nil, m)
		if err != nil {
			t.Fatalf("%v: %v", m, err)
		}
		want, _ := json.Marshal(m)
		// encoding/json escapes HTML and we do not; neither string has any.
		if string(got) != string(want) {
			t.Errorf("\n got %s\nwant %s", got, want)
		}
	}
	if _, err := appendMeta(nil, map[string]any{"nan": math.NaN()}); err == nil {
		t.Error("NaN encoded")
	}
	got, _ := appendMeta(nil, map[string]any{"h": "<a&b>"})
	if string(got) != `{"h":"<a&b>"}` {
		t.Errorf("html: %s", got)
	}
}
