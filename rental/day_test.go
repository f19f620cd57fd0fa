package rental

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDateStartIsShanghaiMidnight(t *testing.T) {
	d := Date{2026, time.May, 1}
	want := time.Date(2026, 4, 30, 16, 0, 0, 0, time.UTC)
	if got := d.Start(); !got.Equal(want) || got.Location() != time.UTC {
		t.Fatalf("Start = %v, want %v in UTC", got, want)
	}
	// 23:59 UTC on 30 April is already 1 May in Shanghai.
	if got := DateOf(time.Date(2026, 4, 30, 23, 59, 0, 0, time.UTC)); got != d {
		t.Errorf("DateOf = %v, want %v", got, d)
	}
	if got := DateOf(time.Date(2026, 4, 30, 15, 59, 0, 0, time.UTC)); got != d.AddDays(-1) {
		t.Errorf("DateOf before Shanghai midnight = %v", got)
	}
	if got := (Date{2026, time.December, 31}).AddDays(1); got != (Date{2027, time.January, 1}) {
		t.Errorf("AddDays over the year = %v", got)
	}
}

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		from, to string
		days     int
		wantErr  bool
	}{
		{"2026-05-01", "2026-05-02", 1, false},
		{"2026-02-27", "2026-03-02", 3, false},
		{"2026-05-01", "2026-05-01", 0, true},
		{"2026-05-02", "2026-05-01", 0, true},
		{"2026-05-01", "2026-09-01", 0, true}, // more than MaxRentalDays
		{"2026-5-1", "2026-05-02", 0, true},
		{"", "2026-05-02", 0, true},
	}
	for _, tt := range tests {
		p, err := ParsePeriod(tt.from, tt.to)
		if tt.wantErr {
			if ErrorKind(err) != KindInvalid {
				t.Errorf("ParsePeriod(%q, %q) err = %v, want invalid", tt.from, tt.to, err)
			}
			continue
		}
		if err != nil || p.Days() != tt.days {
			t.Errorf("ParsePeriod(%q, %q) = %v days %d, %v; want %d days", tt.from, tt.to, p, p.Days(), err, tt.days)
		}
	}
}

func TestPeriodBlock(t *testing.T) {
	p, _ := ParsePeriod("2026-05-01", "2026-05-03")
	start, end := p.Block(3 * time.Hour)
	if !start.Equal(time.Date(2026, 4, 30, 16, 0, 0, 0, time.UTC)) || !end.Equal(time.Date(2026, 5, 2, 19, 0, 0, 0, time.UTC)) {
		t.Errorf("Block = %v–%v", start, end)
	}
	if !p.End().Equal(time.Date(2026, 5, 2, 16, 0, 0, 0, time.UTC)) {
		t.Errorf("End = %v", p.End())
	}
}

func TestDateJSON(t *testing.T) {
	p := Period{From: Date{2026, time.May, 1}, To: Date{2026, time.May, 3}}
	b, err := json.Marshal(p)
	if err != nil || string(b) != `{"From":"2026-05-01","To":"2026-05-03"}` {
		t.Fatalf("%s %v", b, err)
	}
	var back Period
	if err := json.Unmarshal(b, &back); err != nil || back != p {
		t.Errorf("round trip %v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"From":"May 1"}`), &back); err == nil {
		t.Error("bad date accepted")
	}
}

func TestFenString(t *testing.T) {
	for f, want := range map[Fen]string{0: "¥0.00", 5: "¥0.05", 1250: "¥12.50", -30: "-¥0.30", Yuan(100): "¥100.00"} {
		if got := f.String(); got != want {
			t.Errorf("Fen(%d) = %q, want %q", int64(f), got, want)
		}
	}
}
