package rental

import (
	"encoding/json"
	"testing"
)

func TestInspectionValidate(t *testing.T) {
	o := orderIn(t, StatePaid)
	good := func() Inspection {
		return Inspection{OrderID: o.ID, Kind: InspectionPickup, Staff: StaffActor("li"), At: t0, Units: []UnitInspection{
			{UnitID: 100, Condition: ConditionGood, Photos: []EvidenceID{1}}, {UnitID: 101, Condition: ConditionWorn, Notes: " 椅腿有划痕 "},
		}}
	}
	in := good()
	if err := in.Validate(o); err != nil {
		t.Fatal(err)
	}
	if in.Units[1].Notes != "椅腿有划痕" {
		t.Errorf("notes not trimmed: %q", in.Units[1].Notes)
	}
	var rec map[string]any
	if err := json.Unmarshal(in.Record(), &rec); err != nil || rec["kind"] != "pickup" || rec["staff"] != "staff:li" {
		t.Errorf("record %s %v", in.Record(), err)
	}
	for name, tt := range map[string]struct {
		mut  func(*Inspection)
		kind Kind
	}{
		"missing unit":      {func(in *Inspection) { in.Units = in.Units[:1] }, KindInvalid},
		"foreign unit":      {func(in *Inspection) { in.Units[0].UnitID = 999 }, KindInvalid},
		"unit twice":        {func(in *Inspection) { in.Units[1].UnitID = 100 }, KindInvalid},
		"bad condition":     {func(in *Inspection) { in.Units[0].Condition = "ok" }, KindInvalid},
		"customer inspects": {func(in *Inspection) { in.Staff = MemberActor(7) }, KindForbidden},
		"other order":       {func(in *Inspection) { in.OrderID = 1 }, KindInvalid},
		"return too early":  {func(in *Inspection) { in.Kind = InspectionReturn }, KindConflict},
	} {
		in := good()
		tt.mut(&in)
		if err := in.Validate(o); ErrorKind(err) != tt.kind {
			t.Errorf("%s: %v, want %s", name, err, tt.kind)
		}
	}
	unpaid := newOrder(t)
	in = good()
	if err := in.Validate(unpaid); ErrorKind(err) != KindConflict {
		t.Errorf("pickup inspection of an unpaid order: %v", err)
	}
}
