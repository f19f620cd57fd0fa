package rental

import (
	"strings"
	"testing"
)

func TestItemValidate(t *testing.T) {
	it := Item{Category: CategoryRod, Name: "  台钓竿 4.5m ", Tags: []string{"鲫鱼", " 鲫鱼", "", "鲤鱼"}, PricePerDay: Yuan(15), Deposit: Yuan(200)}
	if err := it.Validate(); err != nil {
		t.Fatal(err)
	}
	if it.Name != "台钓竿 4.5m" || strings.Join(it.Tags, ",") != "鲫鱼,鲤鱼" {
		t.Errorf("normalised to %q %v", it.Name, it.Tags)
	}
	bad := map[string]Item{
		"category":       {Category: "boat", Name: "x"},
		"name":           {Category: CategoryRod, Name: " "},
		"negative price": {Category: CategoryRod, Name: "x", PricePerDay: -1},
		"huge deposit":   {Category: CategoryRod, Name: "x", Deposit: maxUnitPrice + 1},
		"long name":      {Category: CategoryRod, Name: strings.Repeat("竿", maxItemName+1)},
		"empty photo":    {Category: CategoryRod, Name: "x", Photos: []string{""}},
	}
	for name, it := range bad {
		if ErrorKind(it.Validate()) != KindInvalid {
			t.Errorf("%s accepted", name)
		}
	}
	for _, c := range Categories() {
		if !c.Valid() || c.Label() == "" {
			t.Errorf("category %q", c)
		}
	}
}

func TestUnitValidateAndInspected(t *testing.T) {
	u := Unit{ItemID: 1, Serial: " R-001 ", Condition: ConditionGood, Status: UnitAvailable}
	if err := u.Validate(); err != nil || u.Serial != "R-001" {
		t.Fatalf("%v %q", err, u.Serial)
	}
	for name, u := range map[string]Unit{
		"no item":   {Serial: "a", Condition: ConditionGood, Status: UnitAvailable},
		"no serial": {ItemID: 1, Condition: ConditionGood, Status: UnitAvailable},
		"condition": {ItemID: 1, Serial: "a", Condition: "meh", Status: UnitAvailable},
		"status":    {ItemID: 1, Serial: "a", Condition: ConditionGood, Status: "lost"},
	} {
		if ErrorKind(u.Validate()) != KindInvalid {
			t.Errorf("%s accepted", name)
		}
	}
	u.Inspected(ConditionWorn)
	if u.Condition != ConditionWorn || !u.Rentable() {
		t.Errorf("worn: %+v", u)
	}
	u.Inspected(ConditionDamaged)
	if u.Status != UnitMaintenance || u.Rentable() {
		t.Errorf("damaged unit still rentable: %+v", u)
	}
	retired := Unit{Status: UnitRetired}
	retired.Inspected(ConditionDamaged)
	if retired.Status != UnitRetired {
		t.Error("a retired unit came back as maintenance")
	}
}
