package presence_test

import (
	"testing"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/channeltest"
	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/presence"
)

// kitRoom is the Phoenix presence pattern: after join, push the state,
// then track.
type kitRoom struct{ tr *presence.Tracker }

func (r *kitRoom) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	ch.Send(afterJoin{})
	return nil, nil
}

func (r *kitRoom) HandleInfo(ch *plume.Channel, msg any) error {
	if _, ok := msg.(afterJoin); ok {
		if err := ch.Push(presence.StateEvent, r.tr.List(ch.Topic())); err != nil {
			return err
		}
		_, err := r.tr.Track(ch, ch.Assigns["user"].(string), map[string]any{"status": "here"})
		return err
	}
	return nil
}

func (r *kitRoom) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	switch event {
	case "away":
		_, err := r.tr.Update(ch, ch.Assigns["user"].(string), map[string]any{"status": "away"})
		return plume.ReplyOK(nil), err
	case "crash":
		panic("boom")
	}
	return plume.NoReply, nil
}

func metaOf(p map[string]any, side, key string) map[string]any {
	entry, _ := p[side].(map[string]any)[key].(map[string]any)
	if entry == nil {
		return nil
	}
	metas, _ := entry["metas"].([]any)
	if len(metas) != 1 {
		return nil
	}
	m, _ := metas[0].(map[string]any)
	return m
}

// TestPresenceThroughTheKit drives presence with the channel test kit:
// state then diffs on join, update, crash and leave.
func TestPresenceThroughTheKit(t *testing.T) {
	leakcheck.Check(t)
	ep := plume.NewEndpoint(plume.Options{})
	tr := presence.New(ep, presence.Options{})
	defer tr.Close()
	sock := &plume.Socket{}
	sock.Channel("room:*", func() plume.ChannelHandler { return &kitRoom{tr: tr} })
	ct := channeltest.New(t, sock, channeltest.Options{Endpoint: ep})

	ann, err := ct.Socket("", map[string]any{"user": "ann"}).Join("room:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	ann.AssertPush(presence.StateEvent, map[string]any{})
	annJoin := ann.AssertPush(presence.DiffEvent, func(p map[string]any) bool { return metaOf(p, "joins", "ann") != nil })
	if ref, _ := metaOf(annJoin.Map(), "joins", "ann")["phx_ref"].(string); len(ref) != 16 {
		t.Fatalf("phx_ref %q is not Phoenix's 16-character form", ref)
	}

	bob, err := ct.Socket("", map[string]any{"user": "bob"}).Join("room:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	bob.AssertPush(presence.StateEvent, func(p map[string]any) bool { _, ok := p["ann"]; return ok && len(p) == 1 })
	ann.AssertPush(presence.DiffEvent, func(p map[string]any) bool { return metaOf(p, "joins", "bob") != nil })
	bob.AssertPush(presence.DiffEvent, func(p map[string]any) bool { return metaOf(p, "joins", "bob") != nil })
	if got := tr.List("room:1"); len(got) != 2 {
		t.Fatalf("list has %d keys, want 2", len(got))
	}

	// An update is a leave of the old meta and a join of the new one, in
	// one diff, the new meta pointing at the old with phx_ref_prev.
	ref := bob.Push("away", nil)
	bob.AssertReply(ref, "ok")
	diff := ann.AssertPush(presence.DiffEvent, func(p map[string]any) bool { return metaOf(p, "joins", "bob") != nil })
	joined, left := metaOf(diff.Map(), "joins", "bob"), metaOf(diff.Map(), "leaves", "bob")
	if joined["status"] != "away" || left == nil || left["status"] != "here" || joined["phx_ref_prev"] != left["phx_ref"] {
		t.Fatalf("update diff %s", diff)
	}

	// A crash untracks the crashed channel's presences.
	bob.Push("crash", nil)
	bob.AssertError()
	ann.AssertPush(presence.DiffEvent, func(p map[string]any) bool { return metaOf(p, "leaves", "bob") != nil })
	if _, ok := tr.GetByKey("room:1", "bob"); ok {
		t.Fatal("bob is still present after his channel crashed")
	}

	// Leaving untracks too.
	ann.AssertReply(ann.Leave(), "ok")
	eventually(t, "ann leaves the list", func() bool { return len(tr.List("room:1")) == 0 })
}
