package main

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/channeltest"
	"github.com/plumehq/plume/examples/donations/store"
	"github.com/plumehq/plume/internal/leakcheck"
)

// The channels, through the channeltest kit: real connections of the real
// socket on an in-memory transport, with the SQLite store in memory.

const testToken = "s3cret"

func memStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newHarness returns the app on st (a fresh in-memory store if nil) and a
// channeltest harness on its socket and endpoint.
func newHarness(t *testing.T, st store.Store) (*App, *channeltest.Harness) {
	t.Helper()
	if st == nil {
		st = memStore(t)
	}
	ep := plume.NewEndpoint(plume.Options{})
	app := NewApp(ep, st, testToken)
	ct := channeltest.New(t, app.Socket(), channeltest.Options{Endpoint: ep})
	// Runs after the clients' cleanups (registered later), before the
	// harness's.
	t.Cleanup(func() { app.Close() })
	return app, ct
}

var isoUTC = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$`)

// withTimestamp matches a payload whose "timestamp" is ISO 8601 UTC with a
// Z, within a minute of now.
func withTimestamp(p map[string]any) bool {
	s, _ := p["timestamp"].(string)
	if !isoUTC.MatchString(s) {
		return false
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && time.Since(ts).Abs() < time.Minute
}

func joinCampaign(t *testing.T, c *channeltest.Client, id string, payload any) *channeltest.Channel {
	t.Helper()
	ch, err := c.Join("campaign:"+id, payload)
	if err != nil {
		t.Fatal(err)
	}
	if got := ch.JoinReply().String(); got != "{}" {
		t.Fatalf("join reply %s, want {}", got)
	}
	return ch
}

func joinDashboard(t *testing.T, c *channeltest.Client) *channeltest.Channel {
	t.Helper()
	ch, err := c.Join(dashboardTopic, map[string]any{"admin_token": testToken})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func wantFigures(t *testing.T, st store.Store, want store.Campaign) {
	t.Helper()
	got, err := st.Campaign(t.Context(), want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("stored %+v, want %+v", got, want)
	}
}

func TestConnectSocketID(t *testing.T) {
	leakcheck.Check(t)
	_, ct := newHarness(t, nil)
	c, err := ct.Connect(plume.Params{"user_id": "u1"}, plume.ConnectInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Conn().ID != "user_socket:u1" {
		t.Fatalf("socket id %q", c.Conn().ID)
	}
	for _, params := range []plume.Params{{}, {"user_id": map[string]any{"a": "1"}}} {
		c, err := ct.Connect(params, plume.ConnectInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if c.Conn().ID != "" {
			t.Fatalf("params %v: socket id %q, want none", params, c.Conn().ID)
		}
	}
	// The socket id is what POST /api/disconnect closes.
	ct.Endpoint().Disconnect(t.Context(), "user_socket:u1")
	c.AssertDisconnect(plume.CloseGoingAway)
}

func TestCampaignJoin(t *testing.T) {
	leakcheck.Check(t)
	_, ct := newHarness(t, nil)
	c1 := ct.Socket("user_socket:u1", nil)

	x := joinCampaign(t, c1, "x", map[string]any{"user_id": "u1"})
	x.AssertPush("campaign_data", map[string]any{"id": "x", "goal": 100000000, "raised": 0, "donors": 0})
	if got := x.AssertPush("presence_state").String(); got != "{}" {
		t.Fatalf("first presence_state %s", got)
	}
	x.AssertPush("presence_diff", func(d struct {
		Joins  map[string]struct{ Metas []map[string]any }
		Leaves map[string]any
	}) bool {
		m := d.Joins["u1"].Metas
		online, _ := m[0]["online_at"].(string)
		ref, _ := m[0]["phx_ref"].(string)
		return len(d.Joins) == 1 && len(d.Leaves) == 0 && len(m) == 1 &&
			regexp.MustCompile(`^\d{10}$`).MatchString(online) && ref != ""
	})

	// Without a user_id: campaign_data only.
	y := joinCampaign(t, c1, "y", map[string]any{})
	y.AssertPush("campaign_data", map[string]any{"id": "y", "raised": 0})
	y.RefutePush("presence_state")

	// A second viewer gets the first in presence_state; both see the join.
	c2 := ct.Socket("user_socket:u2", nil)
	x2 := joinCampaign(t, c2, "x", map[string]any{"user_id": "u2"})
	x2.AssertPush("campaign_data")
	x2.AssertPush("presence_state", func(s map[string]any) bool { _, ok := s["u1"]; return ok && len(s) == 1 })
	x2.AssertPush("presence_diff", map[string]any{"joins": map[string]any{"u2": map[string]any{}}, "leaves": map[string]any{}})
	x.AssertPush("presence_diff", map[string]any{"joins": map[string]any{"u2": map[string]any{}}})

	// Leaving is a presence leave for the others.
	x2.AssertReply(x2.Leave(), "ok")
	x2.AssertClose()
	x.AssertPush("presence_diff", map[string]any{"joins": map[string]any{}, "leaves": map[string]any{"u2": map[string]any{}}})
}

func TestUnmatchedTopic(t *testing.T) {
	leakcheck.Check(t)
	_, ct := newHarness(t, nil)
	c := ct.Socket("", nil)
	for _, topic := range []string{"nope:1", "dashboard:other", "campaign"} {
		if _, err := c.Join(topic, nil); !errors.Is(err, channeltest.ErrUnmatchedTopic) {
			t.Fatalf("join %s: %v, want unmatched topic", topic, err)
		}
	}
}

func TestDonation(t *testing.T) {
	leakcheck.Check(t)
	app, ct := newHarness(t, nil)
	dash := ct.Subscribe(dashboardTopic)
	x := joinCampaign(t, ct.Socket("", nil), "x", nil)
	x.AssertPush("campaign_data")
	other := joinCampaign(t, ct.Socket("", nil), "x", nil)
	other.AssertPush("campaign_data")

	ref := x.Push("new_donation", map[string]any{"amount": 100, "donor": "Ann"})
	// The broadcast reaches every member, the sender included, before the
	// sender's reply.
	p := x.AssertPush("donation_received", map[string]any{"amount": 100, "donor": "Ann"}, withTimestamp,
		func(m map[string]any) bool { _, has := m["source"]; return len(m) == 3 && !has })
	x.AssertReply(ref, "ok", map[string]any{})
	other.AssertPush("donation_received", p)
	d := dash.AssertBroadcast("new_donation", map[string]any{"campaign_id": "x", "amount": 100, "donor": "Ann"}, withTimestamp)
	var ts struct{ Timestamp string }
	p.Decode(&ts)
	if !strings.Contains(d.String(), ts.Timestamp) {
		t.Fatalf("dashboard timestamp differs: %s vs %s", d, p)
	}
	wantFigures(t, app.store, store.Campaign{ID: "x", Goal: store.DefaultGoal, Raised: 100, Donors: 1})

	// Donors are distinct names.
	x.AssertReply(x.Push("new_donation", map[string]any{"amount": 250, "donor": "Bob"}), "ok")
	x.AssertReply(x.Push("new_donation", map[string]any{"amount": 5, "donor": "Ann"}), "ok")
	wantFigures(t, app.store, store.Campaign{ID: "x", Goal: store.DefaultGoal, Raised: 355, Donors: 2})

	// The next viewer's campaign_data has the totals.
	late := joinCampaign(t, ct.Socket("", nil), "x", nil)
	late.AssertPush("campaign_data", map[string]any{"id": "x", "raised": 355, "donors": 2, "goal": 100000000})

	// A donor name of 100 code points (400 bytes) is fine.
	x.AssertReply(x.Push("new_donation", map[string]any{"amount": 1, "donor": strings.Repeat("😀", 100)}), "ok")
}

func TestInvalidDonations(t *testing.T) {
	leakcheck.Check(t)
	app, ct := newHarness(t, nil)
	dash := ct.Subscribe(dashboardTopic)
	x := joinCampaign(t, ct.Socket("", nil), "x", nil)
	x.AssertPush("campaign_data")

	cases := []any{
		// The reference transcript's cases (V2.8).
		map[string]any{"amount": -1, "donor": "Ann"},
		map[string]any{"amount": 5, "donor": ""},
		map[string]any{"amount": 1.5, "donor": "Ann"},
		"not a map",
		// More of the rule: amount an integer > 0, donor a non-empty
		// string of at most 100 code points.
		map[string]any{"amount": 0, "donor": "Ann"},
		map[string]any{"amount": "5", "donor": "Ann"},
		map[string]any{"donor": "Ann"},
		map[string]any{"amount": 5},
		map[string]any{"amount": 5, "donor": 7},
		map[string]any{"amount": 5, "donor": nil},
		map[string]any{"amount": 5, "donor": strings.Repeat("a", 101)},
		map[string]any{"amount": 5, "donor": strings.Repeat("é", 101)},
		map[string]any{"amount": nil, "donor": "Ann"},
		map[string]any{"amount": true, "donor": "Ann"},
		map[string]any{"amount": []any{5}, "donor": "Ann"},
		rawJSON(`{"amount":1.0,"donor":"Ann"}`),
		rawJSON(`{"amount":1e2,"donor":"Ann"}`),
		rawJSON(`{"amount":99999999999999999999999,"donor":"Ann"}`),
		nil,
		42,
		[]any{100, "Ann"},
		plume.Binary(`{"amount":5,"donor":"Ann"}`),
	}
	for _, payload := range cases {
		ref := x.Push("new_donation", payload)
		got := x.AssertReply(ref, "error")
		if got.String() != `{"reason":"invalid_donation"}` {
			t.Fatalf("payload %v: reply %s", payload, got)
		}
	}
	x.RefutePush("donation_received")
	dash.RefuteBroadcast("new_donation")
	x.RefutePush("phx_error")
	wantFigures(t, app.store, store.Fresh("x"))
	if r, _ := app.store.Recent(t.Context(), 10); len(r) != 0 {
		t.Fatalf("stored %v", r)
	}
}

// rawJSON is JSON text sent as written (1.0 stays a float).
func rawJSON(s string) plume.Payload { return plume.JSONPayload([]byte(s)) }

// failingStore fails every donation, as a database that went away would.
type failingStore struct{ store.Store }

func (failingStore) Donate(context.Context, store.Donation) (store.Campaign, error) {
	return store.Campaign{}, errors.New("disk I/O error")
}

func TestDonationNotStoredIsNotBroadcast(t *testing.T) {
	leakcheck.Check(t)
	_, ct := newHarness(t, failingStore{memStore(t)})
	dash := ct.Subscribe(dashboardTopic)
	x := joinCampaign(t, ct.Socket("", nil), "x", nil)
	x.AssertPush("campaign_data")
	ref := x.Push("new_donation", map[string]any{"amount": 100, "donor": "Ann"})
	x.AssertReply(ref, "error", map[string]any{"reason": "storage_error"})
	x.RefutePush("donation_received")
	dash.RefuteBroadcast("new_donation")
}

func TestUpdateCampaign(t *testing.T) {
	leakcheck.Check(t)
	app, ct := newHarness(t, nil)
	x := joinCampaign(t, ct.Socket("", nil), "x", nil)
	x.AssertPush("campaign_data")
	other := joinCampaign(t, ct.Socket("", nil), "x", nil)
	other.AssertPush("campaign_data")

	ref := x.Push("update_campaign", map[string]any{"raised": 42})
	p := x.AssertPush("campaign_updated", map[string]any{"campaign_id": "x", "raised": 42}, withTimestamp)
	x.AssertReply(ref, "ok", map[string]any{})
	other.AssertPush("campaign_updated", p)
	x.AssertReply(x.Push("update_campaign", map[string]any{"raised": 0}), "ok")
	x.AssertPush("campaign_updated", map[string]any{"raised": 0})
	// Any size: the figure is only announced.
	x.AssertReply(x.Push("update_campaign", rawJSON(`{"raised":123456789012345678901234567890}`)), "ok")
	x.AssertPush("campaign_updated", rawJSON(`{"raised":123456789012345678901234567890}`))

	for _, payload := range []any{
		map[string]any{"raised": -3},
		map[string]any{"raised": 1.5},
		map[string]any{"raised": "42"},
		map[string]any{},
		rawJSON(`{"raised":4e1}`),
		"raised",
		nil,
	} {
		x.AssertReply(x.Push("update_campaign", payload), "error", map[string]any{"reason": "invalid_update"})
	}
	x.RefutePush("campaign_updated")
	// It announces a figure; the stored totals do not change.
	wantFigures(t, app.store, store.Fresh("x"))
}

func TestPing(t *testing.T) {
	leakcheck.Check(t)
	_, ct := newHarness(t, nil)
	x := joinCampaign(t, ct.Socket("", nil), "x", nil)
	for _, payload := range []string{`{"hello":"world","n":[1,2,3]}`, `"just a string"`, `42`, `[1,"two"]`, `null`, `{}`} {
		got := x.AssertReply(x.Push("ping", rawJSON(payload)), "ok")
		if got.String() != payload {
			t.Fatalf("ping %s: reply %s", payload, got)
		}
	}
	for _, b := range [][]byte{{0xde, 0xad, 0xbe, 0xef, 0, 1}, {}} {
		got := x.AssertReply(x.Push("ping", plume.Binary(b)), "ok", plume.Binary(b))
		if !got.IsBinary() {
			t.Fatal("binary ping got a JSON reply")
		}
	}
}

func TestUnknownEventCrashesLikeTheReference(t *testing.T) {
	leakcheck.Check(t)
	_, ct := newHarness(t, nil)
	c := ct.Socket("", nil)
	x := joinCampaign(t, c, "crash", nil)
	x.AssertPush("campaign_data")
	x.Push("no_such_event", nil)
	x.AssertError()
	// The topic is not joined any more; joining again works.
	joinCampaign(t, c, "crash", nil).AssertPush("campaign_data")
}

func TestDashboardUnauthorized(t *testing.T) {
	leakcheck.Check(t)
	_, ct := newHarness(t, nil)
	c := ct.Socket("", nil)
	for _, payload := range []any{
		map[string]any{"admin_token": "bad"},
		map[string]any{},
		map[string]any{"admin_token": nil},
		map[string]any{"admin_token": 42},
		map[string]any{"admin_token": testToken + " "},
		map[string]any{"admin_token": strings.ToUpper(testToken)},
		"s3cret",
		nil,
	} {
		_, err := c.Join(dashboardTopic, payload)
		var je *channeltest.JoinError
		if !errors.As(err, &je) || je.Reply.String() != `{"reason":"unauthorized"}` {
			t.Fatalf("join with %v: %v, want unauthorized", payload, err)
		}
	}
	if c.Conn().Channels() != 0 {
		t.Fatal("a refused join left a channel")
	}
}

func TestDashboardJoin(t *testing.T) {
	leakcheck.Check(t)
	_, ct := newHarness(t, nil)
	// Two known campaigns, twelve donations.
	for _, id := range []string{"x", "y"} {
		joinCampaign(t, ct.Socket("", nil), id, nil).AssertPush("campaign_data")
	}
	x := joinCampaign(t, ct.Socket("", nil), "x", nil)
	for i := 1; i <= 12; i++ {
		x.AssertReply(x.Push("new_donation", map[string]any{"amount": i, "donor": "D" + strings.Repeat("i", i)}), "ok")
	}

	d := joinDashboard(t, ct.Socket("", nil))
	d.AssertPush("dashboard_state", func(s struct {
		TotalRaised     int64            `json:"total_raised"`
		ActiveCampaigns int64            `json:"active_campaigns"`
		RecentDonations []map[string]any `json:"recent_donations"`
	}) bool {
		r := s.RecentDonations
		return s.TotalRaised == 78 && s.ActiveCampaigns == 2 && len(r) == 10 &&
			r[0]["amount"] == 12.0 && r[0]["campaign"] == "x" && r[0]["donor"] == "D"+strings.Repeat("i", 12) &&
			r[9]["amount"] == 3.0 && len(r[0]) == 3
	})
	if got := d.AssertPush("presence_state").String(); got != "{}" {
		t.Fatalf("presence_state %s", got)
	}
	d.AssertPush("presence_diff", func(p struct {
		Joins map[string]struct{ Metas []map[string]any }
	}) bool {
		m := p.Joins["admin"].Metas
		ja, _ := m[0]["joined_at"].(string)
		return len(m) == 1 && m[0]["role"] == "admin" && isoUTC.MatchString(ja)
	})

	// A second admin sees the first in presence_state, under the same key.
	d2 := joinDashboard(t, ct.Socket("", nil))
	d2.AssertPush("dashboard_state")
	d2.AssertPush("presence_state", func(s map[string]struct{ Metas []any }) bool { return len(s["admin"].Metas) == 1 })
	d.AssertPush("presence_diff", map[string]any{"joins": map[string]any{"admin": map[string]any{}}})

	// Donations reach the dashboard.
	x.AssertReply(x.Push("new_donation", map[string]any{"amount": 7, "donor": "Zed"}), "ok")
	d.AssertPush("new_donation", map[string]any{"campaign_id": "x", "amount": 7, "donor": "Zed"}, withTimestamp)
	d2.AssertPush("new_donation")
}

func TestRequestCampaignUpdate(t *testing.T) {
	leakcheck.Check(t)
	app, ct := newHarness(t, nil)
	watch := ct.Subscribe(dashboardTopic)
	x := joinCampaign(t, ct.Socket("", nil), "x", nil)
	x.AssertReply(x.Push("new_donation", map[string]any{"amount": 100, "donor": "Ann"}), "ok")
	watch.AssertBroadcast("new_donation")

	d := joinDashboard(t, ct.Socket("", nil))
	d.AssertPush("dashboard_state")
	other := joinDashboard(t, ct.Socket("", nil))
	other.AssertPush("dashboard_state")

	got := d.AssertReply(d.Push("request_campaign_update", map[string]any{"campaign_id": "x"}), "ok")
	if got.String() != `{"donors":1,"goal":100000000,"id":"x","raised":100}` {
		t.Fatalf("reply %s", got)
	}
	got = d.AssertReply(d.Push("request_campaign_update", map[string]any{"campaign_id": "never-seen"}), "ok")
	if got.String() != `{"donors":0,"goal":100000000,"id":"never-seen","raised":0}` {
		t.Fatalf("reply %s", got)
	}
	// The unknown campaign was not created.
	if tot, err := app.store.Totals(t.Context()); err != nil || tot.Campaigns != 1 {
		t.Fatalf("totals %+v %v", tot, err)
	}
	for _, payload := range []any{map[string]any{}, map[string]any{"campaign_id": 5}, map[string]any{"campaign_id": nil}, "x", nil} {
		d.AssertReply(d.Push("request_campaign_update", payload), "error", map[string]any{"reason": "invalid_request"})
	}
	// Replies went to the sender only: nothing was broadcast, and the
	// other admin got nothing.
	watch.RefuteBroadcast("request_campaign_update")
	other.RefutePush("request_campaign_update")
	other.RefutePush("campaign_data")
}

func TestRefresher(t *testing.T) {
	leakcheck.Check(t)
	app, ct := newHarness(t, nil)
	c := ct.Socket("", nil)
	x := joinCampaign(t, c, "x", nil)
	x.AssertPush("campaign_data")
	y := joinCampaign(t, c, "y", nil)
	y.AssertPush("campaign_data")
	if _, err := app.store.Donate(t.Context(), store.Donation{CampaignID: "x", Amount: 40, Donor: "Ann", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := app.activeCampaigns(); strings.Join(got, ",") != "x,y" {
		t.Fatalf("active %v", got)
	}
	app.refresh(t.Context())
	x.AssertPush("campaign_refreshed", map[string]any{"id": "x", "goal": 100000000, "raised": 40, "donors": 1})
	y.AssertPush("campaign_refreshed", map[string]any{"id": "y", "raised": 0})

	// A campaign nobody watches any more is not refreshed.
	y.AssertReply(y.Leave(), "ok")
	y.AssertClose()
	waitFor(t, func() bool { return strings.Join(app.activeCampaigns(), ",") == "x" })
	c.Close()
	waitFor(t, func() bool { return len(app.activeCampaigns()) == 0 })

	// The worker runs on its own schedule until stopped.
	x2 := joinCampaign(t, ct.Socket("", nil), "x", nil)
	x2.AssertPush("campaign_data")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		app.RunRefresher(ctx, 20*time.Millisecond)
	}()
	x2.AssertPush("campaign_refreshed", map[string]any{"raised": 40})
	x2.AssertPush("campaign_refreshed", map[string]any{"raised": 40})
	cancel()
	<-done
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 2s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAdminTokenComparison(t *testing.T) {
	app := NewApp(plume.NewEndpoint(plume.Options{}), nil, "admin_secret")
	for tok, want := range map[string]bool{"admin_secret": true, "admin_secre": false, "admin_secret\x00": false, "": false} {
		if got := app.authorized(tok); got != want {
			t.Errorf("authorized(%q) = %v", tok, got)
		}
	}
}
