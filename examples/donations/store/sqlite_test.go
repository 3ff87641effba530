package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/plumehq/plume/examples/donations/store"
	"github.com/plumehq/plume/examples/donations/store/storetest"
)

func TestSQLiteFile(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		New: func(t *testing.T) store.Store {
			return openSQLite(t, filepath.Join(t.TempDir(), "donations.db"))
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			path := s.(*sqliteAt).path
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openSQLite(t, path)
		},
	})
}

func TestSQLiteMemory(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		New: func(t *testing.T) store.Store { return openSQLite(t, ":memory:") },
	})
}

// sqliteAt remembers where a store lives, for Reopen.
type sqliteAt struct {
	*store.SQLite
	path string
}

func openSQLite(t *testing.T, path string) store.Store {
	t.Helper()
	s, err := store.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return &sqliteAt{s, path}
}

func TestOpenSQLiteErrors(t *testing.T) {
	for _, path := range []string{"", "a?b.db", filepath.Join(t.TempDir(), "missing", "dir", "x.db")} {
		if s, err := store.OpenSQLite(context.Background(), path); err == nil {
			s.Close()
			t.Errorf("OpenSQLite(%q) succeeded", path)
		}
	}
}
