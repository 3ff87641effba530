package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is a Store in a PostgreSQL database, which several demo nodes
// can share: every donation is one transaction that locks its campaign's
// row and then the totals row, always in that order, so that concurrent
// donations from any number of nodes serialize per campaign without
// deadlocks, and a donor's first donation is recognized by an insert into
// the donors table, which the primary key keeps exact even when two nodes
// record the same new donor at the same time.
type Postgres struct {
	pool   *pgxpool.Pool
	closed atomic.Bool
}

var _ Store = (*Postgres)(nil)

// IsPostgresURL reports whether a -db value names a PostgreSQL database
// (a postgres:// or postgresql:// URL) rather than an SQLite file.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// pgSchema is the PostgreSQL schema, created on start. Campaign ids and
// donor names are bytea, not text: PostgreSQL text cannot hold NUL, which
// a JSON string can, and bytes compare exactly (no collation), as the
// contract and the SQLite store compare them. The single totals row keeps
// the figures across campaigns, as in SQLite.
const pgSchema = `
CREATE TABLE IF NOT EXISTS campaigns (
	id         bytea PRIMARY KEY,
	goal       bigint NOT NULL,
	raised     bigint NOT NULL DEFAULT 0,
	donors     bigint NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS donations (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	campaign_id bytea NOT NULL REFERENCES campaigns (id),
	amount      bigint NOT NULL CHECK (amount > 0),
	donor       bytea NOT NULL,
	source      text NOT NULL DEFAULT '',
	at          timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS donors (
	campaign_id bytea NOT NULL REFERENCES campaigns (id),
	donor       bytea NOT NULL,
	PRIMARY KEY (campaign_id, donor)
);
CREATE TABLE IF NOT EXISTS totals (
	k         int PRIMARY KEY CHECK (k = 0),
	raised    bigint NOT NULL,
	campaigns bigint NOT NULL
);
INSERT INTO totals (k, raised, campaigns) VALUES (0, 0, 0) ON CONFLICT (k) DO NOTHING;
`

// pgSchemaLock is the advisory lock key under which nodes starting
// together create the schema one at a time (concurrent CREATE TABLE IF
// NOT EXISTS can fail on PostgreSQL's catalog).
const pgSchemaLock = 0x706c756d65 // "plume"

// OpenPostgres connects to the PostgreSQL database at url (for example
// "postgres://postgres@127.0.0.1:5432/donations") and creates the tables
// if they do not exist. Other pgx connection parameters go in the URL's
// query: "search_path=demo" keeps the tables in the schema "demo",
// "pool_max_conns=8" sizes the pool.
func OpenPostgres(ctx context.Context, url string) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgSchemaLock)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, pgSchema)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: postgres: create schema: %w", err)
	}
	return &Postgres{pool: pool}, nil
}

// Campaign implements Store.
func (s *Postgres) Campaign(ctx context.Context, id string) (Campaign, error) {
	if s.closed.Load() {
		return Campaign{}, ErrClosed
	}
	c := Campaign{ID: id}
	err := s.pool.QueryRow(ctx, `SELECT goal, raised, donors FROM campaigns WHERE id = $1`, []byte(id)).
		Scan(&c.Goal, &c.Raised, &c.Donors)
	if errors.Is(err, pgx.ErrNoRows) {
		return Fresh(id), nil
	}
	if err != nil {
		return Campaign{}, fmt.Errorf("store: campaign %q: %w", id, err)
	}
	return c, nil
}

// Touch implements Store.
func (s *Postgres) Touch(ctx context.Context, id string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	// Most joins are to a known campaign: answer those without a
	// transaction.
	var known bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM campaigns WHERE id = $1)`, []byte(id)).Scan(&known); err != nil {
		return fmt.Errorf("store: touch %q: %w", id, err)
	}
	if known {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := pgTouch(ctx, tx, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: touch %q: %w", id, err)
	}
	return nil
}

// pgTouch creates the campaign if it does not exist, counting it in
// totals. A concurrent transaction creating the same campaign makes the
// insert wait for it, then do nothing, so a campaign is counted once.
func pgTouch(ctx context.Context, tx pgx.Tx, id string) (created bool, err error) {
	tag, err := tx.Exec(ctx,
		`INSERT INTO campaigns (id, goal) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, []byte(id), DefaultGoal)
	if err != nil || tag.RowsAffected() == 0 {
		return false, err
	}
	_, err = tx.Exec(ctx, `UPDATE totals SET campaigns = campaigns + 1 WHERE k = 0`)
	return true, err
}

// Donate implements Store.
func (s *Postgres) Donate(ctx context.Context, d Donation) (Campaign, error) {
	if err := d.Validate(); err != nil {
		return Campaign{}, err
	}
	if s.closed.Load() {
		return Campaign{}, ErrClosed
	}
	id := []byte(d.CampaignID)
	c := Campaign{ID: d.CampaignID}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := pgTouch(ctx, tx, d.CampaignID); err != nil {
			return err
		}
		// Lock order: the campaign, then the totals.
		var raised, total int64
		if err := tx.QueryRow(ctx, `SELECT raised FROM campaigns WHERE id = $1 FOR UPDATE`, id).Scan(&raised); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT raised FROM totals WHERE k = 0 FOR UPDATE`).Scan(&total); err != nil {
			return err
		}
		if _, err := addTotal(raised, d.Amount); err != nil {
			return err
		}
		if _, err := addTotal(total, d.Amount); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx,
			`INSERT INTO donors (campaign_id, donor) VALUES ($1, $2) ON CONFLICT DO NOTHING`, id, []byte(d.Donor))
		if err != nil {
			return err
		}
		newDonor := tag.RowsAffected()
		if _, err := tx.Exec(ctx,
			`INSERT INTO donations (campaign_id, amount, donor, source, at) VALUES ($1, $2, $3, $4, $5)`,
			id, d.Amount, []byte(d.Donor), d.Source, d.At.UTC().Truncate(time.Microsecond)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE totals SET raised = raised + $1 WHERE k = 0`, d.Amount); err != nil {
			return err
		}
		return tx.QueryRow(ctx,
			`UPDATE campaigns SET raised = raised + $1, donors = donors + $2 WHERE id = $3 RETURNING goal, raised, donors`,
			d.Amount, newDonor, id).Scan(&c.Goal, &c.Raised, &c.Donors)
	})
	if err != nil {
		if errors.Is(err, ErrOverflow) {
			return Campaign{}, err
		}
		return Campaign{}, fmt.Errorf("store: donate to %q: %w", d.CampaignID, err)
	}
	return c, nil
}

// Totals implements Store.
func (s *Postgres) Totals(ctx context.Context) (Totals, error) {
	if s.closed.Load() {
		return Totals{}, ErrClosed
	}
	var t Totals
	if err := s.pool.QueryRow(ctx, `SELECT raised, campaigns FROM totals WHERE k = 0`).Scan(&t.Raised, &t.Campaigns); err != nil {
		return Totals{}, fmt.Errorf("store: totals: %w", err)
	}
	return t, nil
}

// Recent implements Store.
func (s *Postgres) Recent(ctx context.Context, n int) ([]Donation, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if n <= 0 {
		return []Donation{}, nil
	}
	rows, err := s.pool.Query(ctx,
		`SELECT campaign_id, amount, donor, source, at FROM donations ORDER BY id DESC LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("store: recent: %w", err)
	}
	out := make([]Donation, 0, n)
	var id, donor []byte
	var d Donation
	_, err = pgx.ForEachRow(rows, []any{&id, &d.Amount, &donor, &d.Source, &d.At}, func() error {
		d.CampaignID, d.Donor, d.At = string(id), string(donor), d.At.UTC()
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: recent: %w", err)
	}
	return out, nil
}

// Campaigns implements Store.
func (s *Postgres) Campaigns(ctx context.Context, n int) ([]Campaign, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if n <= 0 {
		return []Campaign{}, nil
	}
	rows, err := s.pool.Query(ctx,
		`SELECT id, goal, raised, donors FROM campaigns ORDER BY raised DESC, id LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("store: campaigns: %w", err)
	}
	out := make([]Campaign, 0)
	var id []byte
	var c Campaign
	_, err = pgx.ForEachRow(rows, []any{&id, &c.Goal, &c.Raised, &c.Donors}, func() error {
		c.ID = string(id)
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: campaigns: %w", err)
	}
	return out, nil
}

// Close implements Store. It waits for the queries in flight.
func (s *Postgres) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.pool.Close()
	return nil
}
