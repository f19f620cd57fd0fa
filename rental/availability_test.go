package rental

import (
	"testing"
	"time"
)

func mustPeriod(t testing.TB, from, to string) Period {
	t.Helper()
	p, err := ParsePeriod(from, to)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestComputeAvailability(t *testing.T) {
	units := []Unit{
		{ID: 3, ItemID: 1, Status: UnitAvailable},
		{ID: 1, ItemID: 1, Status: UnitAvailable},
		{ID: 2, ItemID: 1, Status: UnitAvailable},
		{ID: 4, ItemID: 1, Status: UnitMaintenance},
		{ID: 5, ItemID: 1, Status: UnitRetired},
		{ID: 9, ItemID: 2, Status: UnitAvailable}, // another item's unit never counts
	}
	hold := func(u UnitID, from, to string, buffer time.Duration) Reservation {
		s, e := mustPeriod(t, from, to).Block(buffer)
		return Reservation{UnitID: u, OrderID: 99, Start: s, End: e}
	}
	// Unit 1 is out 1–3 May with a 4-hour buffer: back in use from 3 May 04:00.
	held := []Reservation{hold(1, "2026-05-01", "2026-05-03", 4*time.Hour), hold(2, "2026-05-10", "2026-05-12", 0)}
	tests := []struct {
		name     string
		from, to string
		buffer   time.Duration
		free     []UnitID
	}{
		{"overlapping unit 1", "2026-05-02", "2026-05-04", 0, []UnitID{2, 3}},
		{"starts on the day unit 1's buffer ends", "2026-05-03", "2026-05-04", 0, []UnitID{2, 3}},
		{"starts the day after", "2026-05-04", "2026-05-05", 0, []UnitID{1, 2, 3}},
		{"ends as unit 2's rental begins, no buffer", "2026-05-08", "2026-05-10", 0, []UnitID{1, 2, 3}},
		{"own buffer runs into unit 2's rental", "2026-05-08", "2026-05-10", time.Hour, []UnitID{1, 3}},
		{"before everything", "2026-04-20", "2026-04-30", 24 * time.Hour, []UnitID{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := ComputeAvailability(1, units, held, mustPeriod(t, tt.from, tt.to), tt.buffer)
			if a.Units != 3 {
				t.Errorf("Units = %d, want 3 (maintenance and retired excluded)", a.Units)
			}
			if a.Free != len(tt.free) || len(a.FreeUnits) != len(tt.free) {
				t.Fatalf("free %v, want %v", a.FreeUnits, tt.free)
			}
			for i := range tt.free {
				if a.FreeUnits[i] != tt.free[i] {
					t.Fatalf("free %v, want %v", a.FreeUnits, tt.free)
				}
			}
		})
	}
	a := ComputeAvailability(1, units, held, mustPeriod(t, "2026-05-01", "2026-05-05"), 0)
	want := []int{2, 2, 2, 3}
	for i, d := range a.Days {
		if d.Free != want[i] || d.Date != mustPeriod(t, "2026-05-01", "2026-05-02").From.AddDays(i) {
			t.Errorf("day %d: %+v, want free %d", i, d, want[i])
		}
	}
}
