package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

// reload reads an order back and checks the save kept it whole.
func reload(t *testing.T, db *store.DB, o *rental.Order) *rental.Order {
	t.Helper()
	got, err := db.Order(context.Background(), o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != o.State || got.Version != o.Version || len(got.Transitions) != len(o.Transitions) ||
		len(got.Payments) != len(o.Payments) || len(got.Refunds) != len(o.Refunds) ||
		got.LateFee != o.LateFee || got.DamageFee != o.DamageFee || got.DaysLate != o.DaysLate || got.Total() != o.Total() {
		t.Fatalf("reloaded order differs:\n got %+v\nwant %+v", got, o)
	}
	for i := range o.Transitions {
		a, b := got.Transitions[i], o.Transitions[i]
		if a.Seq != b.Seq || a.From != b.From || a.To != b.To || a.Actor != b.Actor || !a.At.Equal(b.At) || a.Note != b.Note {
			t.Fatalf("transition %d: got %+v want %+v", i, a, b)
		}
	}
	return got
}

func TestOrderLifecyclePersisted(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			shop, clock := shopOn(db)
			rod, _ := seedItem(t, db, "rod", 2, rental.Yuan(15), rental.Yuan(200))
			p := period(t, "2026-05-01", "2026-05-03")
			placed, err := shop.PlaceOrder(ctx, customer(7), []rental.ItemQuantity{{Item: rod.ID, Quantity: 1}}, p)
			if err != nil {
				t.Fatal(err)
			}
			o := reload(t, db, placed)
			if o.Period != p || o.No != placed.No || o.Lines[0].UnitID != placed.Lines[0].UnitID || o.Total() != rental.Yuan(230) ||
				!o.ExpiresAt.Equal(day0.Add(15*time.Minute)) || o.MemberID != 7 || o.Tier != "silver" || o.GracePeriod != 12*time.Hour {
				t.Fatalf("stored order %+v", o)
			}

			pay, err := o.StartPayment(rental.MemberActor(7), clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := db.SaveOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
			o = reload(t, db, o)
			if o.Payments[0].ID == 0 || o.Payments[0].OutTradeNo != pay.OutTradeNo {
				t.Fatalf("payment %+v", o.Payments)
			}
			// A stale copy cannot be saved over a newer one.
			stale, _ := db.Order(ctx, o.ID)
			clock.Add(2 * time.Minute)
			if out, err := o.PaymentSucceeded(pay.OutTradeNo, "4200000001", pay.Amount, clock.Now()); err != nil || out != rental.PaymentApplied {
				t.Fatal(out, err)
			}
			if err := db.SaveOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
			stale.TransitionNote(rental.StateCancelled, rental.MemberActor(7), clock.Now(), "不想租了")
			if err := db.SaveOrder(ctx, stale); rental.ErrorKind(err) != rental.KindConflict {
				t.Fatalf("stale save: %v", err)
			}
			byTrade, err := db.OrderByOutTradeNo(ctx, pay.OutTradeNo)
			if err != nil || byTrade.ID != o.ID || byTrade.State != rental.StatePaid || byTrade.Payments[0].TransactionID != "4200000001" || !byTrade.PaidAt.Equal(clock.Now()) {
				t.Fatalf("by out_trade_no: %+v %v", byTrade, err)
			}
			// The notification again: nothing changes, nothing to save.
			if out, _ := byTrade.PaymentSucceeded(pay.OutTradeNo, "4200000001", pay.Amount, clock.Now()); out != rental.PaymentDuplicate {
				t.Errorf("duplicate: %s", out)
			}

			o = reload(t, db, o)
			clock.Set(p.Start().Add(9 * time.Hour))
			if err := o.Transition(rental.StatePickedUp, rental.StaffActor("li"), clock.Now()); err != nil {
				t.Fatal(err)
			}
			if err := db.SaveOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
			o = reload(t, db, o)
			clock.Set(o.Due().Add(40 * time.Hour)) // 28 h past the 12 h grace: two days late
			if err := o.Transition(rental.StateReturned, rental.StaffActor("li"), clock.Now()); err != nil {
				t.Fatal(err)
			}
			if err := o.SetDamageFee(rental.Yuan(30), clock.Now()); err != nil {
				t.Fatal(err)
			}
			if err := db.SaveOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
			o = reload(t, db, o)
			if o.DaysLate != 2 || o.LateFee != rental.Yuan(40) || o.DamageFee != rental.Yuan(30) || o.RefundDue() != rental.Yuan(130) {
				t.Fatalf("returned: days %d late %s damage %s due %s", o.DaysLate, o.LateFee, o.DamageFee, o.RefundDue())
			}
			// Returned units stay held to the end of their block; a cancelled
			// order is the only way to release them early.
			if a, _ := db.Availability(ctx, rod.ID, p, 0); a.Free != 1 {
				t.Errorf("free %d", a.Free)
			}
			rs, err := o.StartRefunds("押金退还", clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := db.SaveOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
			o = reload(t, db, o)
			if err := o.RefundFailed(rs[0].OutRefundNo, clock.Now()); err != nil {
				t.Fatal(err)
			}
			rs, _ = o.StartRefunds("押金退还", clock.Now())
			if err := db.SaveOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
			byRefund, err := db.OrderByOutRefundNo(ctx, rs[0].OutRefundNo)
			if err != nil || byRefund.ID != o.ID || len(byRefund.Refunds) != 2 || byRefund.Refunds[0].State != rental.RefundFailed ||
				byRefund.Refunds[1].Amount != rental.Yuan(130) || byRefund.Refunds[1].PaymentAmount != rental.Yuan(230) || byRefund.Refunds[1].OutTradeNo != pay.OutTradeNo {
				t.Fatalf("by out_refund_no: %+v %v", byRefund, err)
			}
			clock.Add(time.Hour)
			if changed, err := byRefund.RefundSucceeded(rs[0].OutRefundNo, "50300000001", clock.Now()); !changed || err != nil {
				t.Fatal(changed, err)
			}
			if err := db.SaveOrder(ctx, byRefund); err != nil {
				t.Fatal(err)
			}
			o = reload(t, db, byRefund)
			if o.State != rental.StateSettled || !o.ClosedAt.Equal(clock.Now()) || o.Refunds[1].RefundID != "50300000001" || !o.Refunds[1].SucceededAt.Equal(clock.Now()) {
				t.Fatalf("settled: %+v", o)
			}
			var states []rental.OrderState
			for _, tr := range o.Transitions {
				states = append(states, tr.To)
			}
			want := []rental.OrderState{rental.StateCreated, rental.StateAwaitingPayment, rental.StatePaid, rental.StatePickedUp, rental.StateReturned, rental.StateSettled}
			if len(states) != len(want) {
				t.Fatalf("history %v", states)
			}
			for i := range want {
				if states[i] != want[i] {
					t.Fatalf("history %v, want %v", states, want)
				}
			}
			// Illegal moves are refused before anything reaches the store.
			if err := o.Transition(rental.StatePaid, rental.StaffActor("li"), clock.Now()); rental.ErrorKind(err) != rental.KindConflict {
				t.Errorf("settled → paid: %v", err)
			}
		})
	}
}

func TestOrderLookups(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			shop, _ := shopOn(db)
			rod, _ := seedItem(t, db, "rod", 5, rental.Yuan(15), rental.Yuan(200))
			var mine []*rental.Order
			for i := range 5 {
				m := customer(1)
				if i == 2 {
					m = customer(2)
				}
				o, err := shop.PlaceOrder(ctx, m, []rental.ItemQuantity{{Item: rod.ID, Quantity: 1}}, period(t, "2026-05-01", "2026-05-02"))
				if err != nil {
					t.Fatal(err)
				}
				if m.ID == 1 {
					mine = append(mine, o)
				}
			}
			page1, err := db.MemberOrders(ctx, 1, 0, 3)
			if err != nil || len(page1) != 3 || page1[0].ID != mine[3].ID || page1[2].ID != mine[1].ID {
				t.Fatalf("page 1: %d orders, %v", len(page1), err)
			}
			page2, err := db.MemberOrders(ctx, 1, page1[2].ID, 3)
			if err != nil || len(page2) != 1 || page2[0].ID != mine[0].ID || len(page2[0].Lines) != 1 || len(page2[0].Transitions) != 1 {
				t.Fatalf("page 2: %+v, %v", page2, err)
			}
			if o, err := db.OrderByNo(ctx, mine[0].No); err != nil || o.ID != mine[0].ID {
				t.Errorf("by number: %v", err)
			}
			for name, err := range map[string]error{
				"id":            func() error { _, err := db.Order(ctx, 99999); return err }(),
				"no":            func() error { _, err := db.OrderByNo(ctx, "nope"); return err }(),
				"out_trade_no":  func() error { _, err := db.OrderByOutTradeNo(ctx, "nope"); return err }(),
				"out_refund_no": func() error { _, err := db.OrderByOutRefundNo(ctx, "nope"); return err }(),
			} {
				if rental.ErrorKind(err) != rental.KindNotFound {
					t.Errorf("unknown %s: %v", name, err)
				}
			}
			ghost := *mine[0]
			ghost.ID = 99999
			if err := db.SaveOrder(ctx, &ghost); rental.ErrorKind(err) != rental.KindNotFound {
				t.Errorf("saving an unknown order: %v", err)
			}
			if err := db.Reserve(ctx, mine[0]); err == nil {
				t.Error("reserved a stored order again")
			}
		})
	}
}

func TestReserveSeveralItemsAtomically(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			shop, _ := shopOn(db)
			rod, _ := seedItem(t, db, "rod", 2, rental.Yuan(15), rental.Yuan(200))
			chair, _ := seedItem(t, db, "chair", 1, rental.Yuan(5), rental.Yuan(50))
			p := period(t, "2026-05-01", "2026-05-02")
			// Rods are there, the chair is not: nothing at all is reserved.
			if _, err := shop.PlaceOrder(ctx, customer(1), []rental.ItemQuantity{{Item: chair.ID, Quantity: 1}}, p); err != nil {
				t.Fatal(err)
			}
			_, err := shop.PlaceOrder(ctx, customer(2), []rental.ItemQuantity{{Item: rod.ID, Quantity: 2}, {Item: chair.ID, Quantity: 1}}, p)
			if rental.ErrorKind(err) != rental.KindConflict {
				t.Fatalf("partial order: %v", err)
			}
			if a, _ := db.Availability(ctx, rod.ID, p, 0); a.Free != 2 {
				t.Errorf("a failed order held rods: free %d", a.Free)
			}
			o, err := shop.PlaceOrder(ctx, customer(2), []rental.ItemQuantity{{Item: rod.ID, Quantity: 2}}, p)
			if err != nil || len(o.Lines) != 2 || o.Lines[0].UnitID == o.Lines[1].UnitID {
				t.Fatalf("two rods: %+v %v", o, err)
			}
			// An item taken off the shelf cannot be ordered.
			it, _ := db.Item(ctx, rod.ID)
			it.Active = false
			db.UpdateItem(ctx, &it)
			req := []rental.LineRequest{{Item: rental.Item{ID: rod.ID, Name: "rod", Active: true, PricePerDay: 1}, Quantity: 1}}
			stale, _ := rental.NewOrder(customer(3), req, period(t, "2026-06-01", "2026-06-02"), rental.DefaultShopSettings(), day0)
			if err := db.Reserve(ctx, stale); rental.ErrorKind(err) != rental.KindConflict || stale.ID != 0 {
				t.Errorf("inactive item reserved: %v", err)
			}
		})
	}
}
