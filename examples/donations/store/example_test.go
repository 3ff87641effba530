package store_test

import (
	"context"
	"fmt"
	"time"

	"github.com/plumehq/plume/examples/donations/store"
)

func ExampleOpenSQLite() {
	ctx := context.Background()
	s, err := store.OpenSQLite(ctx, ":memory:")
	if err != nil {
		panic(err)
	}
	defer s.Close()

	// Donations are stored with their campaign's totals, in one transaction.
	for _, donor := range []string{"Ann", "Bob", "Ann"} {
		if _, err := s.Donate(ctx, store.Donation{CampaignID: "x", Amount: 100, Donor: donor, At: time.Now()}); err != nil {
			panic(err)
		}
	}
	c, _ := s.Campaign(ctx, "x")
	fmt.Printf("raised %d from %d donors\n", c.Raised, c.Donors)

	_, err = s.Donate(ctx, store.Donation{CampaignID: "x", Amount: 0, Donor: "Cy"})
	fmt.Println(err)
	// Output:
	// raised 300 from 2 donors
	// store: invalid donation
}
