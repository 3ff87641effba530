// Package store keeps the donations demo's campaigns and donations.
//
// [Store] is deliberately small, so that a database other than SQLite (say
// PostgreSQL) can serve it later; package storetest holds the tests every
// implementation must pass. Amounts are integers in the currency's minor
// unit (cents).
package store

import (
	"context"
	"errors"
	"math"
	"time"
	"unicode/utf8"
)

// DefaultGoal is the goal of every campaign: 100,000,000 (one million in
// cents), as the demo contract fixes it.
const DefaultGoal int64 = 100_000_000

// MaxDonorLen is the longest donor name, in Unicode code points.
const MaxDonorLen = 100

// Errors a Store returns.
var (
	// ErrInvalid: a donation with an amount that is not positive, an empty
	// donor name, or a name longer than MaxDonorLen. Nothing is stored.
	ErrInvalid = errors.New("store: invalid donation")
	// ErrOverflow: the donation would take a total past what an int64
	// holds. Nothing is stored.
	ErrOverflow = errors.New("store: total out of range")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store: closed")
)

// Campaign is a campaign's figures. Its JSON form is the contract's
// {id, goal, raised, donors}; the fields are in alphabetical order so that
// it encodes byte for byte as Phoenix's Jason does.
type Campaign struct {
	// Donors is the number of distinct donor names (compared exactly).
	Donors int64 `json:"donors"`
	// Goal is the campaign's goal; always DefaultGoal for now.
	Goal int64 `json:"goal"`
	// ID names the campaign: the part of the topic after "campaign:".
	ID string `json:"id"`
	// Raised is the sum of the campaign's donations.
	Raised int64 `json:"raised"`
}

// Fresh returns the figures of a campaign with no donations.
func Fresh(id string) Campaign { return Campaign{ID: id, Goal: DefaultGoal} }

// Donation is one recorded donation.
type Donation struct {
	CampaignID string
	Amount     int64
	Donor      string
	// Source says where it came from: "" for the campaign channel,
	// "bank_transfer" for the HTTP API.
	Source string
	// At is when it was made; stores keep microseconds, in UTC.
	At time.Time
}

// Validate reports ErrInvalid for a donation the contract rejects.
func (d Donation) Validate() error {
	if d.Amount <= 0 || d.Donor == "" || utf8.RuneCountInString(d.Donor) > MaxDonorLen {
		return ErrInvalid
	}
	return nil
}

// Totals are the figures across all known campaigns.
type Totals struct {
	// Raised is the sum of all donations.
	Raised int64
	// Campaigns is the number of known campaigns.
	Campaigns int64
}

// Store keeps campaigns and their donations. A campaign becomes known when
// it is touched (a channel joined it) or a donation is recorded for it.
// Implementations are safe for concurrent use.
type Store interface {
	// Campaign returns a campaign's figures; an unknown campaign gets
	// Fresh(id) and stays unknown.
	Campaign(ctx context.Context, id string) (Campaign, error)
	// Touch makes a campaign known, if it is not yet.
	Touch(ctx context.Context, id string) error
	// Donate records d and updates its campaign's totals in one transaction
	// (creating the campaign if need be), and returns the new figures. It
	// returns ErrInvalid or ErrOverflow, having stored nothing, for a
	// donation it cannot take.
	Donate(ctx context.Context, d Donation) (Campaign, error)
	// Totals returns the figures across all campaigns.
	Totals(ctx context.Context) (Totals, error)
	// Recent returns the n most recent donations across campaigns, newest
	// first.
	Recent(ctx context.Context, n int) ([]Donation, error)
	// Campaigns returns up to n known campaigns, those that raised most
	// first (then by id).
	Campaigns(ctx context.Context, n int) ([]Campaign, error)
	// Close releases the store.
	Close() error
}

// addTotal adds amount to total, or reports ErrOverflow.
func addTotal(total, amount int64) (int64, error) {
	if amount > 0 && total > math.MaxInt64-amount {
		return 0, ErrOverflow
	}
	return total + amount, nil
}
