package presence_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/presence"
)

func newTracker(t *testing.T, opts presence.Options) (*presence.Tracker, *plume.Endpoint) {
	t.Helper()
	ep := plume.NewEndpoint(plume.Options{})
	tr := presence.New(ep, opts)
	t.Cleanup(func() { tr.Close() })
	return tr, ep
}

func track(t *testing.T, tr *presence.Tracker, owner any, topic, key string, meta map[string]any) string {
	t.Helper()
	ref, err := tr.TrackOwner(owner, topic, key, meta)
	if err != nil {
		t.Fatalf("track %v %s %s: %v", owner, topic, key, err)
	}
	return ref
}

func TestRefFormat(t *testing.T) {
	leakcheck.Check(t)
	tr, _ := newTracker(t, presence.Options{})
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		before := time.Now()
		ref := track(t, tr, i, "room:1", "k", nil)
		if len(ref) != 16 {
			t.Fatalf("ref %q has %d chars, want 16", ref, len(ref))
		}
		b, err := base64.URLEncoding.DecodeString(ref)
		if err != nil || len(b) != 12 {
			t.Fatalf("ref %q: %d bytes, %v", ref, len(b), err)
		}
		ns := int64(binary.BigEndian.Uint64(b))
		if ns < before.UnixNano() || ns > time.Now().UnixNano() {
			t.Fatalf("ref %q time %d not in [%d, now]", ref, ns, before.UnixNano())
		}
		if seen[ref] {
			t.Fatalf("duplicate ref %q", ref)
		}
		seen[ref] = true
	}
}

func TestTrackListGetByKey(t *testing.T) {
	leakcheck.Check(t)
	tr, _ := newTracker(t, presence.Options{})
	meta := map[string]any{"status": "online"}
	r1 := track(t, tr, "tab1", "room:1", "alice", meta)
	r2 := track(t, tr, "tab2", "room:1", "alice", map[string]any{"status": "away"})
	r3 := track(t, tr, "tab1", "room:1", "bob", nil)
	track(t, tr, "tab1", "room:2", "carol", nil)
	if _, ok := meta["phx_ref"]; ok {
		t.Fatal("Track modified the caller's meta")
	}

	l := tr.List("room:1")
	if len(l) != 2 {
		t.Fatalf("list has %d keys: %v", len(l), l)
	}
	alice := l["alice"]
	if len(alice.Metas) != 2 || alice.Metas[0]["phx_ref"] != r1 || alice.Metas[1]["phx_ref"] != r2 ||
		alice.Metas[0]["status"] != "online" || alice.Metas[1]["status"] != "away" {
		t.Fatalf("alice = %v", alice.Metas)
	}
	if b := l["bob"]; len(b.Metas) != 1 || b.Metas[0]["phx_ref"] != r3 || len(b.Metas[0]) != 1 {
		t.Fatalf("bob = %v", b.Metas)
	}
	// The caller owns the map.
	delete(l, "alice")
	if len(tr.List("room:1")) != 2 {
		t.Fatal("List returned the tracker's own map")
	}

	p, ok := tr.GetByKey("room:1", "alice")
	if !ok || len(p.Metas) != 2 || p.Metas[1]["phx_ref"] != r2 {
		t.Fatalf("GetByKey alice = %v, %v", p, ok)
	}
	if p, ok := tr.GetByKey("room:1", "carol"); ok || p.Metas != nil {
		t.Fatalf("GetByKey carol on room:1 = %v, %v", p, ok)
	}
	if _, ok := tr.GetByKey("room:9", "x"); ok {
		t.Fatal("GetByKey on an unknown topic found something")
	}
	if l := tr.List("room:9"); l == nil || len(l) != 0 {
		t.Fatalf("List of an unknown topic = %#v", l)
	}

	// JSON is the shape phoenix.js reads.
	b, _ := json.Marshal(tr.List("room:1")["bob"])
	if want := `{"metas":[{"phx_ref":"` + r3 + `"}]}`; string(b) != want {
		t.Fatalf("json %s, want %s", b, want)
	}

	// The key leaves with its last meta.
	tr.UntrackOwner("tab1", "room:1", "alice")
	if p, _ := tr.GetByKey("room:1", "alice"); len(p.Metas) != 1 || p.Metas[0]["phx_ref"] != r2 {
		t.Fatalf("alice after one untrack = %v", p.Metas)
	}
	tr.UntrackOwner("tab2", "room:1", "alice")
	if _, ok := tr.GetByKey("room:1", "alice"); ok {
		t.Fatal("alice still present")
	}
	tr.UntrackOwner("tab2", "room:1", "alice") // not tracked: nothing happens
	tr.UntrackOwner("nobody", "room:1", "bob")
	if len(tr.List("room:1")) != 1 {
		t.Fatal("untracking what is not tracked changed the list")
	}
}

func TestAlreadyTracked(t *testing.T) {
	leakcheck.Check(t)
	tr, _ := newTracker(t, presence.Options{})
	track(t, tr, "o", "room:1", "k", nil)
	_, err := tr.TrackOwner("o", "room:1", "k", nil)
	if !errors.Is(err, presence.ErrAlreadyTracked) {
		t.Fatalf("second track: %v", err)
	}
	track(t, tr, "o", "room:2", "k", nil)
	track(t, tr, "o", "room:1", "k2", nil)
	track(t, tr, "o2", "room:1", "k", nil)
	if p, _ := tr.GetByKey("room:1", "k"); len(p.Metas) != 2 {
		t.Fatalf("k has %d metas", len(p.Metas))
	}
	// After untracking, the same presence may be tracked again.
	tr.UntrackOwner("o", "room:1", "k")
	track(t, tr, "o", "room:1", "k", nil)
}

func TestUpdate(t *testing.T) {
	leakcheck.Check(t)
	tr, ep := newTracker(t, presence.Options{})
	rec := record(t, ep.PubSub(), "room:1")
	r1 := track(t, tr, "o", "room:1", "alice", map[string]any{"status": "online", "device": "phone"})
	rec.wait(1)

	r2, err := tr.UpdateOwner("o", "room:1", "alice", map[string]any{"status": "away"})
	if err != nil {
		t.Fatal(err)
	}
	if r2 == r1 || len(r2) != 16 {
		t.Fatalf("new ref %q (old %q)", r2, r1)
	}
	want := map[string]any{"status": "away", "phx_ref": r2, "phx_ref_prev": r1}
	p, _ := tr.GetByKey("room:1", "alice")
	if len(p.Metas) != 1 || !reflect.DeepEqual(p.Metas[0], want) {
		t.Fatalf("after update: %v, want %v", p.Metas, want)
	}
	d := rec.wait(2)[1]
	if len(d.Joins) != 1 || len(d.Leaves) != 1 ||
		!reflect.DeepEqual(d.Joins["alice"].Metas, []map[string]any{want}) ||
		d.Leaves["alice"].Metas[0]["phx_ref"] != r1 || d.Leaves["alice"].Metas[0]["device"] != "phone" {
		t.Fatalf("update diff = %+v", d)
	}

	var got map[string]any
	r3, err := tr.UpdateOwnerFunc("o", "room:1", "alice", func(m map[string]any) map[string]any {
		got = map[string]any{"phx_ref": m["phx_ref"], "phx_ref_prev": m["phx_ref_prev"]}
		m["status"] = "busy"
		m["phx_ref"] = "overwritten anyway"
		return m
	})
	if err != nil {
		t.Fatal(err)
	}
	if got["phx_ref"] != r2 || got["phx_ref_prev"] != r1 {
		t.Fatalf("func got %v", got)
	}
	p, _ = tr.GetByKey("room:1", "alice")
	if m := p.Metas[0]; m["status"] != "busy" || m["phx_ref"] != r3 || m["phx_ref_prev"] != r2 {
		t.Fatalf("after func update: %v", m)
	}

	if _, err := tr.UpdateOwner("o", "room:1", "bob", nil); !errors.Is(err, presence.ErrNoPresence) {
		t.Fatalf("update of an untracked key: %v", err)
	}
	if _, err := tr.UpdateOwner("nobody", "room:1", "alice", nil); !errors.Is(err, presence.ErrNoPresence) {
		t.Fatalf("update of an unknown owner: %v", err)
	}
	if _, err := tr.UpdateOwner("o", "room:2", "alice", nil); !errors.Is(err, presence.ErrNoPresence) {
		t.Fatalf("update on another topic: %v", err)
	}
}

func TestDiffs(t *testing.T) {
	leakcheck.Check(t)
	tr, ep := newTracker(t, presence.Options{})
	rec := record(t, ep.PubSub(), "room:1")
	rec2 := record(t, ep.PubSub(), "room:2")
	r1 := track(t, tr, "o", "room:1", "alice", map[string]any{"n": 1})
	rec.wait(1)
	if want := `{"joins":{"alice":{"metas":[{"n":1,"phx_ref":"` + r1 + `"}]}},"leaves":{}}`; string(rec.raw[0]) != want {
		t.Fatalf("join diff\n got %s\nwant %s", rec.raw[0], want)
	}
	r2 := track(t, tr, "o", "room:1", "bob", nil)
	r3 := track(t, tr, "o", "room:2", "bob", nil)
	track(t, tr, "o2", "room:1", "carol", nil)
	tr.UntrackOwner("o", "room:1", "alice")
	rec.wait(4)
	if want := `{"joins":{},"leaves":{"alice":{"metas":[{"n":1,"phx_ref":"` + r1 + `"}]}}}`; string(rec.raw[3]) != want {
		t.Fatalf("leave diff\n got %s\nwant %s", rec.raw[3], want)
	}

	// UntrackAll sends one diff per topic with all of the owner's leaves.
	track(t, tr, "o", "room:1", "dave", nil)
	rec.wait(5)
	tr.UntrackAll("o")
	d := rec.wait(6)[5]
	if len(d.Joins) != 0 || len(d.Leaves) != 2 || d.Leaves["bob"].Metas[0]["phx_ref"] != r2 || len(d.Leaves["dave"].Metas) != 1 {
		t.Fatalf("untrack all diff on room:1: %+v", d)
	}
	d2 := rec2.wait(2)[1]
	if len(d2.Leaves) != 1 || d2.Leaves["bob"].Metas[0]["phx_ref"] != r3 {
		t.Fatalf("untrack all diff on room:2: %+v", d2)
	}
	if l := tr.List("room:1"); len(l) != 1 || len(l["carol"].Metas) != 1 {
		t.Fatalf("after untrack all: %v", l)
	}
	if n := rec.count(); n != 6 {
		t.Fatalf("%d diffs on room:1, want 6", n)
	}
}

// TestRandomOpsMatchModel runs random tracks, untracks and updates on a few
// topics and checks that a client applying the diffs the phoenix.js way
// ends with exactly the server's list, with and without coalescing.
func TestRandomOpsMatchModel(t *testing.T) {
	for _, window := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond, time.Hour} {
		t.Run(fmt.Sprint("window=", window), func(t *testing.T) {
			leakcheck.Check(t)
			ep := plume.NewEndpoint(plume.Options{})
			tr := presence.New(ep, presence.Options{CoalesceWindow: window})
			topics := []string{"t:0", "t:1", "t:2"}
			recs := map[string]*recorder{}
			for _, topic := range topics {
				recs[topic] = record(t, ep.PubSub(), topic)
			}
			var wg sync.WaitGroup
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					rng := rand.New(rand.NewSource(int64(w)))
					for i := 0; i < 500; i++ {
						owner := fmt.Sprintf("w%d-o%d", w, rng.Intn(5))
						topic := topics[rng.Intn(len(topics))]
						key := fmt.Sprintf("k%d", rng.Intn(4))
						switch op := rng.Intn(10); {
						case op < 4:
							tr.TrackOwner(owner, topic, key, map[string]any{"i": i})
						case op < 6:
							tr.UntrackOwner(owner, topic, key)
						case op < 9:
							tr.UpdateOwner(owner, topic, key, map[string]any{"i": i, "u": true})
						default:
							tr.UntrackAll(owner)
						}
						if i%50 == 0 {
							time.Sleep(time.Millisecond)
						}
					}
				}(w)
			}
			wg.Wait()
			tr.Close() // sends what is pending
			for _, topic := range topics {
				m := model{}
				for _, d := range recs[topic].wait(0) {
					m.apply(d)
				}
				want := listRefs(tr.List(topic))
				if got := modelRefs(m); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: client state %v\nserver list %v", topic, got, want)
				}
			}
		})
	}
}

func TestFetch(t *testing.T) {
	leakcheck.Check(t)
	var calls sync.Map
	tr, ep := newTracker(t, presence.Options{
		Fetch: func(topic string, ps map[string]presence.Presence) map[string]presence.Presence {
			calls.Store(topic, true)
			for k, p := range ps {
				p.Extra = map[string]any{"user": map[string]any{"name": strings.ToUpper(k)}}
				ps[k] = p
			}
			return ps
		},
	})
	rec := record(t, ep.PubSub(), "room:1")
	r1 := track(t, tr, "o", "room:1", "alice", nil)
	l := tr.List("room:1")
	b, _ := json.Marshal(l)
	if want := `{"alice":{"metas":[{"phx_ref":"` + r1 + `"}],"user":{"name":"ALICE"}}}`; string(b) != want {
		t.Fatalf("list %s, want %s", b, want)
	}
	p, ok := tr.GetByKey("room:1", "alice")
	if !ok || p.Extra["user"].(map[string]any)["name"] != "ALICE" || len(p.Metas) != 1 {
		t.Fatalf("GetByKey = %+v", p)
	}
	tr.UntrackOwner("o", "room:1", "alice")
	rec.wait(2)
	if want := `{"joins":{"alice":{"metas":[{"phx_ref":"` + r1 + `"}],"user":{"name":"ALICE"}}},"leaves":{}}`; string(rec.raw[0]) != want {
		t.Fatalf("join diff %s, want %s", rec.raw[0], want)
	}
	if want := `{"joins":{},"leaves":{"alice":{"metas":[{"phx_ref":"` + r1 + `"}],"user":{"name":"ALICE"}}}}`; string(rec.raw[1]) != want {
		t.Fatalf("leave diff %s, want %s", rec.raw[1], want)
	}
}

func TestFetchThatDropsMetasOrPanics(t *testing.T) {
	leakcheck.Check(t)
	var panicking sync.Map
	tr, ep := newTracker(t, presence.Options{
		Fetch: func(topic string, ps map[string]presence.Presence) map[string]presence.Presence {
			if _, ok := panicking.Load(topic); ok {
				panic("fetch failed")
			}
			out := map[string]presence.Presence{}
			for k := range ps {
				out[k] = presence.Presence{Extra: map[string]any{"x": 1}}
			}
			return out
		},
	})
	track(t, tr, "o", "room:1", "alice", nil)
	if p := tr.List("room:1")["alice"]; len(p.Metas) != 1 || p.Extra["x"] != 1 {
		t.Fatalf("metas not kept: %+v", p)
	}
	// A panic on a diff goroutine is logged and the diff goes out unfetched.
	panicking.Store("room:2", true)
	rec := record(t, ep.PubSub(), "room:2")
	r := track(t, tr, "o", "room:2", "bob", nil)
	if d := rec.wait(1)[0]; d.Joins["bob"].Metas[0]["phx_ref"] != r {
		t.Fatalf("diff after fetch panic: %+v", d)
	}
}

func TestHandleMetas(t *testing.T) {
	leakcheck.Check(t)
	type call struct {
		topic string
		diff  presence.Diff
		state map[string]string
	}
	var mu sync.Mutex
	var calls []call
	tr, _ := newTracker(t, presence.Options{
		Fetch: func(topic string, ps map[string]presence.Presence) map[string]presence.Presence {
			for k, p := range ps {
				p.Extra = map[string]any{"fetched": true}
				ps[k] = p
			}
			return ps
		},
		HandleMetas: func(topic string, d presence.Diff, ps map[string]presence.Presence) {
			mu.Lock()
			calls = append(calls, call{topic, d, listRefs(ps)})
			mu.Unlock()
		},
	})
	// No subscriber on the topic: HandleMetas still hears every diff.
	ra := track(t, tr, "o1", "room:1", "alice", nil)
	ra2 := track(t, tr, "o2", "room:1", "alice", nil)
	rb := track(t, tr, "o1", "room:1", "bob", nil)
	ra3, _ := tr.UpdateOwner("o1", "room:1", "alice", map[string]any{"s": 1})
	tr.UntrackOwner("o1", "room:1", "bob")
	eventually(t, "5 handle_metas calls", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) == 5
	})
	mu.Lock()
	defer mu.Unlock()
	wantStates := []map[string]string{
		{"alice": ra},
		{"alice": sorted(ra, ra2)},
		{"alice": sorted(ra, ra2), "bob": rb},
		{"alice": sorted(ra2, ra3), "bob": rb},
		{"alice": sorted(ra2, ra3)},
	}
	for i, c := range calls {
		if c.topic != "room:1" || !reflect.DeepEqual(c.state, wantStates[i]) {
			t.Errorf("call %d: topic %s state %v, want %v", i, c.topic, c.state, wantStates[i])
		}
	}
	if d := calls[3].diff; d.Joins["alice"].Metas[0]["phx_ref"] != ra3 || d.Leaves["alice"].Metas[0]["phx_ref"] != ra ||
		d.Joins["alice"].Extra["fetched"] != true {
		t.Errorf("update diff %+v", d)
	}
}

func sorted(s ...string) string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return strings.Join(s, ",")
}

// TestCoalesce checks what one coalesced diff holds. The window is an hour
// so that the test does not depend on timing: Close sends what is pending.
func TestCoalesce(t *testing.T) {
	leakcheck.Check(t)
	ep := plume.NewEndpoint(plume.Options{})
	tr := presence.New(ep, presence.Options{CoalesceWindow: time.Hour})
	rec := record(t, ep.PubSub(), "room:1")
	ra := track(t, tr, "a", "room:1", "alice", nil)
	rb := track(t, tr, "b", "room:1", "bob", nil)
	track(t, tr, "c", "room:1", "carol", nil)
	ra2, _ := tr.UpdateOwner("a", "room:1", "alice", map[string]any{"s": 2})
	ra3, _ := tr.UpdateOwner("a", "room:1", "alice", map[string]any{"s": 3})
	tr.UntrackOwner("c", "room:1", "carol")
	track(t, tr, "b2", "room:1", "bob", nil)
	if n := rec.count(); n != 0 {
		t.Fatalf("%d diffs sent inside the window", n)
	}
	tr.Close()
	ds := rec.wait(1)
	if len(ds) != 1 {
		t.Fatalf("%d diffs, want 1", len(ds))
	}
	d := ds[0]
	// alice joined and was updated twice: only her last meta joins. carol
	// joined and left: she is not in the diff at all.
	if len(d.Leaves) != 0 || len(d.Joins) != 2 || len(d.Joins["alice"].Metas) != 1 ||
		d.Joins["alice"].Metas[0]["phx_ref"] != ra3 || d.Joins["alice"].Metas[0]["phx_ref_prev"] != ra2 ||
		len(d.Joins["bob"].Metas) != 2 || d.Joins["bob"].Metas[0]["phx_ref"] != rb {
		t.Fatalf("coalesced diff: %s", rec.raw[0])
	}
	_ = ra
}

// TestCoalesceWindowEnds checks that a window ends by itself, and that a
// meta that joins and leaves within it sends nothing.
func TestCoalesceWindowEnds(t *testing.T) {
	leakcheck.Check(t)
	tr, ep := newTracker(t, presence.Options{CoalesceWindow: 5 * time.Millisecond})
	rec := record(t, ep.PubSub(), "room:1")
	r := track(t, tr, "a", "room:1", "alice", nil)
	d := rec.wait(1)[0]
	if d.Joins["alice"].Metas[0]["phx_ref"] != r {
		t.Fatalf("diff %+v", d)
	}
	// Leaves of presences that were sent before are sent.
	tr.UntrackAll("a")
	if d := rec.wait(2)[1]; d.Leaves["alice"].Metas[0]["phx_ref"] != r {
		t.Fatalf("diff %+v", d)
	}
}

func TestClose(t *testing.T) {
	leakcheck.Check(t)
	ep := plume.NewEndpoint(plume.Options{})
	tr := presence.New(ep, presence.Options{CoalesceWindow: time.Hour})
	track(t, tr, "o", "room:1", "alice", nil)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.TrackOwner("o", "room:1", "bob", nil); !errors.Is(err, presence.ErrClosed) {
		t.Fatalf("track after close: %v", err)
	}
	if _, err := tr.UpdateOwner("o", "room:1", "alice", nil); !errors.Is(err, presence.ErrClosed) {
		t.Fatalf("update after close: %v", err)
	}
	tr.UntrackOwner("o", "room:1", "alice")
	tr.UntrackAll("o")
	if len(tr.List("room:1")) != 1 {
		t.Fatal("state changed after close")
	}
}

// TestJoinStormDoesNotStallOtherTopics tracks 10,000 presences into one
// topic in a burst, with that topic's diffs held up behind a slow
// HandleMetas, while another topic is tracked, listed and updated. The
// other topic's operations and diffs must not wait for the storm.
func TestJoinStormDoesNotStallOtherTopics(t *testing.T) {
	leakcheck.Check(t)
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	defer release()
	tr, ep := newTracker(t, presence.Options{
		HandleMetas: func(topic string, _ presence.Diff, _ map[string]presence.Presence) {
			if topic == "room:A" {
				<-gate
			}
		},
	})
	recA := record(t, ep.PubSub(), "room:A")
	recB := record(t, ep.PubSub(), "room:B")
	const storm, workers = 10000, 4
	stormDone := make(chan struct{})
	go func() {
		defer close(stormDone)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < storm; i += workers {
					key := fmt.Sprint("user", i)
					if _, err := tr.TrackOwner(key, "room:A", key, map[string]any{"i": i}); err != nil {
						t.Error(err)
						return
					}
				}
			}(w)
		}
		wg.Wait()
	}()

	t0 := time.Now()
	const rounds = 50
	var slowest time.Duration
	for i := 0; i < rounds; i++ {
		start := time.Now()
		key := fmt.Sprint("b", i)
		track(t, tr, key, "room:B", key, nil)
		if len(tr.List("room:B")) != i+1 {
			t.Fatalf("room:B list has %d keys, want %d", len(tr.List("room:B")), i+1)
		}
		tr.List("room:A")
		tr.GetByKey("room:A", "user1")
		if _, err := tr.UpdateOwner(key, "room:B", key, map[string]any{"u": i}); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(start))
	}
	// Generous: a stall behind the storm would be seconds, or forever
	// since room:A's diffs are blocked.
	if slowest > 2*time.Second {
		t.Fatalf("slowest room:B round took %v during the storm", slowest)
	}
	// room:B's diffs went out while room:A's are still held up.
	recB.wait(2 * rounds)
	if recA.count() > 1 {
		t.Fatalf("room:A sent %d diffs through a blocked HandleMetas", recA.count())
	}
	select {
	case <-stormDone:
	case <-time.After(30 * time.Second):
		t.Fatal("storm did not finish")
	}
	t.Logf("storm done %v", time.Since(t0))
	if n := len(tr.List("room:A")); n != storm {
		t.Fatalf("room:A has %d presences, want %d", n, storm)
	}
	release()
	ds := recA.wait(storm)
	t.Logf("diffs done %v", time.Since(t0))
	m := model{}
	for _, d := range ds {
		m.apply(d)
	}
	if got, want := modelRefs(m), listRefs(tr.List("room:A")); !reflect.DeepEqual(got, want) {
		t.Fatalf("room:A client state differs from the list (%d vs %d keys)", len(got), len(want))
	}
	t.Logf("slowest room:B round during the storm: %v", slowest)
}
