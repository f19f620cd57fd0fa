package rental

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseClock(t *testing.T) {
	for s, want := range map[string]ClockTime{"06:30": 390, "00:00": 0, "24:00": 1440} {
		if got, err := ParseClock(s); err != nil || got != want {
			t.Errorf("ParseClock(%q) = %d, %v", s, got, err)
		}
	}
	for _, s := range []string{"6:30", "24:01", "12:60", "ab:cd", ""} {
		if _, err := ParseClock(s); ErrorKind(err) != KindInvalid {
			t.Errorf("ParseClock(%q) err = %v", s, err)
		}
	}
}

func TestOpeningHours(t *testing.T) {
	h := EveryDay(6*60, 20*60)
	h[time.Monday] = DayHours{Closed: true}
	sh := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, Shanghai())
		if err != nil {
			t.Fatal(err)
		}
		return tm.UTC()
	}
	// 2026-05-03 is a Sunday, 2026-05-04 a Monday.
	for s, want := range map[string]bool{
		"2026-05-03 05:59": false, "2026-05-03 06:00": true, "2026-05-03 19:59": true,
		"2026-05-03 20:00": false, "2026-05-04 10:00": false,
	} {
		if got := h.IsOpen(sh(s)); got != want {
			t.Errorf("IsOpen(%s) = %v", s, got)
		}
	}
	next, ok := h.NextOpening(sh("2026-05-03 21:00"))
	if !ok || !next.Equal(sh("2026-05-05 06:00")) {
		t.Errorf("NextOpening after Sunday close = %v (skips closed Monday)", next.In(Shanghai()))
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(h[0])
	if string(b) != `{"open":"06:00","close":"20:00"}` {
		t.Errorf("json %s", b)
	}
	var back DayHours
	if err := json.Unmarshal(b, &back); err != nil || back != h[0] {
		t.Errorf("round trip %+v %v", back, err)
	}
	h[time.Friday] = DayHours{Open: 20 * 60, Close: 6 * 60}
	if ErrorKind(h.Validate()) != KindInvalid {
		t.Error("closing before opening accepted")
	}
	var closed OpeningHours
	for i := range closed {
		closed[i].Closed = true
	}
	if _, ok := closed.NextOpening(sh("2026-05-03 21:00")); ok {
		t.Error("always-closed shop opens")
	}
}

func TestShopSettingsValidate(t *testing.T) {
	if err := DefaultShopSettings().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if DefaultShopSettings().PaymentTimeout != 15*time.Minute {
		t.Error("default payment timeout is not 15 minutes")
	}
	for name, mut := range map[string]func(*ShopSettings){
		"negative buffer":   func(s *ShopSettings) { s.CleaningBuffer = -time.Hour },
		"tiny timeout":      func(s *ShopSettings) { s.PaymentTimeout = time.Second },
		"negative late fee": func(s *ShopSettings) { s.LateFeePerDay = -1 },
		"long grace":        func(s *ShopSettings) { s.GracePeriod = 8 * 24 * time.Hour },
	} {
		s := DefaultShopSettings()
		mut(&s)
		if ErrorKind(s.Validate()) != KindInvalid {
			t.Errorf("%s accepted", name)
		}
	}
	s := DefaultShopSettings()
	s.DepositWaived["gold"] = true
	if !s.WaivesDeposit("gold") || s.WaivesDeposit("silver") || s.WaivesDeposit(TierGuest) {
		t.Error("WaivesDeposit")
	}
}
