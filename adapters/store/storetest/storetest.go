// Package storetest gives each test its own empty database: a SQLite file in
// the test's temp folder always, and a fresh PostgreSQL schema when
// TACKLEGATE_TEST_POSTGRES_URL is set (CI sets it). Tests in different
// packages can therefore run in parallel against one server.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for schema set-up
)

// PostgresEnv names the variable that points tests at a PostgreSQL server.
const PostgresEnv = "TACKLEGATE_TEST_POSTGRES_URL"

// Target is one database a test can run against.
type Target struct {
	Name string // "sqlite" or "postgres"
}

// SQLiteURL returns the URL of a new SQLite file in t's temp folder.
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite://" + filepath.Join(t.TempDir(), "tacklegate.db") // TempDir is absolute: sqlite:///tmp/…
}

// PostgresURL returns the URL of a new, empty schema on the test PostgreSQL
// server, dropped when the test ends. It skips the test when no server is
// configured.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		SkipOrFailInCI(t, PostgresEnv+" not set: PostgreSQL tests skipped")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "t_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", PostgresEnv, err)
	}
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	q := u.Query()
	q.Set("search_path", schema) // pgx sends unknown parameters as run-time settings
	u.RawQuery = q.Encode()
	return u.String()
}

// SkipOrFailInCI skips a test that needs an outside service, except in CI
// (CI is set), where the service must be there: a skip would hide that the
// test never ran.
func SkipOrFailInCI(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s, but CI is set: .ci/run must start the service", reason)
	}
	t.Skip(reason)
}

// Targets returns SQLite always and PostgreSQL when configured. Run a
// subtest per target: PostgreSQL subtests skip cleanly without a server.
func Targets() []Target {
	return []Target{{Name: "sqlite"}, {Name: "postgres"}}
}

// Fresh resolves a target to a fresh database URL for t.
func (tg Target) Fresh(t testing.TB) string {
	t.Helper()
	if tg.Name == "postgres" {
		return PostgresURL(t)
	}
	return SQLiteURL(t)
}
