package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/examples/donations/store"
	"github.com/plumehq/plume/presence"
)

// Topics and events of the demo contract (shared/contract/donations.md).
const (
	campaignPrefix = "campaign:"
	dashboardTopic = "dashboard:live"

	sourceBankTransfer = "bank_transfer"

	// recentLimit is how many donations dashboard_state lists.
	recentLimit = 10
	// storeTimeout bounds one store call made for a client.
	storeTimeout = 5 * time.Second
)

// Reasons in error replies.
var (
	errInvalidDonation = map[string]string{"reason": "invalid_donation"}
	errInvalidUpdate   = map[string]string{"reason": "invalid_update"}
	errInvalidRequest  = map[string]string{"reason": "invalid_request"}
	// errStorage: the donation was valid but could not be stored, so it was
	// not broadcast either.
	errStorage = map[string]string{"reason": "storage_error"}
)

// App is the donations demo: its socket and channels, HTTP API and pages,
// over one endpoint and one store.
type App struct {
	ep       *plume.Endpoint
	store    store.Store
	presence *presence.Tracker
	log      *slog.Logger
	token    [sha256.Size]byte
	now      func() time.Time
	ops      *ops // nil: no user tokens, metrics or broadcast API (ops.go)

	mu     sync.Mutex
	active map[string]int // campaign id -> channels joined on this node
}

// NewApp returns the demo on ep and st. Admin sessions must present
// adminToken to join the dashboard.
func NewApp(ep *plume.Endpoint, st store.Store, adminToken string) *App {
	return newApp(ep, st, adminToken, presence.Options{})
}

// newApp is NewApp with the presence tracker's options (cluster.go).
func newApp(ep *plume.Endpoint, st store.Store, adminToken string, po presence.Options) *App {
	return &App{
		ep:       ep,
		store:    st,
		presence: presence.New(ep, po),
		log:      ep.Logger(),
		token:    sha256.Sum256([]byte(adminToken)),
		now:      time.Now,
		active:   make(map[string]int),
	}
}

// Close stops the presence tracker, once every connection has closed.
func (a *App) Close() error { return a.presence.Close() }

// Socket is the socket mounted at /socket: every connection is accepted,
// and one with a user_id parameter gets the socket id
// "user_socket:<user_id>", which POST /api/disconnect uses. With ops, a
// connection that presents a user token is that token's user, or is
// refused if the token does not verify (authenticate, in ops.go).
func (a *App) Socket() *plume.Socket {
	s := &plume.Socket{
		// A refused user token closes with 4401, which the page reads.
		RefuseWithClose: true,
		Connect: func(_ context.Context, c *plume.Conn) error {
			if handled, err := a.authenticate(c); handled {
				return err
			}
			if uid, ok := c.Params["user_id"].(string); ok {
				c.ID = userSocketID(uid)
			}
			return nil
		},
	}
	s.Channel(campaignPrefix+"*", func() plume.ChannelHandler { return &campaignChannel{app: a} })
	s.Channel(dashboardTopic, func() plume.ChannelHandler { return &dashboardChannel{app: a} })
	return s
}

func userSocketID(uid string) string { return "user_socket:" + uid }

// authorized compares a token with the admin token in constant time
// (hashing both first, so that not even the length leaks).
func (a *App) authorized(token string) bool {
	h := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(h[:], a.token[:]) == 1
}

// donationReceived is broadcast on campaign:<id>; Source is set for bank
// transfers only. Fields are in alphabetical order, as Phoenix encodes them.
type donationReceived struct {
	Amount    int64  `json:"amount"`
	Donor     string `json:"donor"`
	Source    string `json:"source,omitempty"`
	Timestamp string `json:"timestamp"`
}

// dashboardDonation is "new_donation" on dashboard:live.
type dashboardDonation struct {
	Amount     int64  `json:"amount"`
	CampaignID string `json:"campaign_id"`
	Donor      string `json:"donor"`
	Timestamp  string `json:"timestamp"`
}

// donate stores a donation and, once it is stored, broadcasts it on its
// campaign's topic and on the dashboard. A donation that fails to store is
// not broadcast.
func (a *App) donate(ctx context.Context, d store.Donation) (store.Campaign, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	c, err := a.store.Donate(ctx, d)
	if err != nil {
		return store.Campaign{}, err
	}
	// Stored, so it is announced even if the sender has gone meanwhile.
	ctx = context.WithoutCancel(ctx)
	ts := timestamp(d.At)
	if err := a.ep.Broadcast(ctx, campaignPrefix+d.CampaignID, "donation_received",
		donationReceived{Amount: d.Amount, Donor: d.Donor, Source: d.Source, Timestamp: ts}); err != nil {
		a.log.Error("broadcast donation_received", "campaign", d.CampaignID, "err", err)
	}
	if err := a.ep.Broadcast(ctx, dashboardTopic, "new_donation",
		dashboardDonation{Amount: d.Amount, CampaignID: d.CampaignID, Donor: d.Donor, Timestamp: ts}); err != nil {
		a.log.Error("broadcast new_donation", "campaign", d.CampaignID, "err", err)
	}
	return c, nil
}

// activate counts a joined campaign channel until it stops, for the
// refresher.
func (a *App) activate(ch *plume.Channel, id string) {
	a.mu.Lock()
	a.active[id]++
	a.mu.Unlock()
	context.AfterFunc(ch.Context(), func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.active[id]--; a.active[id] <= 0 {
			delete(a.active, id)
		}
	})
}

// activeCampaigns returns the campaigns with channels joined on this node.
func (a *App) activeCampaigns() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([]string, 0, len(a.active))
	for id := range a.active {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// refresh broadcasts "campaign_refreshed" with fresh totals on every active
// campaign. It broadcasts to this node only: every node refreshes the
// campaigns its own clients watch.
func (a *App) refresh(ctx context.Context) {
	for _, id := range a.activeCampaigns() {
		if ctx.Err() != nil {
			return
		}
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		c, err := a.store.Campaign(sctx, id)
		cancel()
		if err != nil {
			a.log.Error("refresh campaign", "campaign", id, "err", err)
			continue
		}
		if err := a.ep.LocalBroadcast(campaignPrefix+id, "campaign_refreshed", c); err != nil {
			a.log.Error("broadcast campaign_refreshed", "campaign", id, "err", err)
		}
	}
}

// RunRefresher refreshes the active campaigns every interval until ctx ends.
func (a *App) RunRefresher(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.refresh(ctx)
		}
	}
}

// afterJoin is what a channel sends itself in Join, to push and track once
// the join's reply is out (Phoenix's send(self(), :after_join)).
type afterJoin struct{}

// campaignChannel is a client on "campaign:<id>".
type campaignChannel struct {
	app    *App
	id     string
	userID *string // nil: joined without a user_id, so not tracked
}

func (c *campaignChannel) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	c.id = strings.TrimPrefix(topic, campaignPrefix)
	if uid, ok := verifiedUser(ch); ok {
		c.userID = &uid // a signed token's user, whatever the payload says
	} else if m, ok := payloadObject(p); ok {
		if uid, ok := m["user_id"].(string); ok {
			c.userID = &uid
		}
	}
	ctx, cancel := context.WithTimeout(ch.Context(), storeTimeout)
	defer cancel()
	if err := c.app.store.Touch(ctx, c.id); err != nil {
		c.app.log.Error("join: store", "campaign", c.id, "err", err)
		return nil, plume.RefuseJoin(errStorage)
	}
	c.app.activate(ch, c.id)
	ch.Send(afterJoin{})
	return nil, nil
}

func (c *campaignChannel) HandleInfo(ch *plume.Channel, msg any) error {
	if _, ok := msg.(afterJoin); !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ch.Context(), storeTimeout)
	defer cancel()
	camp, err := c.app.store.Campaign(ctx, c.id)
	if err != nil {
		return fmt.Errorf("campaign_data: %w", err)
	}
	if err := ch.Push("campaign_data", camp); err != nil {
		return nil // the channel is gone
	}
	if c.userID == nil {
		return nil
	}
	if err := ch.Push("presence_state", c.app.presence.List(ch.Topic())); err != nil {
		return nil
	}
	_, err = c.app.presence.Track(ch, *c.userID, map[string]any{"online_at": unixSeconds(c.app.now())})
	if errors.Is(err, presence.ErrOwnerStopped) {
		return nil
	}
	return err
}

func (c *campaignChannel) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	switch event {
	case "new_donation":
		m, ok := payloadObject(p)
		if !ok {
			return plume.ReplyError(errInvalidDonation), nil
		}
		amount, donor, ok := donationFields(m)
		if !ok {
			return plume.ReplyError(errInvalidDonation), nil
		}
		_, err := c.app.donate(ch.Context(), store.Donation{CampaignID: c.id, Amount: amount, Donor: donor, At: c.app.now()})
		switch {
		case errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrOverflow):
			return plume.ReplyError(errInvalidDonation), nil
		case err != nil:
			c.app.log.Error("donation not stored", "campaign", c.id, "err", err)
			return plume.ReplyError(errStorage), nil
		}
		return plume.ReplyOK(nil), nil

	case "update_campaign":
		m, ok := payloadObject(p)
		if !ok {
			return plume.ReplyError(errInvalidUpdate), nil
		}
		raised, ok := raisedField(m)
		if !ok {
			return plume.ReplyError(errInvalidUpdate), nil
		}
		err := ch.Broadcast("campaign_updated", struct {
			CampaignID string      `json:"campaign_id"`
			Raised     json.Number `json:"raised"`
			Timestamp  string      `json:"timestamp"`
		}{c.id, raised, timestamp(c.app.now())})
		if err != nil {
			return plume.NoReply, err
		}
		return plume.ReplyOK(nil), nil

	case "ping":
		return plume.ReplyOK(p), nil
	}
	// As in the Phoenix reference app, which has no catch-all handle_in: an
	// event nobody handles crashes the channel (phx_error), and phoenix.js
	// rejoins.
	return plume.NoReply, fmt.Errorf("unhandled event %q on %s", event, ch.Topic())
}

// dashboardChannel is an admin on "dashboard:live".
type dashboardChannel struct{ app *App }

// recentDonation is one of dashboard_state's recent_donations.
type recentDonation struct {
	Amount   int64  `json:"amount"`
	Campaign string `json:"campaign"`
	Donor    string `json:"donor"`
}

func (d *dashboardChannel) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	m, _ := payloadObject(p)
	token, ok := m["admin_token"].(string)
	if !ok || !d.app.authorized(token) {
		return nil, errUnauthorizedJoin
	}
	ch.Send(afterJoin{})
	return nil, nil
}

func (d *dashboardChannel) HandleInfo(ch *plume.Channel, msg any) error {
	if _, ok := msg.(afterJoin); !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ch.Context(), storeTimeout)
	defer cancel()
	totals, err := d.app.store.Totals(ctx)
	if err != nil {
		return fmt.Errorf("dashboard_state: %w", err)
	}
	recent, err := d.app.store.Recent(ctx, recentLimit)
	if err != nil {
		return fmt.Errorf("dashboard_state: %w", err)
	}
	list := make([]recentDonation, len(recent))
	for i, r := range recent {
		list[i] = recentDonation{Amount: r.Amount, Campaign: r.CampaignID, Donor: r.Donor}
	}
	err = ch.Push("dashboard_state", struct {
		ActiveCampaigns int64            `json:"active_campaigns"`
		RecentDonations []recentDonation `json:"recent_donations"`
		TotalRaised     int64            `json:"total_raised"`
	}{totals.Campaigns, list, totals.Raised})
	if err != nil {
		return nil
	}
	if err := ch.Push("presence_state", d.app.presence.List(ch.Topic())); err != nil {
		return nil
	}
	_, err = d.app.presence.Track(ch, "admin", map[string]any{"role": "admin", "joined_at": timestamp(d.app.now())})
	if errors.Is(err, presence.ErrOwnerStopped) {
		return nil
	}
	return err
}

func (d *dashboardChannel) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	if event != "request_campaign_update" {
		return plume.NoReply, fmt.Errorf("unhandled event %q on %s", event, ch.Topic())
	}
	m, _ := payloadObject(p)
	id, ok := m["campaign_id"].(string)
	if !ok {
		return plume.ReplyError(errInvalidRequest), nil
	}
	ctx, cancel := context.WithTimeout(ch.Context(), storeTimeout)
	defer cancel()
	c, err := d.app.store.Campaign(ctx, id)
	if err != nil {
		d.app.log.Error("request_campaign_update", "campaign", id, "err", err)
		return plume.ReplyError(errStorage), nil
	}
	// A reply goes to the sender only.
	return plume.ReplyOK(c), nil
}
