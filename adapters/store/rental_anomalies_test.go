package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

// TestResolvePayAnomaly: the owner resolves an open anomaly once, with who
// and why; lists show open ones by default; the database refuses to edit a
// resolution, change an anomaly's facts, resolve without a note, or delete.
func TestResolvePayAnomaly(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			for _, k := range []string{"a1", "a2"} {
				if err := db.RecordPayAnomaly(ctx, store.PayAnomaly{Kind: store.AnomalyUnknownTrade, Key: k, OutTradeNo: "T-" + k, Amount: 999}); err != nil {
					t.Fatal(err)
				}
			}
			all, _ := db.PayAnomalies(ctx, time.Time{}, time.Time{}, 0, 10)
			if len(all) != 2 {
				t.Fatalf("%d anomalies", len(all))
			}
			id := all[0].ID
			at := time.Date(2026, 11, 25, 3, 4, 5, 0, time.UTC)

			if _, err := db.ResolvePayAnomaly(ctx, id, "owner", "  ", at); rental.ErrorKind(err) != rental.KindInvalid {
				t.Errorf("no note: %v", err)
			}
			if _, err := db.ResolvePayAnomaly(ctx, 999999, "owner", "x", at); rental.ErrorKind(err) != rental.KindNotFound {
				t.Errorf("unknown id: %v", err)
			}
			a, err := db.ResolvePayAnomaly(ctx, id, "owner", "另一个小程序的订单，已核实", at)
			if err != nil || !a.Resolved() || !a.ResolvedAt.Equal(at) || a.ResolvedBy != "owner" || a.Resolution != "另一个小程序的订单，已核实" || a.OutTradeNo != "T-a1" {
				t.Fatalf("resolve: %+v %v", a, err)
			}
			if _, err := db.ResolvePayAnomaly(ctx, id, "owner2", "again", at.Add(time.Hour)); rental.ErrorKind(err) != rental.KindConflict ||
				!strings.Contains(rental.ErrorMessage(err), "owner") {
				t.Errorf("resolving twice: %v", err)
			}

			list := func(status string) []int64 {
				t.Helper()
				got, err := db.ListPayAnomalies(ctx, store.AnomalyFilter{Status: status})
				if err != nil {
					t.Fatal(err)
				}
				var ids []int64
				for _, a := range got {
					ids = append(ids, a.ID)
				}
				return ids
			}
			if open := list(""); len(open) != 1 || open[0] != all[1].ID {
				t.Errorf("open by default: %v", open)
			}
			if res := list(store.AnomaliesResolved); len(res) != 1 || res[0] != id {
				t.Errorf("resolved: %v", res)
			}
			if n := len(list(store.AnomaliesAll)); n != 2 {
				t.Errorf("all: %d", n)
			}
			if _, err := db.ListPayAnomalies(ctx, store.AnomalyFilter{Status: "closed"}); rental.ErrorKind(err) != rental.KindInvalid {
				t.Errorf("bad status: %v", err)
			}

			// Behind the code's back, the database itself refuses.
			for name, q := range map[string]string{
				"edit a resolution":     "UPDATE pay_anomalies SET resolution = 'changed' WHERE id = ?",
				"reopen":                "UPDATE pay_anomalies SET resolved_at = NULL, resolved_by = '', resolution = '' WHERE id = ?",
				"change the facts":      "UPDATE pay_anomalies SET amount = 1 WHERE id <> ?",
				"resolve without a why": "UPDATE pay_anomalies SET resolved_at = CURRENT_TIMESTAMP, resolved_by = 'x' WHERE id <> ?",
				"delete":                "DELETE FROM pay_anomalies WHERE id = ?",
			} {
				if err := db.Gorm.Exec(q, id).Error; err == nil {
					t.Errorf("%s: the database allowed it", name)
				}
			}
			if got := list(store.AnomaliesAll); len(got) != 2 {
				t.Errorf("after the refused changes: %v", got)
			}
		})
	}
}
