package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

// TestProcessInboundOnce: a stored notification is claimed and carried out
// in one transaction — exactly once even when several workers race for it
// — and a failure rolls back its effects and leaves it for a retry.
func TestProcessInboundOnce(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			in := &rental.Inbound{Channel: rental.ChannelWeChatPay, DedupeKey: "notify:EV-1", Kind: "TRANSACTION.SUCCESS", Payload: []byte(`{"out_trade_no":"T1"}`)}
			if _, err := db.SaveInbound(ctx, in); err != nil {
				t.Fatal(err)
			}
			other := &rental.Inbound{Channel: rental.ChannelWeChat, DedupeKey: "m1", Kind: "text", Payload: []byte("<xml/>")}
			db.SaveInbound(ctx, other) //nolint:errcheck
			ids, err := db.PendingPayNotifications(ctx, 10)
			if err != nil || len(ids) != 1 || ids[0] != in.ID {
				t.Fatalf("pending: %v %v", ids, err)
			}

			// A failing attempt: its anomaly is rolled back with it.
			boom := errors.New("boom")
			_, err = db.ProcessInbound(ctx, in.ID, func(tx *store.DB, got *rental.Inbound) error {
				if string(got.Payload) != `{"out_trade_no":"T1"}` {
					t.Errorf("payload %q", got.Payload)
				}
				tx.RecordPayAnomaly(ctx, store.PayAnomaly{Kind: store.AnomalyUnknownTrade, Key: "k1"}) //nolint:errcheck
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("failure: %v", err)
			}
			db.InboundAttemptFailed(ctx, in.ID, err.Error(), false) //nolint:errcheck
			if n, _ := db.InboundAttempts(ctx, in.ID); n != 1 {
				t.Errorf("attempts %d", n)
			}
			if list, _ := db.PayAnomalies(ctx, time.Time{}, time.Time{}, 0, 10); len(list) != 0 {
				t.Errorf("a rolled-back effect survived: %+v", list)
			}

			var runs atomic.Int32
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := db.ProcessInbound(ctx, in.ID, func(tx *store.DB, _ *rental.Inbound) error {
						runs.Add(1)
						return tx.RecordPayAnomaly(ctx, store.PayAnomaly{Kind: store.AnomalyUnknownTrade, Key: "k1", OutTradeNo: "T1"})
					})
					if err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if runs.Load() != 1 {
				t.Errorf("processed %d times, want once", runs.Load())
			}
			list, _ := db.PayAnomalies(ctx, time.Time{}, time.Time{}, 0, 10)
			if len(list) != 1 || list[0].OutTradeNo != "T1" {
				t.Errorf("anomalies: %+v", list)
			}
			if ids, _ := db.PendingPayNotifications(ctx, 10); len(ids) != 0 {
				t.Errorf("still pending: %v", ids)
			}
			// Recording the same anomaly again is a no-op.
			db.RecordPayAnomaly(ctx, store.PayAnomaly{Kind: store.AnomalyUnknownTrade, Key: "k1"}) //nolint:errcheck
			if list, _ := db.PayAnomalies(ctx, time.Time{}, time.Time{}, 0, 10); len(list) != 1 {
				t.Errorf("anomaly recorded twice: %d", len(list))
			}
		})
	}
}

// TestOrderEventsInTheSameTransaction: with order events on, every
// eventful transition is one outbox row written with it, keyed by order and
// sequence; a save that fails leaves none; with events off there are none.
func TestOrderEventsInTheSameTransaction(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			shop, clock := shopOn(db)
			rod, _ := seedItem(t, db, "rod", 2, rental.Yuan(15), rental.Yuan(200))
			p := period(t, "2026-05-01", "2026-05-03")
			if _, err := shop.PlaceOrder(ctx, customer(1), []rental.ItemQuantity{{Item: rod.ID, Quantity: 1}}, p); err != nil {
				t.Fatal(err)
			}
			if n := countOutbox(t, db, store.KindRentalWebhook); n != 0 {
				t.Fatalf("events while off: %d", n)
			}
			db.EmitOrderEvents(true)
			o, err := shop.PlaceOrder(ctx, customer(2), []rental.ItemQuantity{{Item: rod.ID, Quantity: 1}}, p)
			if err != nil {
				t.Fatal(err)
			}
			pay, _ := o.StartPayment(rental.MemberActor(2), clock.Now()) // awaiting_payment: no event
			if err := db.SaveOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
			o.PaymentSucceeded(pay.OutTradeNo, "tx1", pay.Amount, clock.Now()) //nolint:errcheck
			stale := *o
			if err := db.SaveOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
			// A stale save is refused and enqueues nothing.
			stale.Transition(rental.StateCancelled, rental.MemberActor(2), clock.Now()) //nolint:errcheck
			if err := db.SaveOrder(ctx, &stale); rental.ErrorKind(err) != rental.KindConflict {
				t.Fatalf("stale save: %v", err)
			}
			items, err := db.ClaimOutbox(ctx, 10, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range items {
				var ev store.OrderEvent
				if err := json.Unmarshal(it.Payload, &ev); err != nil {
					t.Fatal(err)
				}
				if it.Key != ev.ID || ev.Order.ID != int64(o.ID) || len(ev.Order.Lines) != 1 || ev.Order.Lines[0].Serial == "" {
					t.Errorf("event %+v", ev)
				}
				got = append(got, ev.Type+"@"+ev.Order.State)
			}
			if len(got) != 2 || got[0] != "order.created@paid" && got[0] != "order.created@created" || got[1] != "order.paid@paid" {
				t.Errorf("events: %v", got)
			}
		})
	}
}

func countOutbox(t *testing.T, db *store.DB, kind string) int64 {
	t.Helper()
	var n int64
	if err := db.Gorm.Table("outbox").Where("kind = ?", kind).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPaymentJobQueries: which attempts and refunds the payment sync asks
// WeChat Pay about; InTx commits or rolls back as one.
func TestPaymentJobQueries(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			shop, clock := shopOn(db)
			rod, _ := seedItem(t, db, "rod", 3, rental.Yuan(15), rental.Yuan(200))
			p := period(t, "2026-05-01", "2026-05-03")
			fresh, _ := shop.PlaceOrder(ctx, customer(1), []rental.ItemQuantity{{Item: rod.ID, Quantity: 1}}, p)
			fp, _ := fresh.StartPayment(rental.MemberActor(1), clock.Now())
			db.SaveOrder(ctx, fresh) //nolint:errcheck
			cancelled, _ := shop.PlaceOrder(ctx, customer(2), []rental.ItemQuantity{{Item: rod.ID, Quantity: 1}}, p)
			cp, _ := cancelled.StartPayment(rental.MemberActor(2), clock.Now())
			cancelled.Transition(rental.StateCancelled, rental.MemberActor(2), clock.Now()) //nolint:errcheck
			db.SaveOrder(ctx, cancelled)                                                    //nolint:errcheck

			refs, err := db.PaymentsToCheck(ctx, clock.Now().Add(-2*time.Minute), 10)
			if err != nil || len(refs) != 1 || refs[0].No != cp.OutTradeNo {
				t.Fatalf("to check now: %+v %v", refs, err)
			}
			clock.Add(3 * time.Minute)
			refs, _ = db.PaymentsToCheck(ctx, clock.Now().Add(-2*time.Minute), 10)
			if len(refs) != 2 {
				t.Fatalf("to check after 3 minutes: %+v", refs)
			}

			// A refund, pending.
			fresh.PaymentSucceeded(fp.OutTradeNo, "tx", fp.Amount, clock.Now())         //nolint:errcheck
			fresh.Transition(rental.StateCancelled, rental.MemberActor(1), clock.Now()) //nolint:errcheck
			if _, err := fresh.StartRefunds("取消", clock.Now()); err != nil {
				t.Fatal(err)
			}
			// InTx: an error rolls the save back.
			err = db.InTx(ctx, func(tx *store.DB) error {
				if err := tx.LockOrder(ctx, fresh.ID); err != nil {
					return err
				}
				if err := tx.SaveOrder(ctx, fresh); err != nil {
					return err
				}
				return errors.New("changed my mind")
			})
			if err == nil {
				t.Fatal("InTx swallowed the error")
			}
			if again, _ := db.Order(ctx, fresh.ID); again.State == rental.StateCancelled {
				t.Fatal("a rolled-back save is visible")
			}
			// What the rolled-back save did to the value in memory (its
			// version) is stale: decide again from a fresh read.
			fresh, _ = db.Order(ctx, fresh.ID)
			fresh.PaymentSucceeded(fp.OutTradeNo, "tx", fp.Amount, clock.Now())         //nolint:errcheck
			fresh.Transition(rental.StateCancelled, rental.MemberActor(1), clock.Now()) //nolint:errcheck
			if _, err := fresh.StartRefunds("取消", clock.Now()); err != nil {
				t.Fatal(err)
			}
			if err := db.InTx(ctx, func(tx *store.DB) error { return tx.SaveOrder(ctx, fresh) }); err != nil {
				t.Fatal(err)
			}
			if refs, _ := db.RefundsToCheck(ctx, clock.Now(), 10); len(refs) != 0 {
				t.Errorf("a refund made just now is checked: %+v", refs)
			}
			clock.Add(3 * time.Minute)
			refs, _ = db.RefundsToCheck(ctx, clock.Now().Add(-2*time.Minute), 10)
			if len(refs) != 1 || refs[0].OrderID != fresh.ID {
				t.Errorf("refunds to check: %+v", refs)
			}
			list, err := db.ListOrders(ctx, store.OrderFilter{States: []rental.OrderState{rental.StateCancelled}})
			if err != nil || len(list) != 2 || list[1].ID != fresh.ID { // newest first
				t.Errorf("staff list: %d %v", len(list), err)
			}
			withPay, err := db.OrdersWithPayments(ctx, day0.Add(-time.Hour), clock.Now().Add(time.Hour), 0, 10)
			if err != nil || len(withPay) != 2 {
				t.Errorf("orders with payments: %d %v", len(withPay), err)
			}
		})
	}
}
