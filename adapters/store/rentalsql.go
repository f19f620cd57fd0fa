package store

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tacklegate/tacklegate/rental"
)

// Helpers shared by the rental tables (catalog, orders, evidence).

// rentalErr classifies a storage error: a rental.Error passes through, a
// missing row is not_found, a duplicate key or a refused double booking is a
// conflict, and anything else means the database did not serve us.
func rentalErr(op string, err error) error {
	var re *rental.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return err
	case errors.Is(err, gorm.ErrRecordNotFound):
		return rental.Wrap(op, rental.KindNotFound, "找不到 (not found)", err)
	case isReservationOverlap(err):
		return rental.Wrap(op, rental.KindConflict, "所选日期已被预订，请换个日期 (already booked for these dates)", err)
	case isDuplicateKey(err):
		return rental.Wrap(op, rental.KindConflict, "与现有记录冲突 (conflicts with an existing record)", err)
	}
	return rental.Wrap(op, rental.KindUnavailable, "", err)
}

// isDuplicateKey reports a unique or primary key violation.
func isDuplicateKey(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// isReservationOverlap reports the database refusing a double booking: the
// exclusion constraint on PostgreSQL, the trigger on SQLite.
func isReservationOverlap(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23P01" // exclusion_violation
	}
	return err != nil && strings.Contains(err.Error(), "reservation_overlap")
}

// lockForUpdate adds FOR UPDATE on PostgreSQL. SQLite has no row locks and
// needs none: a write transaction there (BEGIN IMMEDIATE) already excludes
// every other writer.
func (db *DB) lockForUpdate(q *gorm.DB) *gorm.DB {
	if db.Dialect == Postgres {
		return q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	return q
}

// timePtr stores a zero time as NULL.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// timeVal reads a nullable time back as UTC, zero for NULL.
func timeVal(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// sqlDate is a calendar day in a DATE column. It is written as
// "2006-01-02" text, so no session time zone can shift it a day, and read
// from whatever the driver returns (PostgreSQL: time.Time; SQLite: the
// driver parses DATE columns to time.Time too, or leaves text).
type sqlDate rental.Date

func (d sqlDate) Value() (driver.Value, error) { return rental.Date(d).String(), nil }

func (d *sqlDate) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*d = sqlDate{v.Year(), v.Month(), v.Day()}
		return nil
	case string:
		return d.scanText(v)
	case []byte:
		return d.scanText(string(v))
	}
	return fmt.Errorf("sqlDate: cannot scan %T", src)
}

func (d *sqlDate) scanText(s string) error {
	if len(s) >= 10 {
		s = s[:10]
	}
	v, err := rental.ParseDate(s)
	if err != nil {
		return err
	}
	*d = sqlDate(v)
	return nil
}
