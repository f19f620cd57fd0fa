package rental

import (
	"slices"
	"time"
)

// Reservation holds a unit for an order over [Start, End): the rented days
// plus the cleaning buffer after them. Reservations of cancelled and expired
// orders are released and no longer hold anything.
type Reservation struct {
	UnitID  UnitID
	OrderID OrderID
	Start   time.Time
	End     time.Time
}

// Overlaps reports whether r holds its unit at any instant of [start, end).
func (r Reservation) Overlaps(start, end time.Time) bool {
	return r.Start.Before(end) && start.Before(r.End)
}

// Availability says how many units of an item can be rented over a period.
type Availability struct {
	ItemID ItemID
	Period Period
	// Units counts the item's rentable units (maintenance and retired
	// units never count).
	Units int
	// Free counts the units free for the whole period and the cleaning
	// buffer after it: what an order for this period can get.
	Free      int
	FreeUnits []UnitID // in the order Reserve would hand them out
	// Days says, for each day of the period, how many units are not out on
	// that day, for a date picker. It ignores the buffer after the period,
	// so a day may show a unit that a rental ending that day cannot get.
	Days []DayAvailability
}

// DayAvailability is one day of a date picker.
type DayAvailability struct {
	Date Date
	Free int
}

// ComputeAvailability works out availability from an item's units and the
// active reservations of those units. A unit is free when it is rentable and
// no reservation overlaps [start of From, start of To + buffer): the new
// rental's own buffer must not run into the next customer's rental, and
// every stored reservation already includes the buffer after it.
func ComputeAvailability(item ItemID, units []Unit, held []Reservation, p Period, buffer time.Duration) Availability {
	a := Availability{ItemID: item, Period: p}
	byUnit := map[UnitID][]Reservation{}
	for _, r := range held {
		byUnit[r.UnitID] = append(byUnit[r.UnitID], r)
	}
	free := func(u UnitID, start, end time.Time) bool {
		for _, r := range byUnit[u] {
			if r.Overlaps(start, end) {
				return false
			}
		}
		return true
	}
	rentable := make([]UnitID, 0, len(units))
	for _, u := range units {
		if u.ItemID == item && u.Rentable() {
			rentable = append(rentable, u.ID)
		}
	}
	slices.Sort(rentable)
	a.Units = len(rentable)
	start, end := p.Block(buffer)
	for _, u := range rentable {
		if free(u, start, end) {
			a.FreeUnits = append(a.FreeUnits, u)
		}
	}
	a.Free = len(a.FreeUnits)
	for i := range p.Days() {
		d := p.From.AddDays(i)
		ds, de := d.Start(), d.AddDays(1).Start()
		n := 0
		for _, u := range rentable {
			if free(u, ds, de) {
				n++
			}
		}
		a.Days = append(a.Days, DayAvailability{Date: d, Free: n})
	}
	return a
}
