package wxsim

import (
	"sync"
	"time"
)

// Clock is the simulator's notion of "now". Every TTL in the simulator
// (tokens, codes, reply windows, media, quotas) reads it, so tests move time
// forward with Advance instead of sleeping (rule S21).
//
// Now is base() plus the accumulated offset: with a real-time base the demo
// behaves like the real servers, and a test that passes a frozen base gets a
// clock that moves only when told to.
type Clock struct {
	mu     sync.Mutex
	base   func() time.Time
	offset time.Duration
}

// NewClock returns a clock reading base (time.Now when nil) plus any Advance.
func NewClock(base func() time.Time) *Clock {
	if base == nil {
		base = time.Now
	}
	return &Clock{base: base}
}

// Now returns the simulated current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base().Add(c.offset)
}

// Advance moves the clock forward by d (a negative d is ignored: time in the
// simulator never runs backwards, like the servers it stands in for).
func (c *Clock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// FixedTime returns a base for NewClock (or Config.Now) that never moves by
// itself, for tests that want exact TTL boundaries.
func FixedTime(t time.Time) func() time.Time {
	return func() time.Time { return t }
}

// shanghai is the zone WeChat counts daily quotas in. LoadLocation can fail on
// a machine without tzdata; a fixed +08:00 zone is equivalent for China (no DST).
var shanghai = time.FixedZone("CST", 8*3600)

// dayKey identifies the quota day (midnight to midnight, Beijing time).
func dayKey(t time.Time) string { return t.In(shanghai).Format("2006-01-02") }
