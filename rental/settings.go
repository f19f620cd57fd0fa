package rental

import (
	"fmt"
	"time"
)

// ClockTime is a time of day in Shanghai, in minutes after midnight; 24:00
// (1440) is allowed as a closing time.
type ClockTime int

// ParseClock reads "06:30".
func ParseClock(s string) (ClockTime, error) {
	var h, m int
	if n, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || n != 2 || len(s) != 5 || h < 0 || m < 0 || m > 59 || h*60+m > 24*60 {
		return 0, Errorf("rental.ParseClock", KindInvalid, "时间格式应为 HH:MM (time of day must look like 06:30): %q", s)
	}
	return ClockTime(h*60 + m), nil
}

func (c ClockTime) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

// MarshalText writes "06:30", so settings and the API read naturally.
func (c ClockTime) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads "06:30".
func (c *ClockTime) UnmarshalText(b []byte) error {
	v, err := ParseClock(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// DayHours are one weekday's opening hours. Opening past midnight (a night
// shop) is not supported: Close is at most 24:00.
type DayHours struct {
	Closed bool      `json:"closed,omitempty"`
	Open   ClockTime `json:"open"`
	Close  ClockTime `json:"close"`
}

// OpeningHours are the shop's hours per weekday, indexed by time.Weekday
// (Sunday first), in Shanghai time.
type OpeningHours [7]DayHours

// Validate checks that every open day opens before it closes.
func (h OpeningHours) Validate() error {
	for wd, d := range h {
		if d.Closed {
			continue
		}
		if d.Open < 0 || d.Close > 24*60 || d.Open >= d.Close {
			return Errorf("rental.OpeningHours.Validate", KindInvalid, "%s 的营业时间不正确 (opening hours of %s: %s–%s)",
				weekdayLabels[wd], time.Weekday(wd), d.Open, d.Close)
		}
	}
	return nil
}

var weekdayLabels = [7]string{"周日", "周一", "周二", "周三", "周四", "周五", "周六"}

// IsOpen reports whether the shop is open at t.
func (h OpeningHours) IsOpen(t time.Time) bool {
	local := t.In(Shanghai())
	d := h[local.Weekday()]
	now := ClockTime(local.Hour()*60 + local.Minute())
	return !d.Closed && d.Open <= now && now < d.Close
}

// NextOpening returns the first instant at or after t when the shop is open,
// looking a week ahead; ok is false when it is closed every day.
func (h OpeningHours) NextOpening(t time.Time) (at time.Time, ok bool) {
	if h.IsOpen(t) {
		return t, true
	}
	day := DateOf(t)
	for i := 0; i <= 7; i++ {
		d := day.AddDays(i)
		start := d.Start()
		dh := h[start.In(Shanghai()).Weekday()]
		if dh.Closed {
			continue
		}
		open := start.Add(time.Duration(dh.Open) * time.Minute)
		if !open.Before(t) {
			return open, true
		}
	}
	return time.Time{}, false
}

// EveryDay builds hours that are the same on all seven days.
func EveryDay(open, close ClockTime) OpeningHours {
	var h OpeningHours
	for i := range h {
		h[i] = DayHours{Open: open, Close: close}
	}
	return h
}

// ShopSettings are the owner's rules for rentals. An order copies the ones
// that decide its money (buffer, late fee, grace) when it is placed, so that
// changing them later does not change the terms a customer agreed to.
type ShopSettings struct {
	// CleaningBuffer keeps a unit out after each rental for checking, drying
	// and cleaning before the next customer.
	CleaningBuffer time.Duration
	// PaymentTimeout is how long an order holds its units unpaid; after it
	// the order expires and the units are free again.
	PaymentTimeout time.Duration
	// LateFeePerDay is charged per order for each started day late beyond
	// GracePeriod, taken from the deposit.
	LateFeePerDay Fen
	GracePeriod   time.Duration
	// DepositWaived lists the member tiers that rent without a deposit.
	DepositWaived map[Tier]bool
	Hours         OpeningHours
	UpdatedAt     time.Time
}

// DefaultShopSettings are used until the owner saves settings: no buffer,
// 15 minutes to pay, ¥20 a day late with 12 hours' grace (gear due at
// midnight may come back the next morning), open 06:00–20:00 every day.
func DefaultShopSettings() ShopSettings {
	return ShopSettings{
		PaymentTimeout: 15 * time.Minute,
		LateFeePerDay:  Yuan(20),
		GracePeriod:    12 * time.Hour,
		DepositWaived:  map[Tier]bool{},
		Hours:          EveryDay(6*60, 20*60),
	}
}

// Validate checks the owner's settings.
func (s ShopSettings) Validate() error {
	const op = "rental.ShopSettings.Validate"
	const week = 7 * 24 * time.Hour
	switch {
	case s.CleaningBuffer < 0 || s.CleaningBuffer > week:
		return Errorf(op, KindInvalid, "清洁间隔应在 0 到 7 天之间 (cleaning buffer must be 0 to 7 days)")
	case s.PaymentTimeout < time.Minute || s.PaymentTimeout > 2*time.Hour:
		// WeChat Pay needs at least a minute; units held longer than two
		// hours by unpaid orders would block paying customers.
		return Errorf(op, KindInvalid, "支付超时应在 1 分钟到 2 小时之间 (payment timeout must be 1 minute to 2 hours)")
	case s.LateFeePerDay < 0:
		return Errorf(op, KindInvalid, "逾期费不能为负 (late fee cannot be negative)")
	case s.GracePeriod < 0 || s.GracePeriod > week:
		return Errorf(op, KindInvalid, "宽限期应在 0 到 7 天之间 (grace period must be 0 to 7 days)")
	}
	return s.Hours.Validate()
}

// WaivesDeposit reports whether members of tier t rent without a deposit.
func (s ShopSettings) WaivesDeposit(t Tier) bool { return s.DepositWaived[t] }
