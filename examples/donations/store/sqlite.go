package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver: pure Go, no cgo
)

// SQLite is a Store in an SQLite database file, or in memory.
type SQLite struct {
	db     *sql.DB
	closed atomic.Bool
}

var _ Store = (*SQLite)(nil)

// schema is version 1 of the database. The totals row keeps the figures
// across campaigns, updated in the same transactions as the rows they sum,
// so that Totals costs one read and can refuse an overflow up front.
const schema = `
CREATE TABLE IF NOT EXISTS campaigns (
	id         TEXT PRIMARY KEY,
	goal       INTEGER NOT NULL,
	raised     INTEGER NOT NULL DEFAULT 0,
	donors     INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS donations (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	campaign_id TEXT NOT NULL REFERENCES campaigns (id),
	amount      INTEGER NOT NULL CHECK (amount > 0),
	donor       TEXT NOT NULL,
	source      TEXT NOT NULL DEFAULT '',
	at          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS donations_by_donor ON donations (campaign_id, donor);
CREATE TABLE IF NOT EXISTS totals (
	k         INTEGER PRIMARY KEY CHECK (k = 0),
	raised    INTEGER NOT NULL,
	campaigns INTEGER NOT NULL
);
INSERT INTO totals (k, raised, campaigns) VALUES (0, 0, 0) ON CONFLICT (k) DO NOTHING;
PRAGMA user_version = 1;
`

// OpenSQLite opens (creating if need be) the SQLite database at path;
// ":memory:" is a database that lives as long as the Store.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	if path == "" {
		return nil, errors.New("store: empty database path")
	}
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("store: database path %q: '?' is not allowed", path)
	}
	// Writers take the lock when their transaction begins, so two of them
	// never deadlock upgrading a read lock.
	dsn := path + "?_txlock=immediate&_pragma=foreign_keys(1)"
	if path != ":memory:" {
		dsn += "&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// One connection: an in-memory database exists once per connection,
	// and a demo's writes are far from needing more.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return &SQLite{db: db}, nil
}

// Campaign implements Store.
func (s *SQLite) Campaign(ctx context.Context, id string) (Campaign, error) {
	if s.closed.Load() {
		return Campaign{}, ErrClosed
	}
	c := Campaign{ID: id}
	err := s.db.QueryRowContext(ctx, `SELECT goal, raised, donors FROM campaigns WHERE id = ?`, id).
		Scan(&c.Goal, &c.Raised, &c.Donors)
	if errors.Is(err, sql.ErrNoRows) {
		return Fresh(id), nil
	}
	if err != nil {
		return Campaign{}, fmt.Errorf("store: campaign %q: %w", id, err)
	}
	return c, nil
}

// Touch implements Store.
func (s *SQLite) Touch(ctx context.Context, id string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := touch(ctx, tx, id)
		return err
	})
}

// touch creates the campaign if it does not exist, counting it in totals.
func touch(ctx context.Context, tx *sql.Tx, id string) (created bool, err error) {
	res, err := tx.ExecContext(ctx,
		`INSERT INTO campaigns (id, goal, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		id, DefaultGoal, time.Now().UnixMicro())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return false, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE totals SET campaigns = campaigns + 1 WHERE k = 0`)
	return true, err
}

// Donate implements Store.
func (s *SQLite) Donate(ctx context.Context, d Donation) (Campaign, error) {
	if err := d.Validate(); err != nil {
		return Campaign{}, err
	}
	if s.closed.Load() {
		return Campaign{}, ErrClosed
	}
	c := Campaign{ID: d.CampaignID}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := touch(ctx, tx, d.CampaignID); err != nil {
			return err
		}
		var raised, total int64
		var seen bool
		err := tx.QueryRowContext(ctx, `SELECT
				(SELECT raised FROM campaigns WHERE id = ?1),
				(SELECT raised FROM totals WHERE k = 0),
				EXISTS (SELECT 1 FROM donations WHERE campaign_id = ?1 AND donor = ?2)`,
			d.CampaignID, d.Donor).Scan(&raised, &total, &seen)
		if err != nil {
			return err
		}
		if _, err := addTotal(raised, d.Amount); err != nil {
			return err
		}
		if _, err := addTotal(total, d.Amount); err != nil {
			return err
		}
		newDonor := 0
		if !seen {
			newDonor = 1
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO donations (campaign_id, amount, donor, source, at) VALUES (?, ?, ?, ?, ?)`,
			d.CampaignID, d.Amount, d.Donor, d.Source, d.At.UnixMicro()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE totals SET raised = raised + ? WHERE k = 0`, d.Amount); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx,
			`UPDATE campaigns SET raised = raised + ?, donors = donors + ? WHERE id = ? RETURNING goal, raised, donors`,
			d.Amount, newDonor, d.CampaignID).Scan(&c.Goal, &c.Raised, &c.Donors)
	})
	if err != nil {
		if errors.Is(err, ErrOverflow) || errors.Is(err, ErrClosed) {
			return Campaign{}, err
		}
		return Campaign{}, fmt.Errorf("store: donate to %q: %w", d.CampaignID, err)
	}
	return c, nil
}

// Totals implements Store.
func (s *SQLite) Totals(ctx context.Context) (Totals, error) {
	if s.closed.Load() {
		return Totals{}, ErrClosed
	}
	var t Totals
	err := s.db.QueryRowContext(ctx, `SELECT raised, campaigns FROM totals WHERE k = 0`).Scan(&t.Raised, &t.Campaigns)
	if err != nil {
		return Totals{}, fmt.Errorf("store: totals: %w", err)
	}
	return t, nil
}

// Recent implements Store.
func (s *SQLite) Recent(ctx context.Context, n int) ([]Donation, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if n <= 0 {
		return []Donation{}, nil
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT campaign_id, amount, donor, source, at FROM donations ORDER BY id DESC LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("store: recent: %w", err)
	}
	defer rows.Close()
	out := make([]Donation, 0, n)
	for rows.Next() {
		var d Donation
		var at int64
		if err := rows.Scan(&d.CampaignID, &d.Amount, &d.Donor, &d.Source, &at); err != nil {
			return nil, fmt.Errorf("store: recent: %w", err)
		}
		d.At = time.UnixMicro(at).UTC()
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: recent: %w", err)
	}
	return out, nil
}

// Campaigns implements Store.
func (s *SQLite) Campaigns(ctx context.Context, n int) ([]Campaign, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if n <= 0 {
		return []Campaign{}, nil
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, goal, raised, donors FROM campaigns ORDER BY raised DESC, id LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("store: campaigns: %w", err)
	}
	defer rows.Close()
	out := make([]Campaign, 0)
	for rows.Next() {
		var c Campaign
		if err := rows.Scan(&c.ID, &c.Goal, &c.Raised, &c.Donors); err != nil {
			return nil, fmt.Errorf("store: campaigns: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: campaigns: %w", err)
	}
	return out, nil
}

// Close implements Store. It waits for the statements in flight.
func (s *SQLite) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.db.Close()
}

func (s *SQLite) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
