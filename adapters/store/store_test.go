package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

func openFresh(t *testing.T, tg storetest.Target) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), tg.Fresh(t), store.Options{CreateDir: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrateAndStatus(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := openFresh(t, tg)
			if db.Dialect != tg.Name {
				t.Fatalf("dialect = %q, want %q", db.Dialect, tg.Name)
			}
			before, err := db.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(before) == 0 {
				t.Fatal("no migrations listed")
			}
			for _, m := range before {
				if m.Applied {
					t.Errorf("migration %d applied before Migrate", m.Version)
				}
			}
			applied, err := db.Migrate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(applied) != len(before) {
				t.Errorf("applied %d migrations, want %d", len(applied), len(before))
			}
			again, err := db.Migrate(ctx)
			if err != nil || len(again) != 0 {
				t.Errorf("second Migrate applied %d (err %v), want 0", len(again), err)
			}
			if n, err := db.Pending(ctx); err != nil || n != 0 {
				t.Errorf("Pending = %d, %v", n, err)
			}
			after, _ := db.Status(ctx)
			for _, m := range after {
				if !m.Applied || m.AppliedAt.IsZero() {
					t.Errorf("migration %d %s not applied after Migrate", m.Version, m.Name)
				}
			}
		})
	}
}

// TestDialectsHaveSameMigrations keeps SQLite and PostgreSQL schemas in step:
// every version exists for both, under the same name.
func TestDialectsHaveSameMigrations(t *testing.T) {
	names := map[string][]string{}
	for _, d := range []string{"sqlite", "postgres"} {
		files, err := filepath.Glob(filepath.Join("migrations", d, "*.sql"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s migrations: %v (%d files)", d, err, len(files))
		}
		for _, f := range files {
			names[d] = append(names[d], filepath.Base(f))
		}
	}
	if strings.Join(names["sqlite"], ",") != strings.Join(names["postgres"], ",") {
		t.Errorf("migration files differ:\nsqlite:   %v\npostgres: %v", names["sqlite"], names["postgres"])
	}
}

func TestSQLitePragmas(t *testing.T) {
	db := openFresh(t, storetest.Target{Name: "sqlite"})
	for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000"} {
		var got string
		if err := db.SQL.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", pragma, err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %q, want %q", pragma, got, want)
		}
	}
}

func TestMetaAndDataKey(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := openFresh(t, tg)
			if _, err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := db.Meta(ctx, "nothing"); ok || err != nil {
				t.Fatalf("Meta of unset key: ok=%v err=%v", ok, err)
			}
			if err := db.SetMeta(ctx, "k", "v1"); err != nil {
				t.Fatal(err)
			}
			if err := db.SetMeta(ctx, "k", "v2"); err != nil {
				t.Fatal(err)
			}
			if v, ok, err := db.Meta(ctx, "k"); v != "v2" || !ok || err != nil {
				t.Fatalf("Meta = %q %v %v, want v2", v, ok, err)
			}

			key := []byte("0123456789abcdef0123456789abcdef")
			if err := db.UseDataKey(ctx, key); err != nil {
				t.Fatalf("first UseDataKey: %v", err)
			}
			if err := db.UseDataKey(ctx, key); err != nil {
				t.Fatalf("same key again: %v", err)
			}
			other := []byte("fedcba9876543210fedcba9876543210")
			err := db.UseDataKey(ctx, other)
			if rental.ErrorKind(err) != rental.KindInvalid || !strings.Contains(err.Error(), "TACKLEGATE_DATA_KEY") {
				t.Fatalf("other key: got %v, want an invalid error naming TACKLEGATE_DATA_KEY", err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	_, err := store.Open(ctx, "mysql://x", store.Options{})
	if rental.ErrorKind(err) != rental.KindInvalid {
		t.Errorf("bad scheme: %v", err)
	}
	missing := "sqlite:///" + filepath.Join(t.TempDir(), "nope", "x.db")
	_, err = store.Open(ctx, missing, store.Options{CreateDir: false})
	if rental.ErrorKind(err) != rental.KindUnavailable || !strings.Contains(rental.ErrorMessage(err), "migrate up") {
		t.Errorf("missing sqlite file without CreateDir: %v", err)
	}
	_, err = store.Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", store.Options{})
	if rental.ErrorKind(err) != rental.KindUnavailable {
		t.Errorf("unreachable postgres: %v", err)
	}
}
