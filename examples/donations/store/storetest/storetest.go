// Package storetest is the test suite every store.Store implementation must
// pass: SQLite's runs it in a file and in memory, and a PostgreSQL store
// would run the same.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumehq/plume/examples/donations/store"
)

// Factory makes stores for the suite.
type Factory struct {
	// New returns an empty store for one test. The suite closes it.
	New func(t *testing.T) store.Store
	// Reopen closes s and returns a store on the same storage, as after a
	// restart. Nil skips the persistence tests (an in-memory store).
	Reopen func(t *testing.T, s store.Store) store.Store
}

// Run runs the suite, each case as a subtest with a store of its own.
func Run(t *testing.T, f Factory) {
	cases := []struct {
		name string
		run  func(t *testing.T, f Factory)
	}{
		{"UnknownCampaignIsFreshAndNotCreated", testUnknown},
		{"TouchMakesKnownOnce", testTouch},
		{"DonateUpdatesTotals", testDonate},
		{"DonorsAreDistinctNames", testDistinctDonors},
		{"DonateCreatesCampaign", testDonateCreates},
		{"RecentNewestFirst", testRecent},
		{"CampaignsByRaised", testCampaigns},
		{"InvalidStoresNothing", testInvalid},
		{"OverflowStoresNothing", testOverflow},
		{"UnicodeRoundTrip", testUnicode},
		{"ConcurrentDonations", testConcurrent},
		{"CanceledContext", testCanceled},
		{"Closed", testClosed},
		{"PersistsAcrossReopen", testReopen},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, f) })
	}
}

func open(t *testing.T, f Factory) store.Store {
	t.Helper()
	s := f.New(t)
	t.Cleanup(func() { s.Close() })
	return s
}

var at0 = time.Date(2026, 11, 27, 19, 25, 43, 725086000, time.UTC)

func donation(campaign string, amount int64, donor string, i int) store.Donation {
	return store.Donation{CampaignID: campaign, Amount: amount, Donor: donor, At: at0.Add(time.Duration(i) * time.Second)}
}

func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantCampaign(t *testing.T, s store.Store, want store.Campaign) {
	t.Helper()
	got := must(s.Campaign(t.Context(), want.ID))(t)
	if got != want {
		t.Fatalf("Campaign(%q) = %+v, want %+v", want.ID, got, want)
	}
}

func wantTotals(t *testing.T, s store.Store, want store.Totals) {
	t.Helper()
	if got := must(s.Totals(t.Context()))(t); got != want {
		t.Fatalf("Totals = %+v, want %+v", got, want)
	}
}

func testUnknown(t *testing.T, f Factory) {
	s := open(t, f)
	wantCampaign(t, s, store.Campaign{ID: "never-seen", Goal: 100000000})
	wantTotals(t, s, store.Totals{})
	if cs := must(s.Campaigns(t.Context(), 10))(t); len(cs) != 0 {
		t.Fatalf("Campaigns after a lookup = %+v, want none", cs)
	}
}

func testTouch(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := t.Context()
	for range 3 {
		if err := s.Touch(ctx, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Touch(ctx, "y"); err != nil {
		t.Fatal(err)
	}
	wantTotals(t, s, store.Totals{Campaigns: 2})
	wantCampaign(t, s, store.Fresh("x"))
	cs := must(s.Campaigns(ctx, 10))(t)
	if len(cs) != 2 || cs[0] != store.Fresh("x") || cs[1] != store.Fresh("y") {
		t.Fatalf("Campaigns = %+v", cs)
	}
}

func testDonate(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := t.Context()
	if err := s.Touch(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	c := must(s.Donate(ctx, donation("x", 100, "Ann", 0)))(t)
	if want := (store.Campaign{ID: "x", Goal: store.DefaultGoal, Raised: 100, Donors: 1}); c != want {
		t.Fatalf("Donate = %+v, want %+v", c, want)
	}
	c = must(s.Donate(ctx, donation("x", 250, "Bob", 1)))(t)
	if c.Raised != 350 || c.Donors != 2 {
		t.Fatalf("second Donate = %+v", c)
	}
	wantCampaign(t, s, store.Campaign{ID: "x", Goal: store.DefaultGoal, Raised: 350, Donors: 2})
	wantTotals(t, s, store.Totals{Raised: 350, Campaigns: 1})
}

func testDistinctDonors(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := t.Context()
	for i, name := range []string{"Ann", "Ann", "ann", "Ann ", "Bob", "Ann"} {
		must(s.Donate(ctx, donation("x", 10, name, i)))(t)
	}
	// Names compare exactly: "Ann", "ann", "Ann " and "Bob".
	wantCampaign(t, s, store.Campaign{ID: "x", Goal: store.DefaultGoal, Raised: 60, Donors: 4})
	// Donors are per campaign.
	must(s.Donate(ctx, donation("y", 5, "Ann", 9)))(t)
	wantCampaign(t, s, store.Campaign{ID: "y", Goal: store.DefaultGoal, Raised: 5, Donors: 1})
}

func testDonateCreates(t *testing.T, f Factory) {
	s := open(t, f)
	must(s.Donate(t.Context(), donation("new", 7, "Ann", 0)))(t)
	wantTotals(t, s, store.Totals{Raised: 7, Campaigns: 1})
	cs := must(s.Campaigns(t.Context(), 10))(t)
	if len(cs) != 1 || cs[0].ID != "new" || cs[0].Raised != 7 {
		t.Fatalf("Campaigns = %+v", cs)
	}
}

func testRecent(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := t.Context()
	if r := must(s.Recent(ctx, 10))(t); len(r) != 0 {
		t.Fatalf("Recent on an empty store = %+v", r)
	}
	for i := range 12 {
		d := donation(fmt.Sprintf("c%d", i%3), int64(i+1), fmt.Sprintf("donor %d", i), i)
		if i == 5 {
			d.Source = "bank_transfer"
		}
		must(s.Donate(ctx, d))(t)
	}
	r := must(s.Recent(ctx, 10))(t)
	if len(r) != 10 {
		t.Fatalf("Recent(10) returned %d donations", len(r))
	}
	for k, d := range r {
		i := 11 - k
		want := donation(fmt.Sprintf("c%d", i%3), int64(i+1), fmt.Sprintf("donor %d", i), i)
		if i == 5 {
			want.Source = "bank_transfer"
		}
		if d.CampaignID != want.CampaignID || d.Amount != want.Amount || d.Donor != want.Donor ||
			d.Source != want.Source || !d.At.Equal(want.At) || d.At.Location() != time.UTC {
			t.Fatalf("Recent[%d] = %+v, want %+v", k, d, want)
		}
	}
	if r := must(s.Recent(ctx, 3))(t); len(r) != 3 || r[0].Amount != 12 {
		t.Fatalf("Recent(3) = %+v", r)
	}
}

func testCampaigns(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := t.Context()
	must(s.Donate(ctx, donation("b", 5, "Ann", 0)))(t)
	must(s.Donate(ctx, donation("a", 5, "Ann", 1)))(t)
	must(s.Donate(ctx, donation("c", 50, "Ann", 2)))(t)
	if err := s.Touch(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	cs := must(s.Campaigns(ctx, 10))(t)
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	if got := strings.Join(ids, ","); got != "c,a,b,d" {
		t.Fatalf("Campaigns order = %s, want c,a,b,d", got)
	}
	if cs := must(s.Campaigns(ctx, 2))(t); len(cs) != 2 {
		t.Fatalf("Campaigns(2) returned %d", len(cs))
	}
}

func testInvalid(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := t.Context()
	for _, d := range []store.Donation{
		donation("x", 0, "Ann", 0),
		donation("x", -5, "Ann", 0),
		donation("x", 5, "", 0),
		donation("x", 5, strings.Repeat("é", 101), 0),
	} {
		if _, err := s.Donate(ctx, d); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Donate(%+v) = %v, want ErrInvalid", d, err)
		}
	}
	wantTotals(t, s, store.Totals{})
	if r := must(s.Recent(ctx, 10))(t); len(r) != 0 {
		t.Fatalf("Recent after invalid donations = %+v", r)
	}
	// 100 code points is the limit, however many bytes they take.
	must(s.Donate(ctx, donation("x", 5, strings.Repeat("🎉", 100), 0)))(t)
}

func testOverflow(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := t.Context()
	must(s.Donate(ctx, donation("x", math.MaxInt64-10, "Ann", 0)))(t)
	if _, err := s.Donate(ctx, donation("x", 11, "Bob", 1)); !errors.Is(err, store.ErrOverflow) {
		t.Fatalf("overflowing the campaign: %v, want ErrOverflow", err)
	}
	// Across campaigns too: the sum of all totals must fit.
	if _, err := s.Donate(ctx, donation("y", 11, "Bob", 1)); !errors.Is(err, store.ErrOverflow) {
		t.Fatalf("overflowing the totals: %v, want ErrOverflow", err)
	}
	wantCampaign(t, s, store.Campaign{ID: "x", Goal: store.DefaultGoal, Raised: math.MaxInt64 - 10, Donors: 1})
	wantCampaign(t, s, store.Fresh("y"))
	wantTotals(t, s, store.Totals{Raised: math.MaxInt64 - 10, Campaigns: 1})
	must(s.Donate(ctx, donation("x", 10, "Bob", 2)))(t)
}

func testUnicode(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := t.Context()
	id := "école/été 🎉 \"quoted\" ' ; DROP TABLE campaigns; --"
	donor := "Zoë 😀 \x00 nul"
	must(s.Donate(ctx, donation(id, 3, donor, 0)))(t)
	wantCampaign(t, s, store.Campaign{ID: id, Goal: store.DefaultGoal, Raised: 3, Donors: 1})
	r := must(s.Recent(ctx, 1))(t)
	if len(r) != 1 || r[0].Donor != donor || r[0].CampaignID != id {
		t.Fatalf("Recent = %+v", r)
	}
	// An id that differs only in case is another campaign.
	wantCampaign(t, s, store.Fresh(strings.ToUpper(id)))
}

func testConcurrent(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := t.Context()
	const workers, each = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Every worker donates as two names shared by all.
				d := donation("hot", int64(w+1), fmt.Sprintf("donor %d", i%2), i)
				if _, err := s.Donate(ctx, d); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var sum int64
	for w := range workers {
		sum += int64(w+1) * each
	}
	wantCampaign(t, s, store.Campaign{ID: "hot", Goal: store.DefaultGoal, Raised: sum, Donors: 2})
	wantTotals(t, s, store.Totals{Raised: sum, Campaigns: 1})
}

func testCanceled(t *testing.T, f Factory) {
	s := open(t, f)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Donate(ctx, donation("x", 5, "Ann", 0)); err == nil {
		t.Fatal("Donate with a canceled context succeeded")
	}
	wantTotals(t, s, store.Totals{})
	must(s.Donate(t.Context(), donation("x", 5, "Ann", 0)))(t)
}

func testClosed(t *testing.T, f Factory) {
	s := f.New(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Donate(t.Context(), donation("x", 5, "Ann", 0)); err == nil {
		t.Fatal("Donate after Close succeeded")
	}
	if _, err := s.Campaign(t.Context(), "x"); err == nil {
		t.Fatal("Campaign after Close succeeded")
	}
}

func testReopen(t *testing.T, f Factory) {
	if f.Reopen == nil {
		t.Skip("the store does not persist")
	}
	s := f.New(t)
	ctx := t.Context()
	if err := s.Touch(ctx, "quiet"); err != nil {
		t.Fatal(err)
	}
	must(s.Donate(ctx, donation("x", 100, "Ann", 0)))(t)
	must(s.Donate(ctx, store.Donation{CampaignID: "x", Amount: 1000, Donor: "Carol", Source: "bank_transfer", At: at0.Add(time.Second)}))(t)
	s = f.Reopen(t, s)
	t.Cleanup(func() { s.Close() })
	wantCampaign(t, s, store.Campaign{ID: "x", Goal: store.DefaultGoal, Raised: 1100, Donors: 2})
	wantTotals(t, s, store.Totals{Raised: 1100, Campaigns: 2})
	r := must(s.Recent(ctx, 10))(t)
	if len(r) != 2 || r[0].Donor != "Carol" || r[0].Source != "bank_transfer" || !r[0].At.Equal(at0.Add(time.Second)) || r[1].Donor != "Ann" {
		t.Fatalf("Recent after reopen = %+v", r)
	}
	// Donors stay distinct across the restart.
	c := must(s.Donate(ctx, donation("x", 1, "Ann", 2)))(t)
	if c.Donors != 2 || c.Raised != 1101 {
		t.Fatalf("Donate after reopen = %+v", c)
	}
}
