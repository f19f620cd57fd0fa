package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

func TestQuickHelpStore(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			seeded, err := db.QuickHelpEntries(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(seeded) != 3 || seeded[0].Title != "教我装鱼线" || seeded[1].Purpose != "inspection" || seeded[2].Action != "chat" || !seeded[2].Enabled {
				t.Fatalf("seeded %+v", seeded)
			}
			e := store.QuickHelpEntry{Title: "语音", Icon: "voice", Action: "voice", Enabled: false}
			if err := db.CreateQuickHelp(ctx, &e); err != nil || e.Position != 4 {
				t.Fatalf("create: %+v %v", e, err)
			}
			if on, _ := db.QuickHelpEntries(ctx, true); len(on) != 3 {
				t.Errorf("enabled only: %d", len(on))
			}
			if err := db.ReorderQuickHelp(ctx, []int64{e.ID, seeded[2].ID, seeded[1].ID, seeded[0].ID}); err != nil {
				t.Fatal(err)
			}
			if err := db.ReorderQuickHelp(ctx, []int64{e.ID, e.ID, seeded[1].ID, seeded[0].ID}); rental.ErrorKind(err) != rental.KindInvalid {
				t.Errorf("repeated id: %v", err)
			}
			all, _ := db.QuickHelpEntries(ctx, false)
			if all[0].ID != e.ID || all[3].ID != seeded[0].ID {
				t.Errorf("order %+v", all)
			}
			t0 := time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC)
			for i := 0; i < 3; i++ {
				if err := db.UseQuickHelp(ctx, seeded[0].ID, 0, t0.Add(time.Duration(i)*24*time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.UseQuickHelp(ctx, e.ID, 0, t0); rental.ErrorKind(err) != rental.KindNotFound {
				t.Errorf("use of a disabled entry: %v", err)
			}
			uses, err := db.QuickHelpUses(ctx, t0, t0.Add(48*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range uses {
				if u.ID == seeded[0].ID && (u.Uses != 2 || u.Total != 3) {
					t.Errorf("uses %+v", u)
				}
			}
			if err := db.DeleteQuickHelp(ctx, seeded[0].ID); err != nil {
				t.Fatal(err)
			}
			if err := db.DeleteQuickHelp(ctx, seeded[0].ID); rental.ErrorKind(err) != rental.KindNotFound {
				t.Errorf("delete twice: %v", err)
			}
		})
	}
}
