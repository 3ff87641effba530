package presence_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/presence"
)

// Room is a channel with presence, the Phoenix way: after joining it pushes
// the current presences, then tracks its user. Everyone on the topic gets a
// presence_diff; the user's presence leaves when the channel stops.
type Room struct {
	presences *presence.Tracker
}

type roomAfterJoin struct{}

func (r *Room) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	ch.Send(roomAfterJoin{}) // handle_info(:after_join, socket)
	return nil, nil
}

func (r *Room) HandleInfo(ch *plume.Channel, msg any) error {
	if _, ok := msg.(roomAfterJoin); ok {
		if err := ch.Push(presence.StateEvent, r.presences.List(ch.Topic())); err != nil {
			return err
		}
		user := ch.Assigns["user_id"].(string)
		_, err := r.presences.Track(ch, user, map[string]any{"online_at": time.Now().Unix()})
		return err
	}
	return nil
}

// In the browser, with the official client:
//
//	let presence = new Presence(channel)
//	presence.onSync(() => render(presence.list()))
func Example() {
	ep := plume.NewEndpoint(plume.Options{})
	presences := presence.New(ep, presence.Options{})
	defer presences.Close()

	sock := &plume.Socket{
		Connect: func(ctx context.Context, c *plume.Conn) error {
			user, _ := c.Params["user_id"].(string)
			if user == "" {
				return plume.ErrRefused
			}
			c.Assign("user_id", user)
			return nil
		},
	}
	sock.Channel("room:*", func() plume.ChannelHandler { return &Room{presences: presences} })
	ep.Mount("/socket", sock)
	// http.ListenAndServe(":4000", ep)
}

func ExampleTracker_List() {
	ep := plume.NewEndpoint(plume.Options{})
	presences := presence.New(ep, presence.Options{})
	defer presences.Close()

	// Owners other than channels: here, two tabs of alice's and one of bob's.
	presences.TrackOwner("tab-1", "room:lobby", "alice", map[string]any{"status": "online"})
	presences.TrackOwner("tab-2", "room:lobby", "alice", map[string]any{"status": "away"})
	presences.TrackOwner("tab-3", "room:lobby", "bob", map[string]any{"status": "online"})

	list := presences.List("room:lobby")
	for _, key := range slices.Sorted(maps.Keys(list)) {
		var statuses []any
		for _, meta := range list[key].Metas {
			statuses = append(statuses, meta["status"])
		}
		fmt.Println(key, statuses)
	}

	presences.UntrackOwner("tab-1", "room:lobby", "alice")
	p, _ := presences.GetByKey("room:lobby", "alice")
	fmt.Println("alice", len(p.Metas), "meta left")
	// Output:
	// alice [online away]
	// bob [online]
	// alice 1 meta left
}

func ExampleTracker_UpdateFunc() {
	ep := plume.NewEndpoint(plume.Options{})
	presences := presence.New(ep, presence.Options{})
	defer presences.Close()

	old, _ := presences.TrackOwner("tab-1", "room:lobby", "alice", map[string]any{"status": "online", "typing": false})
	ref, _ := presences.UpdateOwnerFunc("tab-1", "room:lobby", "alice", func(meta map[string]any) map[string]any {
		meta["typing"] = true
		return meta
	})
	p, _ := presences.GetByKey("room:lobby", "alice")
	meta := p.Metas[0]
	fmt.Println(meta["status"], meta["typing"], meta["phx_ref"] == ref, meta["phx_ref_prev"] == old)
	// Output: online true true true
}

func ExampleOptions_fetch() {
	names := map[string]string{"u1": "Alice", "u2": "Bob"} // a database, say
	ep := plume.NewEndpoint(plume.Options{})
	presences := presence.New(ep, presence.Options{
		Fetch: func(topic string, ps map[string]presence.Presence) map[string]presence.Presence {
			for key, p := range ps {
				p.Extra = map[string]any{"user": map[string]any{"name": names[key]}}
				ps[key] = p
			}
			return ps
		},
	})
	defer presences.Close()

	presences.TrackOwner("tab-1", "room:lobby", "u1", nil)
	p, _ := presences.GetByKey("room:lobby", "u1")
	fmt.Println(p.Extra["user"], len(p.Metas))
	// Output: map[name:Alice] 1
}
