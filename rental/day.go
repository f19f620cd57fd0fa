package rental

import (
	"fmt"
	"sync"
	"time"
	_ "time/tzdata" // day boundaries must be Shanghai's even on a host without zoneinfo
)

// shanghai is the shop's zone: rentals are counted in its calendar days.
var shanghai = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		// Unreachable with the embedded tzdata; China has had no DST since
		// 1991, so a fixed +08:00 zone gives the same day boundaries.
		return time.FixedZone("CST", 8*60*60)
	}
	return loc
})

// Shanghai returns the Asia/Shanghai location. Times are stored in UTC and
// shown, and cut into days, in this zone.
func Shanghai() *time.Location { return shanghai() }

// MaxRentalDays bounds one order's period, so that availability and
// reservation queries stay small and a typo ("2062") is refused.
const MaxRentalDays = 90

// Date is a calendar day in Asia/Shanghai. Rentals are whole days.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the Shanghai calendar day of an instant.
func DateOf(t time.Time) Date {
	y, m, d := t.In(Shanghai()).Date()
	return Date{y, m, d}
}

// ParseDate reads "2006-01-02".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, Errorf("rental.ParseDate", KindInvalid, "日期格式应为 2006-01-02 (date must look like 2006-01-02): %q", s)
	}
	return Date{t.Year(), t.Month(), t.Day()}, nil
}

func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// MarshalText writes "2006-01-02", so dates read naturally in JSON.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads "2006-01-02".
func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

// Start is the instant the day begins in Shanghai, in UTC.
func (d Date) Start() time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, Shanghai()).UTC()
}

// AddDays returns the day n days later (earlier when n < 0).
func (d Date) AddDays(n int) Date {
	t := time.Date(d.Year, d.Month, d.Day+n, 0, 0, 0, 0, time.UTC)
	return Date{t.Year(), t.Month(), t.Day()}
}

// Before reports whether d is an earlier day than e.
func (d Date) Before(e Date) bool { return daysBetween(d, e) > 0 }

// daysBetween counts calendar days from a to b; midnight-to-midnight in UTC
// so that no zone rule can make a day 23 or 25 hours long.
func daysBetween(a, b Date) int {
	ta := time.Date(a.Year, a.Month, a.Day, 0, 0, 0, 0, time.UTC)
	tb := time.Date(b.Year, b.Month, b.Day, 0, 0, 0, 0, time.UTC)
	return int(tb.Sub(ta) / (24 * time.Hour))
}

// Period is the days [From, To): From is the first day of the rental, To the
// day after the last one (the day the gear is due back by its first minute).
type Period struct {
	From Date
	To   Date
}

// NewPeriod checks that [from, to) holds 1 to MaxRentalDays days.
func NewPeriod(from, to Date) (Period, error) {
	const op = "rental.NewPeriod"
	p := Period{From: from, To: to}
	n := daysBetween(from, to)
	switch {
	case from.IsZero() || to.IsZero():
		return Period{}, Errorf(op, KindInvalid, "请选择开始和结束日期 (from and to are required)")
	case n < 1:
		return Period{}, Errorf(op, KindInvalid, "结束日期必须晚于开始日期 (to must be after from): %s–%s", from, to)
	case n > MaxRentalDays:
		return Period{}, Errorf(op, KindInvalid, "一次最多租 %d 天 (at most %d days per rental)", MaxRentalDays, MaxRentalDays)
	}
	return p, nil
}

// ParsePeriod reads the from/to query parameters of the availability route.
func ParsePeriod(from, to string) (Period, error) {
	f, err := ParseDate(from)
	if err != nil {
		return Period{}, err
	}
	t, err := ParseDate(to)
	if err != nil {
		return Period{}, err
	}
	return NewPeriod(f, t)
}

// Days is the number of rented days.
func (p Period) Days() int { return daysBetween(p.From, p.To) }

// Start is the first instant of the rental (UTC).
func (p Period) Start() time.Time { return p.From.Start() }

// End is the instant the gear is due back (UTC): the start of day To.
func (p Period) End() time.Time { return p.To.Start() }

// Block is the interval a unit is held for this rental: the rented days plus
// the cleaning buffer after them. Because rentals are whole days, any buffer
// keeps the unit out for every day it touches — a buffer of a few hours
// already makes day To unavailable to the next customer.
func (p Period) Block(buffer time.Duration) (start, end time.Time) {
	return p.Start(), p.End().Add(buffer)
}

func (p Period) String() string { return p.From.String() + "/" + p.To.String() }
