package presence_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/presence"
)

// These tests drive the real runtime over WebSockets: a "room:*" channel
// pushes presence_state after join and tracks its user (helpers_test.go).

func onlyJoin(t *testing.T, d presence.Diff, key string) map[string]any {
	t.Helper()
	if len(d.Leaves) != 0 || len(d.Joins) != 1 || len(d.Joins[key].Metas) != 1 {
		t.Fatalf("want a join of %s, got %+v", key, d)
	}
	return d.Joins[key].Metas[0]
}

func onlyLeave(t *testing.T, d presence.Diff, key string) map[string]any {
	t.Helper()
	if len(d.Joins) != 0 || len(d.Leaves) != 1 || len(d.Leaves[key].Metas) != 1 {
		t.Fatalf("want a leave of %s, got %+v", key, d)
	}
	return d.Leaves[key].Metas[0]
}

// collect reads n messages and returns them by event (the reply to a push
// and the diff it causes may come in either order).
func (c *client) collect(n int) map[string]msg {
	c.t.Helper()
	out := map[string]msg{}
	for i := 0; i < n; i++ {
		m := c.next()
		if _, dup := out[m.Event]; dup {
			c.t.Fatalf("two %s messages", m.Event)
		}
		out[m.Event] = m
	}
	return out
}

func TestChannelJoinUpdateLeave(t *testing.T) {
	leakcheck.Check(t)
	s := newServer(t, presence.Options{})

	alice := s.dial("alice", "1")
	if st := alice.join("1", "room:1", map[string]any{"status": "online"}); len(st) != 0 {
		t.Fatalf("first state %v", st)
	}
	am := onlyJoin(t, alice.diff(), "alice")
	if am["status"] != "online" || len(am["phx_ref"].(string)) != 16 {
		t.Fatalf("alice meta %v", am)
	}

	bob := s.dial("bob", "1")
	st := bob.join("1", "room:1", map[string]any{"status": "online"})
	if len(st) != 1 || st["alice"].Metas[0]["phx_ref"] != am["phx_ref"] {
		t.Fatalf("bob's state %v", st)
	}
	bm := onlyJoin(t, bob.diff(), "bob")
	if got := onlyJoin(t, alice.diff(), "bob"); got["phx_ref"] != bm["phx_ref"] {
		t.Fatalf("alice saw bob join with %v, bob has %v", got, bm)
	}

	// Update: one diff with a leave of the old meta and a join of the new.
	bob.send("1", "2", "room:1", "update", map[string]any{"status": "away"})
	got := bob.collect(2)
	var reply struct {
		Response struct{ Ref string }
		Status   string
	}
	json.Unmarshal(got["phx_reply"].Payload, &reply)
	d := decodeDiff(t, got[presence.DiffEvent].Payload)
	newRef := reply.Response.Ref
	if reply.Status != "ok" || len(newRef) != 16 {
		t.Fatalf("update reply %s", got["phx_reply"].Payload)
	}
	for _, d := range []presence.Diff{d, alice.diff()} {
		if len(d.Joins) != 1 || len(d.Leaves) != 1 {
			t.Fatalf("update diff %+v", d)
		}
		j, l := d.Joins["bob"].Metas[0], d.Leaves["bob"].Metas[0]
		if j["phx_ref"] != newRef || j["phx_ref_prev"] != bm["phx_ref"] || j["status"] != "away" ||
			l["phx_ref"] != bm["phx_ref"] || l["status"] != "online" {
			t.Fatalf("update diff joins %v leaves %v", j, l)
		}
	}

	// Leave.
	bob.send("1", "3", "room:1", "phx_leave", map[string]any{})
	bob.expect("phx_reply")
	bob.expect("phx_close")
	if l := onlyLeave(t, alice.diff(), "bob"); l["phx_ref"] != newRef {
		t.Fatalf("bob left with %v", l)
	}
	if l := s.tr.List("room:1"); len(l) != 1 || len(l["alice"].Metas) != 1 {
		t.Fatalf("list after leave %v", l)
	}

	// Untrack without leaving, then update: no presence.
	alice.send("1", "4", "room:1", "untrack", map[string]any{})
	alice.collect(2)
	alice.send("1", "5", "room:1", "update", map[string]any{"status": "x"})
	r := alice.expect("phx_reply")
	if want := `{"response":{"reason":"presence: not tracked"},"status":"error"}`; string(r.Payload) != want {
		t.Fatalf("update after untrack replied %s", r.Payload)
	}
}

// TestChannelEnds checks that a channel's presence leaves whatever ends the
// channel.
func TestChannelEnds(t *testing.T) {
	leakcheck.Check(t)
	s := newServer(t, presence.Options{})
	watcher := s.dial("watcher", "1")
	watcher.join("1", "room:1", map[string]any{})
	onlyJoin(t, watcher.diff(), "watcher")

	join := func(user string) (*client, string) {
		t.Helper()
		c := s.dial(user, "1")
		c.join("1", "room:1", map[string]any{})
		ref := onlyJoin(t, c.diff(), user)["phx_ref"].(string)
		if got := onlyJoin(t, watcher.diff(), user)["phx_ref"]; got != ref {
			t.Fatalf("watcher saw %s join with %v, want %v", user, got, ref)
		}
		return c, ref
	}
	leaves := func(user, ref string) {
		t.Helper()
		if got := onlyLeave(t, watcher.diff(), user)["phx_ref"]; got != ref {
			t.Fatalf("%s left with %v, want %v", user, got, ref)
		}
		if _, ok := s.tr.GetByKey("room:1", user); ok {
			t.Fatalf("%s still listed", user)
		}
	}

	t.Run("crash", func(t *testing.T) {
		c, ref := join("crasher")
		c.send("1", "2", "room:1", "crash", map[string]any{})
		c.expect("phx_error")
		leaves("crasher", ref)
		c.nc.Close()
	})
	t.Run("panic", func(t *testing.T) {
		c, ref := join("panicker")
		c.send("1", "2", "room:1", "panic", map[string]any{})
		c.expect("phx_error")
		leaves("panicker", ref)
		c.nc.Close()
	})
	t.Run("connection closed", func(t *testing.T) {
		c, ref := join("closer")
		c.nc.Close()
		leaves("closer", ref)
	})
	t.Run("server disconnect", func(t *testing.T) {
		c, ref := join("kicked")
		c.send("1", "2", "room:1", "kick", map[string]any{})
		c.drainUntilClosed()
		leaves("kicked", ref)
	})
	t.Run("duplicate join", func(t *testing.T) {
		c, ref := join("dup")
		c.send("2", "2", "room:1", "phx_join", map[string]any{"meta": map[string]any{"n": 2}})
		// The old channel's leave and the new one's join may come in
		// either order; phoenix.js tells them apart by phx_ref.
		var left, joined map[string]any
		for i := 0; i < 2; i++ {
			d := watcher.diff()
			if len(d.Leaves) == 1 {
				left = onlyLeave(t, d, "dup")
			} else {
				joined = onlyJoin(t, d, "dup")
			}
		}
		if left["phx_ref"] != ref || joined == nil || joined["n"] != float64(2) {
			t.Fatalf("duplicate join: left %v joined %v", left, joined)
		}
		if p, _ := s.tr.GetByKey("room:1", "dup"); len(p.Metas) != 1 || p.Metas[0]["phx_ref"] != joined["phx_ref"] {
			t.Fatalf("dup listed as %v", p.Metas)
		}
		c.nc.Close()
		leaves("dup", joined["phx_ref"].(string))
	})
	t.Run("drain", func(t *testing.T) {
		c, _ := join("drained")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- s.ep.Shutdown(ctx) }()
		c.drainUntilClosed()
		watcher.drainUntilClosed()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		eventually(t, "everyone to leave", func() bool { return len(s.tr.List("room:1")) == 0 })
	})
}

// TestSameUserTwoSockets: one key, two metas; closing one socket leaves one.
func TestSameUserTwoSockets(t *testing.T) {
	leakcheck.Check(t)
	s := newServer(t, presence.Options{})
	tab1 := s.dial("alice", "1")
	tab1.join("1", "room:1", map[string]any{"tab": 1})
	r1 := onlyJoin(t, tab1.diff(), "alice")["phx_ref"]
	tab2 := s.dial("alice", "2")
	st := tab2.join("1", "room:1", map[string]any{"tab": 2})
	if len(st["alice"].Metas) != 1 {
		t.Fatalf("tab 2 state %v", st)
	}
	onlyJoin(t, tab2.diff(), "alice")
	r2 := onlyJoin(t, tab1.diff(), "alice")["phx_ref"]
	if p, _ := s.tr.GetByKey("room:1", "alice"); len(p.Metas) != 2 || p.Metas[0]["phx_ref"] != r1 || p.Metas[1]["phx_ref"] != r2 {
		t.Fatalf("alice = %v", p.Metas)
	}
	tab2.nc.Close()
	if got := onlyLeave(t, tab1.diff(), "alice")["phx_ref"]; got != r2 {
		t.Fatalf("left %v, want %v", got, r2)
	}
	if p, _ := s.tr.GetByKey("room:1", "alice"); len(p.Metas) != 1 || p.Metas[0]["phx_ref"] != r1 {
		t.Fatalf("alice = %v", p.Metas)
	}
}

func TestTrackStoppedChannel(t *testing.T) {
	leakcheck.Check(t)
	s := newServer(t, presence.Options{})
	c := s.dial("alice", "1")
	c.join("1", "room:1", map[string]any{})
	c.diff()
	ch := <-s.chans
	if _, err := s.tr.Track(ch, "alice", nil); !errors.Is(err, presence.ErrAlreadyTracked) {
		t.Fatalf("second track: %v", err)
	}
	c.send("1", "2", "room:1", "phx_leave", map[string]any{})
	c.expect("phx_reply")
	c.expect("phx_close")
	if _, err := s.tr.Track(ch, "alice", nil); !errors.Is(err, presence.ErrOwnerStopped) {
		t.Fatalf("track on a stopped channel: %v", err)
	}
	if _, err := s.tr.Update(ch, "alice", nil); !errors.Is(err, presence.ErrOwnerStopped) {
		t.Fatalf("update on a stopped channel: %v", err)
	}
	eventually(t, "alice to leave", func() bool { return len(s.tr.List("room:1")) == 0 })
}
