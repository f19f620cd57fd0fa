// Package store implements tacklegate's persistence with gorm on SQLite (the
// embedded default, pure Go) or PostgreSQL, chosen by the scheme of
// TACKLEGATE_DATABASE_URL.
//
// The schema is owned by versioned SQL migrations (goose), one folder per
// dialect, embedded in the binary. gorm maps rows; it never creates or alters
// tables, because AutoMigrate can neither rename nor drop and would let the
// two databases drift apart.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"

	"github.com/tacklegate/tacklegate/config"
	"github.com/tacklegate/tacklegate/rental"
)

//go:embed migrations
var migrations embed.FS

// Dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DB is an open database with its dialect.
type DB struct {
	Gorm    *gorm.DB
	SQL     *sql.DB
	Dialect string
	logger  *slog.Logger
	sealer  *sealer // set by UseDataKey

	memberEvents bool // link changes enqueue events for the member directory
	orderEvents  bool // order transitions enqueue events for the rental webhook
}

// Options tune Open.
type Options struct {
	Logger *slog.Logger
	// CreateDir lets Open create the folder of a SQLite file. Off for
	// read-only commands such as `migrate status`.
	CreateDir bool
}

// Open connects to the database named by a TACKLEGATE_DATABASE_URL value and
// checks that it answers. It does not migrate.
func Open(ctx context.Context, databaseURL string, opt Options) (*DB, error) {
	const op = "store.Open"
	logger := opt.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	driver, dsn, err := config.ParseDatabaseURL(databaseURL)
	if err != nil {
		return nil, rental.Wrap(op, rental.KindInvalid, "TACKLEGATE_DATABASE_URL "+err.Error(), err)
	}
	gcfg := &gorm.Config{
		Logger:                 gormlogger.Discard, // failures are logged once, where handled
		SkipDefaultTransaction: true,               // our writes open their own transactions
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
	var gdb *gorm.DB
	switch driver {
	case SQLite:
		if dsn != ":memory:" {
			dir := filepath.Dir(dsn)
			if opt.CreateDir {
				if err := os.MkdirAll(dir, 0o750); err != nil {
					return nil, rental.Wrap(op, rental.KindUnavailable, "cannot create the database folder "+dir, err)
				}
			} else if _, err := os.Stat(dsn); err != nil {
				return nil, rental.Wrap(op, rental.KindUnavailable, "no database at "+dsn+" (run `tacklegate migrate up` first)", err)
			}
		}
		gdb, err = gorm.Open(sqlite.Open(sqliteDSN(dsn)), gcfg)
	case Postgres:
		gdb, err = gorm.Open(postgres.New(postgres.Config{DSN: dsn}), gcfg)
	}
	if err != nil {
		return nil, rental.Wrap(op, rental.KindUnavailable, "cannot open the database", err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, rental.Wrap(op, rental.KindInternal, "cannot open the database", err)
	}
	switch driver {
	case SQLite:
		// SQLite has one writer at a time; WAL lets readers go on meanwhile.
		// A handful of connections is plenty and keeps lock waits short.
		sqlDB.SetMaxOpenConns(8)
		sqlDB.SetMaxIdleConns(8)
	case Postgres:
		sqlDB.SetMaxOpenConns(25)
		sqlDB.SetMaxIdleConns(10)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	db := &DB{Gorm: gdb, SQL: sqlDB, Dialect: driver, logger: logger.With("component", "store")}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.Ping(pingCtx); err != nil {
		sqlDB.Close()
		return nil, rental.Wrap(op, rental.KindUnavailable, "the database does not answer", err)
	}
	return db, nil
}

// sqliteDSN adds the pragmas every connection needs: WAL for concurrent
// readers, a busy timeout instead of immediate SQLITE_BUSY, enforced foreign
// keys, and BEGIN IMMEDIATE so a write transaction takes the write lock up
// front rather than failing when it upgrades.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	if path == ":memory:" {
		// Every pooled connection would get its own empty database otherwise.
		return "file::memory:?cache=shared&" + q.Encode()
	}
	return "file:" + path + "?" + q.Encode()
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	return db.SQL.PingContext(ctx)
}

// Close closes the connection pool.
func (db *DB) Close() error { return db.SQL.Close() }

// migrator builds a goose provider over this dialect's embedded migrations.
func (db *DB) migrator() (*goose.Provider, error) {
	dir := "migrations/" + db.Dialect
	fsys, err := fs.Sub(migrations, dir)
	if err != nil {
		return nil, err
	}
	// Work lands from parallel branches, each with its own block of
	// numbers, so a database may have seen 00050 before 00040 exists: apply
	// such a late arrival instead of refusing to start.
	opts := []goose.ProviderOption{goose.WithAllowOutofOrder(true)}
	dialect := goose.DialectSQLite3
	if db.Dialect == Postgres {
		dialect = goose.DialectPostgres
		// Several instances may start at once; an advisory lock makes one of
		// them migrate while the others wait.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	return goose.NewProvider(dialect, db.SQL, fsys, opts...)
}

// MigrationStatus is one migration and whether it is applied.
type MigrationStatus struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time
}

// Migrate applies every pending migration and returns the ones it applied.
func (db *DB) Migrate(ctx context.Context) ([]MigrationStatus, error) {
	const op = "store.Migrate"
	p, err := db.migrator()
	if err != nil {
		return nil, rental.Wrap(op, rental.KindInternal, "cannot read the migrations", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		var partial *goose.PartialError
		if errors.As(err, &partial) && partial.Failed != nil {
			return nil, rental.Wrap(op, rental.KindInternal,
				fmt.Sprintf("migration %d (%s) failed; earlier ones were applied", partial.Failed.Source.Version, filepath.Base(partial.Failed.Source.Path)), err)
		}
		return nil, rental.Wrap(op, rental.KindInternal, "migrating the database failed", err)
	}
	var applied []MigrationStatus
	for _, r := range results {
		applied = append(applied, MigrationStatus{Version: r.Source.Version, Name: filepath.Base(r.Source.Path), Applied: true})
	}
	for _, m := range applied {
		db.logger.Info("migration applied", "version", m.Version, "name", m.Name)
	}
	return applied, nil
}

// Status lists every migration, applied or pending, in order.
func (db *DB) Status(ctx context.Context) ([]MigrationStatus, error) {
	const op = "store.Status"
	p, err := db.migrator()
	if err != nil {
		return nil, rental.Wrap(op, rental.KindInternal, "cannot read the migrations", err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, rental.Wrap(op, rental.KindInternal, "cannot read the migration status", err)
	}
	out := make([]MigrationStatus, 0, len(st))
	for _, s := range st {
		out = append(out, MigrationStatus{
			Version: s.Source.Version, Name: filepath.Base(s.Source.Path),
			Applied: s.State == goose.StateApplied, AppliedAt: s.AppliedAt,
		})
	}
	return out, nil
}

// Pending reports how many migrations are not applied yet.
func (db *DB) Pending(ctx context.Context) (int, error) {
	st, err := db.Status(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range st {
		if !s.Applied {
			n++
		}
	}
	return n, nil
}
