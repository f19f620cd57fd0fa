package rental

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// InspectionID identifies an inspection.
type InspectionID int64

// InspectionKind says when the gear was inspected.
type InspectionKind string

const (
	InspectionPickup InspectionKind = "pickup" // handed to the customer
	InspectionReturn InspectionKind = "return" // taken back
)

// Valid reports whether k is a known kind.
func (k InspectionKind) Valid() bool { return k == InspectionPickup || k == InspectionReturn }

// Inspection is staff's record of every unit of an order at pickup or
// return, with photos, which the customer confirms in the mini-program.
// The record itself is chained into the order's evidence (EvidenceID), as
// is the confirmation, so neither can be edited unnoticed.
type Inspection struct {
	ID      InspectionID
	OrderID OrderID
	Kind    InspectionKind
	Staff   Actor
	At      time.Time
	Notes   string
	Units   []UnitInspection

	EvidenceID        EvidenceID // the record in the evidence chain
	ConfirmedAt       time.Time  // zero until the customer confirms
	ConfirmedBy       MemberID
	ConfirmEvidenceID EvidenceID
}

// UnitInspection is one unit's condition as found.
type UnitInspection struct {
	UnitID    UnitID       `json:"unit_id"`
	Condition Condition    `json:"condition"`
	Notes     string       `json:"notes,omitempty"`
	Photos    []EvidenceID `json:"photos,omitempty"` // evidence items of the order, kind photo
}

// Confirmed reports whether the customer has confirmed the inspection.
func (in *Inspection) Confirmed() bool { return !in.ConfirmedAt.IsZero() }

// Validate checks the inspection against its order: every unit of the
// order inspected exactly once, and the order at the right point (pickup
// before or at handing over, return when the gear is back or coming back).
func (in *Inspection) Validate(o *Order) error {
	const op = "rental.Inspection.Validate"
	in.Notes = strings.TrimSpace(in.Notes)
	switch {
	case !in.Kind.Valid():
		return Errorf(op, KindInvalid, "未知的验货类型 (unknown inspection kind) %q", in.Kind)
	case !strings.HasPrefix(string(in.Staff), "staff:") && !strings.HasPrefix(string(in.Staff), "owner:"):
		return Errorf(op, KindForbidden, "只有店员可以验货 (only staff inspect gear)")
	case in.At.IsZero():
		return Errorf(op, KindInternal, "inspection without a time")
	case utf8.RuneCountInString(in.Notes) > 2000:
		return Errorf(op, KindInvalid, "备注最多 2000 字 (notes are at most 2000 characters)")
	case in.OrderID != o.ID:
		return Errorf(op, KindInvalid, "验货记录与订单不符 (inspection is for another order)")
	}
	switch {
	case in.Kind == InspectionPickup && o.State != StatePaid && o.State != StatePickedUp:
		return Errorf(op, KindConflict, "订单状态为 %s，不能做取货验货 (order is %s; pickup inspection needs a paid order)", o.State, o.State)
	case in.Kind == InspectionReturn && o.State != StatePickedUp && o.State != StateReturned:
		return Errorf(op, KindConflict, "订单状态为 %s，不能做归还验货 (order is %s; return inspection needs picked-up gear)", o.State, o.State)
	}
	want := map[UnitID]bool{}
	for _, id := range o.UnitIDs() {
		want[id] = true
	}
	seen := map[UnitID]bool{}
	for i := range in.Units {
		u := &in.Units[i]
		u.Notes = strings.TrimSpace(u.Notes)
		switch {
		case !want[u.UnitID]:
			return Errorf(op, KindInvalid, "装备 %d 不属于此订单 (unit %d is not in this order)", u.UnitID, u.UnitID)
		case seen[u.UnitID]:
			return Errorf(op, KindInvalid, "装备 %d 重复 (unit %d is listed twice)", u.UnitID, u.UnitID)
		case !u.Condition.Valid():
			return Errorf(op, KindInvalid, "未知的成色 (unknown condition) %q", u.Condition)
		case utf8.RuneCountInString(u.Notes) > 2000:
			return Errorf(op, KindInvalid, "备注最多 2000 字 (notes are at most 2000 characters)")
		}
		seen[u.UnitID] = true
	}
	if len(seen) != len(want) {
		return Errorf(op, KindInvalid, "请检查订单里的每一件装备 (inspect every unit of the order): %d of %d", len(seen), len(want))
	}
	// One order of units, so the record of the same findings is the same bytes.
	slices.SortFunc(in.Units, func(a, b UnitInspection) int { return cmp.Compare(a.UnitID, b.UnitID) })
	return nil
}

// MatchesRecord reports whether the inspection as stored still says what
// its chained record says: the inspection rows are plain tables, the record
// is the tamper-evident copy.
func (in *Inspection) MatchesRecord(record Evidence) bool {
	return record.ID == in.EvidenceID && record.Kind == EvidenceInspection && bytes.Equal(record.Content, in.Record())
}

// Record is the inspection as chained into the evidence: canonical JSON of
// what staff stated (struct field order fixes the encoding).
func (in *Inspection) Record() []byte {
	b, _ := json.Marshal(struct {
		Order OrderID          `json:"order"`
		Kind  InspectionKind   `json:"kind"`
		Staff Actor            `json:"staff"`
		At    string           `json:"at"`
		Notes string           `json:"notes,omitempty"`
		Units []UnitInspection `json:"units"`
	}{in.OrderID, in.Kind, in.Staff, in.At.UTC().Format(time.RFC3339Nano), in.Notes, in.Units})
	return b
}

// ConfirmationRecord is the customer's confirmation as chained into the
// evidence: it names the inspection record it confirms by link, so it
// confirms exactly what the customer was shown.
func ConfirmationRecord(in *Inspection, recordLink string, member MemberID, at time.Time) []byte {
	b, _ := json.Marshal(struct {
		Inspection InspectionID   `json:"inspection"`
		Kind       InspectionKind `json:"kind"`
		Record     string         `json:"record_link"`
		Member     MemberID       `json:"member"`
		At         string         `json:"at"`
	}{in.ID, in.Kind, recordLink, member, at.UTC().Format(time.RFC3339Nano)})
	return b
}
