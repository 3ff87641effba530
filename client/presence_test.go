package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/plumehq/plume/internal/testenv"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/client"
	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/presence"
)

// ---- against Plume's presence package ----

type presenceRoom struct {
	tr   *presence.Tracker
	user string
}

type afterJoin struct{}

func (r *presenceRoom) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	r.user, _ = ch.Assigns["user"].(string)
	ch.Send(afterJoin{})
	return nil, nil
}

func (r *presenceRoom) HandleInfo(ch *plume.Channel, msg any) error {
	if _, ok := msg.(afterJoin); ok {
		if err := ch.Push(presence.StateEvent, r.tr.List(ch.Topic())); err != nil {
			return err
		}
		_, err := r.tr.Track(ch, r.user, map[string]any{"user": r.user})
		return err
	}
	return nil
}

func (r *presenceRoom) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	if event == "crash" {
		panic("crash requested by the test")
	}
	return plume.ReplyOK(nil), nil
}

// presenceLog records a Presence's callbacks.
type presenceLog struct {
	mu     sync.Mutex
	events []string
	syncs  int
}

func watch(p *client.Presence) *presenceLog {
	l := &presenceLog{}
	p.OnJoin(func(key string, cur, joined *client.PresenceEntry) {
		l.add(fmt.Sprintf("join %s %d+%d", key, metaCount(cur), len(joined.Metas)))
	})
	p.OnLeave(func(key string, cur, left *client.PresenceEntry) {
		l.add(fmt.Sprintf("leave %s %d-%d", key, len(cur.Metas), len(left.Metas)))
	})
	p.OnSync(func() { l.mu.Lock(); l.syncs++; l.mu.Unlock() })
	return l
}

func metaCount(e *client.PresenceEntry) int {
	if e == nil {
		return 0
	}
	return len(e.Metas)
}

func (l *presenceLog) add(s string) { l.mu.Lock(); l.events = append(l.events, s); l.mu.Unlock() }

func (l *presenceLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

func (l *presenceLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events = nil
	return e
}

func users(p *client.Presence) string {
	return strings.Join(client.ListBy(p, func(key string, e *client.PresenceEntry) string {
		return fmt.Sprintf("%s:%d", key, len(e.Metas))
	}), " ")
}

func TestPresenceWithPlume(t *testing.T) {
	leakcheck.Check(t)
	ep := plume.NewEndpoint(plume.Options{})
	tr := presence.New(ep, presence.Options{})
	sock := &plume.Socket{Connect: func(ctx context.Context, c *plume.Conn) error {
		c.Assign("user", c.Params.String("user"))
		return nil
	}}
	sock.Channel("room:*", func() plume.ChannelHandler { return &presenceRoom{tr: tr} })
	ep.Mount("/socket", sock)
	srv := httptest.NewServer(ep)
	t.Cleanup(func() { srv.Close(); tr.Close() })
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket"

	join := func(user string) (*client.Socket, *client.Channel, *client.Presence, *presenceLog) {
		s := newSocket(t, url, &client.Options{Params: func() map[string]any { return map[string]any{"user": user} }})
		if err := s.Connect(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		ch := s.Channel("room:lobby", nil)
		p := client.NewPresence(ch, nil)
		l := watch(p)
		if _, err := ch.Join(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		return s, ch, p, l
	}
	_, _, alice, alog := join("alice")
	waitFor(t, "alice sees herself", func() bool { return users(alice) == "alice:1" && alog.count() == 1 })
	if ev := alog.take(); !slices.Equal(ev, []string{"join alice 0+1"}) {
		t.Fatalf("alice events %v", ev)
	}

	bobSock, bobCh, bob, blog := join("bob")
	waitFor(t, "bob sees both", func() bool { return users(bob) == "alice:1 bob:1" && blog.count() == 2 })
	waitFor(t, "alice sees bob", func() bool { return users(alice) == "alice:1 bob:1" && alog.count() == 1 })
	if ev := blog.take(); !slices.Equal(ev, []string{"join alice 0+1", "join bob 0+1"}) {
		t.Fatalf("bob events %v", ev)
	}

	// A second tab of alice: one key, two metas.
	_, _, _, _ = join("alice")
	waitFor(t, "two alice metas", func() bool { return users(bob) == "alice:2 bob:1" })
	e, _ := bob.Get("alice")
	var meta struct{ User string }
	if err := e.Metas[1].Decode(&meta); err != nil || meta.User != "alice" || e.Metas[0].Ref == e.Metas[1].Ref {
		t.Fatalf("metas %+v", e.Metas)
	}

	// Bob's channel crashes: it rejoins with a new join ref and gets a new
	// state; alice sees bob leave and join again.
	alog.take()
	bobCh.Push(ctx50ms(t), "crash", nil)
	waitFor(t, "alice sees bob rejoin", func() bool {
		alog.mu.Lock()
		ev := strings.Join(alog.events, ",")
		alog.mu.Unlock()
		return strings.Contains(ev, "leave bob 0-1") && strings.Contains(ev, "join bob 0+1")
	})
	waitFor(t, "bob resynced", func() bool { return users(bob) == "alice:2 bob:1" })

	// Bob leaves for good.
	bobSock.Close()
	waitFor(t, "alice sees bob leave", func() bool { return users(alice) == "alice:2" })
}

// ---- diff buffering, with crafted frames ----

func TestPresenceBuffersDiffsUntilState(t *testing.T) {
	leakcheck.Check(t)
	rs := newRawServer(t)
	s := newSocket(t, rs.url(), nil)
	go s.Connect(context.Background())
	c := rs.accept()
	ch := s.Channel("room:p", nil)
	p := client.NewPresence(ch, nil)
	l := watch(p)
	go ch.Join(context.Background())
	j := c.nextEvent()
	jr := j[0].(string)
	c.send(fmt.Sprintf(`[%q,%q,"room:p","phx_reply",{"status":"ok","response":{}}]`, jr, jr))
	waitFor(t, "joined", func() bool { return ch.State() == client.StateJoined })

	meta := func(ref string) string { return fmt.Sprintf(`{"phx_ref":%q}`, ref) }
	entry := func(refs ...string) string {
		var ms []string
		for _, r := range refs {
			ms = append(ms, meta(r))
		}
		return `{"metas":[` + strings.Join(ms, ",") + `]}`
	}
	// A diff before the state waits for it.
	c.send(`[null,null,"room:p","presence_diff",{"joins":{"carol":` + entry("c1") + `},"leaves":{"bob":` + entry("b1") + `}}]`)
	time.Sleep(20 * time.Millisecond)
	l.mu.Lock()
	syncs := l.syncs
	l.mu.Unlock()
	if users(p) != "" || syncs != 0 {
		t.Fatalf("diff applied before the state: %q", users(p))
	}
	c.send(fmt.Sprintf(`[%q,null,"room:p","presence_state",{"bob":%s,"alice":%s,"10":%s,"2":%s}]`, jr, entry("b1", "b2"), entry("a1"), entry("t1"), entry("s1")))
	waitFor(t, "synced", func() bool { return users(p) == "2:1 10:1 bob:1 alice:1 carol:1" })
	if ev := l.take(); !slices.Equal(ev, []string{
		"join 2 0+1", "join 10 0+1", "join bob 0+2", "join alice 0+1", // state, in JS property order
		"join carol 0+1", "leave bob 1-1", // the buffered diff
	}) {
		t.Fatalf("events %v", ev)
	}
	if e, _ := p.Get("bob"); len(e.Metas) != 1 || e.Metas[0].Ref != "b2" {
		t.Fatalf("bob %+v", e)
	}

	// After the state, diffs apply at once.
	c.send(`[null,null,"room:p","presence_diff",{"joins":{"alice":` + entry("a2") + `},"leaves":{"10":` + entry("t1") + `}}]`)
	waitFor(t, "diff", func() bool { return users(p) == "2:1 bob:1 alice:2 carol:1" })

	// The channel errors and rejoins: diffs wait for the new join's state.
	c.send(fmt.Sprintf(`[%q,%q,"room:p","phx_error",{}]`, jr, jr))
	j2 := c.nextEvent()
	jr2 := j2[0].(string)
	c.send(fmt.Sprintf(`[%q,%q,"room:p","phx_reply",{"status":"ok","response":{}}]`, jr2, jr2))
	waitFor(t, "rejoined", func() bool { return ch.State() == client.StateJoined && ch.JoinRef() == jr2 })
	c.send(`[null,null,"room:p","presence_diff",{"joins":{"dave":` + entry("d1") + `},"leaves":{}}]`)
	time.Sleep(20 * time.Millisecond)
	if got := users(p); got != "2:1 bob:1 alice:2 carol:1" {
		t.Fatalf("diff applied before the new state: %s", got)
	}
	l.take()
	c.send(fmt.Sprintf(`[%q,null,"room:p","presence_state",{"alice":%s,"carol":%s}]`, jr2, entry("a2"), entry("c1")))
	waitFor(t, "resynced", func() bool { return users(p) == "alice:1 carol:1 dave:1" })
	if ev := l.take(); !slices.Equal(ev, []string{"leave 2 0-1", "leave bob 0-1", "leave alice 1-1", "join dave 0+1"}) {
		t.Fatalf("events %v", ev)
	}
}

// ---- SyncState and SyncDiff against phoenix.js itself ----

// TestPresenceSyncMatchesPhoenixJS runs random presence states and diffs
// through phoenix.js's Presence.syncState/syncDiff (under node) and through
// ours, and requires the same final state, key order and callbacks.
func TestPresenceSyncMatchesPhoenixJS(t *testing.T) {
	phoenix, err := filepath.Abs("../node_modules/phoenix/priv/static/phoenix.cjs.js")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		skipOrFail(t, "node is not installed")
	}
	if _, err := os.Stat(phoenix); err != nil {
		skipOrFail(t, "node_modules/phoenix is missing")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	type op struct {
		Kind  string          `json:"kind"`
		Value json.RawMessage `json:"value"`
	}
	type testCase struct {
		State json.RawMessage `json:"state"`
		Ops   []op            `json:"ops"`
	}
	cases := make([]testCase, 250)
	for i := range cases {
		cases[i].State = randomState(rng, 4)
		for range 1 + rng.IntN(5) {
			if rng.IntN(3) == 0 {
				cases[i].Ops = append(cases[i].Ops, op{"state", randomState(rng, 5)})
			} else {
				d := fmt.Sprintf(`{"joins":%s,"leaves":%s}`, randomState(rng, 3), randomState(rng, 3))
				cases[i].Ops = append(cases[i].Ops, op{"diff", json.RawMessage(d)})
			}
		}
	}
	input, _ := json.Marshal(cases)
	const script = `
const {Presence} = require(process.argv[1]);
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const snap = v => v === undefined ? null : JSON.parse(JSON.stringify(v));
const out = input.map(c => {
  const events = [];
  const onJoin = (key, cur, np) => events.push(["join", key, snap(cur), snap(np)]);
  const onLeave = (key, cur, lp) => events.push(["leave", key, snap(cur), snap(lp)]);
  let state = c.state;
  for (const op of c.ops) {
    state = op.kind === "state" ? Presence.syncState(state, op.value, onJoin, onLeave)
                                : Presence.syncDiff(state, op.value, onJoin, onLeave);
  }
  return {keys: Object.getOwnPropertyNames(state), state: snap(state), events};
});
process.stdout.write(JSON.stringify(out));
`
	cmd := exec.Command("node", "-e", script, phoenix)
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outJS, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var want []struct {
		Keys   []string
		State  map[string]any
		Events [][]any
	}
	if err := json.Unmarshal(outJS, &want); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		events := [][]any{}
		snap := func(e *client.PresenceEntry) any {
			if e == nil {
				return nil
			}
			b, _ := e.MarshalJSON()
			var v any
			json.Unmarshal(b, &v)
			return v
		}
		onJoin := func(key string, cur, np *client.PresenceEntry) {
			events = append(events, []any{"join", key, snap(cur), snap(np)})
		}
		onLeave := func(key string, cur, lp *client.PresenceEntry) {
			events = append(events, []any{"leave", key, snap(cur), snap(lp)})
		}
		state, err := client.ParsePresenceState(c.State)
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range c.Ops {
			if op.Kind == "state" {
				ns, err := client.ParsePresenceState(op.Value)
				if err != nil {
					t.Fatal(err)
				}
				state = client.SyncState(state, ns, onJoin, onLeave)
			} else {
				d, err := client.ParsePresenceDiff(op.Value)
				if err != nil {
					t.Fatal(err)
				}
				state = client.SyncDiff(state, d, onJoin, onLeave)
			}
		}
		b, _ := state.MarshalJSON()
		var gotState map[string]any
		json.Unmarshal(b, &gotState)
		w := want[i]
		if w.Keys == nil {
			w.Keys = []string{}
		}
		gotKeys := state.Keys()
		if gotKeys == nil {
			gotKeys = []string{}
		}
		if !slices.Equal(gotKeys, w.Keys) || !reflect.DeepEqual(gotState, w.State) || !reflect.DeepEqual(normalize(events), normalize(w.Events)) {
			cj, _ := json.Marshal(c)
			gotEv, _ := json.Marshal(events)
			wantEv, _ := json.Marshal(w.Events)
			t.Fatalf("case %d differs from phoenix.js\ninput %s\nkeys  %v\nwant  %v\nstate %s\nwant  %v\nevents %s\nwant   %s",
				i, cj, gotKeys, w.Keys, b, w.State, gotEv, wantEv)
		}
	}
}

// normalize round-trips through JSON so both sides compare as plain values.
func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	json.Unmarshal(b, &out)
	return out
}

// randomState makes a presence object whose keys and phx_refs collide often,
// with index-like keys, keys JavaScript treats specially, duplicate refs
// and extra fields.
func randomState(rng *rand.Rand, maxKeys int) json.RawMessage {
	keys := []string{"alice", "bob", "0", "7", "10", "01", "-1", "4294967295", "constructor", "__proto__", "toString"}
	refs := []string{"r1", "r2", "r3", "r4"}
	var parts []string
	used := map[string]bool{}
	for range rng.IntN(maxKeys + 1) {
		k := keys[rng.IntN(len(keys))]
		if used[k] {
			continue
		}
		used[k] = true
		var metas []string
		for range rng.IntN(3) + 1 {
			metas = append(metas, fmt.Sprintf(`{"phx_ref":%q,"n":%d}`, refs[rng.IntN(len(refs))], rng.IntN(3)))
		}
		extra := ""
		if rng.IntN(4) == 0 {
			extra = fmt.Sprintf(`,"user":{"id":%d}`, rng.IntN(5))
		}
		parts = append(parts, fmt.Sprintf(`%q:{"metas":[%s]%s}`, k, strings.Join(metas, ","), extra))
	}
	return json.RawMessage("{" + strings.Join(parts, ",") + "}")
}

func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	testenv.SkipOrFail(t, reason)
}
