package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

// seedItem stores an item with n available units and returns it with them.
func seedItem(t testing.TB, db *store.DB, name string, n int, price, deposit rental.Fen) (rental.Item, []rental.Unit) {
	t.Helper()
	ctx := context.Background()
	it := rental.Item{Category: rental.CategoryRod, Name: name, Tags: []string{"鲫鱼"}, PricePerDay: price, Deposit: deposit, Active: true}
	if err := db.CreateItem(ctx, &it); err != nil {
		t.Fatal(err)
	}
	var units []rental.Unit
	for i := range n {
		u := rental.Unit{ItemID: it.ID, Serial: fmt.Sprintf("%s-%d-%03d", name, it.ID, i), Condition: rental.ConditionGood, Status: rental.UnitAvailable}
		if err := db.CreateUnit(ctx, &u); err != nil {
			t.Fatal(err)
		}
		units = append(units, u)
	}
	return it, units
}

func TestCatalog(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			rod := rental.Item{Category: rental.CategoryRod, Name: "台钓竿 4.5m", Description: "轻量碳素，适合池塘", Tags: []string{"鲫鱼", "鲤鱼"},
				PricePerDay: rental.Yuan(15), Deposit: rental.Yuan(200), Photos: []string{"https://img.example/rod1.jpg", "media:abc"}, Active: true}
			sea := rental.Item{Category: rental.CategoryRod, Name: "矶钓竿 5.3m", Tags: []string{"海钓"}, PricePerDay: rental.Yuan(30), Deposit: rental.Yuan(500), Active: true}
			chair := rental.Item{Category: rental.CategoryChair, Name: "折叠钓椅", PricePerDay: rental.Yuan(5), Deposit: rental.Yuan(50), Active: false}
			for _, it := range []*rental.Item{&rod, &sea, &chair} {
				if err := db.CreateItem(ctx, it); err != nil {
					t.Fatal(err)
				}
			}
			got, err := db.Item(ctx, rod.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != rod.Name || got.Description != rod.Description || strings.Join(got.Tags, ",") != "鲫鱼,鲤鱼" ||
				got.PricePerDay != rental.Yuan(15) || got.Deposit != rental.Yuan(200) || len(got.Photos) != 2 || got.Photos[1] != "media:abc" || !got.Active {
				t.Errorf("read back %+v", got)
			}
			if _, err := db.Item(ctx, 9999); rental.ErrorKind(err) != rental.KindNotFound {
				t.Errorf("unknown item: %v", err)
			}
			if err := db.CreateItem(ctx, &rental.Item{Category: "boat", Name: "x"}); rental.ErrorKind(err) != rental.KindInvalid {
				t.Errorf("invalid item stored: %v", err)
			}

			names := func(f rental.ItemFilter) string {
				items, err := db.Items(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				var s []string
				for _, it := range items {
					s = append(s, it.Name)
				}
				return strings.Join(s, "|")
			}
			for f, want := range map[*rental.ItemFilter]string{
				{}:                      "台钓竿 4.5m|矶钓竿 5.3m",
				{IncludeInactive: true}: "台钓竿 4.5m|矶钓竿 5.3m|折叠钓椅",
				{Tag: "海钓"}:             "矶钓竿 5.3m",
				{Tag: "鲤鱼"}:             "台钓竿 4.5m",
				{Category: rental.CategoryChair, IncludeInactive: true}: "折叠钓椅",
				{Limit: 1}:                "台钓竿 4.5m",
				{After: rod.ID, Limit: 1}: "矶钓竿 5.3m",
			} {
				if got := names(*f); got != want {
					t.Errorf("Items(%+v) = %q, want %q", *f, got, want)
				}
			}

			rod.Tags = []string{"鲤鱼", "黑坑"}
			rod.PricePerDay = rental.Yuan(18)
			if err := db.UpdateItem(ctx, &rod); err != nil {
				t.Fatal(err)
			}
			got, _ = db.Item(ctx, rod.ID)
			if strings.Join(got.Tags, ",") != "鲤鱼,黑坑" || got.PricePerDay != rental.Yuan(18) {
				t.Errorf("after update %+v", got)
			}
			if names(rental.ItemFilter{Tag: "鲫鱼"}) != "" {
				t.Error("old tag still matches")
			}
			ghost := rod
			ghost.ID = 9999
			if err := db.UpdateItem(ctx, &ghost); rental.ErrorKind(err) != rental.KindNotFound {
				t.Errorf("update unknown: %v", err)
			}

			u := rental.Unit{ItemID: rod.ID, Serial: "R-001", Condition: rental.ConditionNew, Status: rental.UnitAvailable}
			if err := db.CreateUnit(ctx, &u); err != nil {
				t.Fatal(err)
			}
			dup := rental.Unit{ItemID: sea.ID, Serial: "R-001", Condition: rental.ConditionNew, Status: rental.UnitAvailable}
			if err := db.CreateUnit(ctx, &dup); rental.ErrorKind(err) != rental.KindConflict {
				t.Errorf("duplicate serial: %v", err)
			}
			if err := db.CreateUnit(ctx, &rental.Unit{ItemID: 9999, Serial: "x", Condition: rental.ConditionNew, Status: rental.UnitAvailable}); rental.ErrorKind(err) != rental.KindNotFound {
				t.Errorf("unit of unknown item: %v", err)
			}
			u.Status, u.Notes = rental.UnitMaintenance, "换导环"
			if err := db.UpdateUnit(ctx, &u); err != nil {
				t.Fatal(err)
			}
			units, err := db.Units(ctx, rod.ID)
			if err != nil || len(units) != 1 || units[0].Status != rental.UnitMaintenance || units[0].Notes != "换导环" || units[0].Serial != "R-001" {
				t.Errorf("units %+v %v", units, err)
			}
			moved := u
			moved.ItemID = sea.ID
			if err := db.UpdateUnit(ctx, &moved); rental.ErrorKind(err) != rental.KindNotFound {
				t.Errorf("unit moved to another item: %v", err)
			}
		})
	}
}

func TestShopSettings(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			s, err := db.ShopSettings(ctx)
			if err != nil || s.PaymentTimeout != 15*time.Minute {
				t.Fatalf("defaults %+v %v", s, err)
			}
			s.CleaningBuffer = 4 * time.Hour
			s.PaymentTimeout = 10 * time.Minute
			s.LateFeePerDay = rental.Yuan(25)
			s.GracePeriod = 6 * time.Hour
			s.DepositWaived = map[rental.Tier]bool{"gold": true, "silver": false}
			s.Hours[time.Monday] = rental.DayHours{Closed: true}
			if err := db.SaveShopSettings(ctx, s); err != nil {
				t.Fatal(err)
			}
			s.LateFeePerDay = rental.Yuan(30) // saved twice: the row is updated
			if err := db.SaveShopSettings(ctx, s); err != nil {
				t.Fatal(err)
			}
			got, err := db.ShopSettings(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got.CleaningBuffer != 4*time.Hour || got.PaymentTimeout != 10*time.Minute || got.LateFeePerDay != rental.Yuan(30) ||
				got.GracePeriod != 6*time.Hour || !got.WaivesDeposit("gold") || got.WaivesDeposit("silver") || got.Hours != s.Hours {
				t.Errorf("read back %+v", got)
			}
			s.PaymentTimeout = 0
			if err := db.SaveShopSettings(ctx, s); rental.ErrorKind(err) != rental.KindInvalid {
				t.Errorf("invalid settings saved: %v", err)
			}
		})
	}
}
