package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/plumehq/plume/internal/testenv"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plumehq/plume/examples/donations/store"
	"github.com/plumehq/plume/examples/donations/store/storetest"
	"github.com/plumehq/plume/internal/leakcheck"
)

// pgBaseURL is the test database: $PLUME_POSTGRES_URL, else database
// "test" on 127.0.0.1:5432 as user postgres (trust auth).
func pgBaseURL() string {
	if u := os.Getenv("PLUME_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=5"
}

// requirePostgres skips the test, with a one-line reason, when PostgreSQL
// is unreachable (fails under PLUME_REQUIRE_SERVICES=1).
func requirePostgres(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgBaseURL())
	if err != nil {
		msg := strings.Join(strings.Fields(err.Error()), " ")
		testenv.SkipOrFail(t, "PostgreSQL is not reachable: "+msg)
		return
	}
	conn.Close(ctx)
}

// pgSchemaURL creates a schema of its own for one test, dropped at
// cleanup, and returns the URL of a store in it. It skips the test when
// PostgreSQL is unreachable (fails under PLUME_REQUIRE_SERVICES=1).
func pgSchemaURL(t *testing.T) string {
	t.Helper()
	requirePostgres(t)
	base := pgBaseURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	schema := "storetest_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// pgAt remembers where a store lives, for Reopen.
type pgAt struct {
	*store.Postgres
	url string
}

func openPostgres(t *testing.T, u string) *pgAt {
	t.Helper()
	s, err := store.OpenPostgres(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return &pgAt{s, u}
}

func TestPostgres(t *testing.T) {
	leakcheck.Check(t)
	requirePostgres(t)
	storetest.Run(t, storetest.Factory{
		New: func(t *testing.T) store.Store { return openPostgres(t, pgSchemaURL(t)) },
		Reopen: func(t *testing.T, s store.Store) store.Store {
			u := s.(*pgAt).url
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openPostgres(t, u)
		},
	})
}

// Two nodes sharing a database: stores opened at the same time on an empty
// schema, then donating at the same time to the same new campaigns, with
// the same new donor names. Every campaign is created once, every donor
// counted once, every cent added.
func TestPostgresTwoNodes(t *testing.T) {
	leakcheck.Check(t)
	u := pgSchemaURL(t)
	ctx := t.Context()

	// Creating the schema concurrently must not fail.
	nodes := make([]*pgAt, 3)
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes))
	for i := range nodes {
		wg.Go(func() {
			s, err := store.OpenPostgres(ctx, u)
			if err != nil {
				errs <- err
				return
			}
			nodes[i] = &pgAt{s, u}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, s := range nodes {
		t.Cleanup(func() { s.Close() })
	}

	const campaigns, rounds = 4, 25
	at := time.Date(2026, 11, 27, 19, 0, 0, 0, time.UTC)
	start := make(chan struct{})
	errs = make(chan error, len(nodes)*campaigns*rounds)
	for n, s := range nodes {
		wg.Go(func() {
			<-start
			for r := range rounds {
				for c := range campaigns {
					// Donor r is new to campaign c on every node at once.
					d := store.Donation{CampaignID: fmt.Sprintf("c%d", c), Amount: int64(n + 1), Donor: fmt.Sprintf("donor %d", r), At: at}
					if _, err := s.Donate(ctx, d); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	perCampaign := int64(rounds * (1 + 2 + 3))
	for _, s := range nodes {
		for c := range campaigns {
			got, err := s.Campaign(ctx, fmt.Sprintf("c%d", c))
			if err != nil {
				t.Fatal(err)
			}
			want := store.Campaign{ID: fmt.Sprintf("c%d", c), Goal: store.DefaultGoal, Raised: perCampaign, Donors: rounds}
			if got != want {
				t.Fatalf("Campaign = %+v, want %+v", got, want)
			}
		}
		tot, err := s.Totals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := (store.Totals{Raised: campaigns * perCampaign, Campaigns: campaigns}); tot != want {
			t.Fatalf("Totals = %+v, want %+v", tot, want)
		}
	}
	r, err := nodes[2].Recent(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(r) != len(nodes)*campaigns*rounds {
		t.Fatalf("Recent: %d donations, want %d", len(r), len(nodes)*campaigns*rounds)
	}
}

func TestOpenPostgresErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, u := range []string{
		"postgres://127.0.0.1:5432/test?pool_max_conns=nope",
		// Nothing listens on port 1.
		"postgres://postgres@127.0.0.1:1/test?connect_timeout=2",
	} {
		if s, err := store.OpenPostgres(ctx, u); err == nil {
			s.Close()
			t.Errorf("OpenPostgres(%q) succeeded", u)
		}
	}
}

func TestIsPostgresURL(t *testing.T) {
	for s, want := range map[string]bool{
		"postgres://h/db":       true,
		"postgresql://h/db":     true,
		"donations.db":          false,
		":memory:":              false,
		"./postgres://weird.db": false,
	} {
		if got := store.IsPostgresURL(s); got != want {
			t.Errorf("IsPostgresURL(%q) = %v", s, got)
		}
	}
}

// Nodes of a cluster open the same database; the tables are created by the
// first one. search_path keeps them in a schema of their own.
func ExampleOpenPostgres() {
	ctx := context.Background()
	s, err := store.OpenPostgres(ctx, "postgres://postgres@127.0.0.1:5432/donations?search_path=demo")
	if err != nil {
		panic(err)
	}
	defer s.Close()
	c, err := s.Donate(ctx, store.Donation{CampaignID: "x", Amount: 100, Donor: "Ann", At: time.Now()})
	if err != nil {
		panic(err)
	}
	fmt.Printf("raised %d from %d donors\n", c.Raised, c.Donors)
}
