package gateway

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/adapters/wxsim/paysim"
	"github.com/tacklegate/tacklegate/rental"
)

// TestReconcileWithTradeBill: a day of trading — one order paid, one paid
// and cancelled (refunded in full), and money WeChat Pay took for an
// out_trade_no we never made — is compared with that day's bill the next
// day. The bill's lines are all accounted for except the stranger; then our
// records are edited behind the gateway's back and each edit shows up as
// the mismatch it is.
func TestReconcileWithTradeBill(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			e := newRentalEnv(t, tg, true)
			ctx := context.Background()
			rod := e.stock(t, "台钓竿 3.6m", rental.CategoryRod, 1500, 20000, 3, "鲫鱼")
			alice := e.customerLogin(t, "o-bill-alice")
			day := rental.DateOf(e.sim.Clock().Now())

			paid := func() orderView {
				o := e.placeOrder(t, alice, rod, 1, 2)
				e.customerPays(t, e.startPay(t, alice, o.ID))
				eventually(t, "paid", func() bool { return e.order(t, alice, o.ID).State == rental.StatePaid })
				return e.order(t, alice, o.ID)
			}
			kept := paid()
			cancelled := paid()
			if st := e.api(t, "POST", fmt.Sprintf("/api/v1/orders/%d/cancel", cancelled.ID), alice, nil, nil); st != 200 {
				t.Fatalf("cancel: %d", st)
			}
			eventually(t, "refunded", func() bool {
				o := e.order(t, alice, cancelled.ID)
				return len(o.Refunds) == 1 && o.Refunds[0].State == rental.RefundSucceeded
			})
			refund := e.order(t, alice, cancelled.ID).Refunds[0]

			// Money for an order this shop never made (another app on the
			// same merchant account, or worse).
			prepay, err := e.client.PrepayJSAPI(ctx, wechatpay.PrepayRequest{AppID: e.appID, Description: "?", OutTradeNo: "STRANGER-1",
				NotifyURL: e.base + "/callbacks/wechatpay", Total: 999, PayerOpenID: "o-bill-alice"})
			if err != nil {
				t.Fatal(err)
			}
			params, _ := e.client.RequestPayment(e.appID, prepay)
			if err := e.pay.Pay("STRANGER-1", paysim.PaymentParams{TimeStamp: params.TimeStamp, NonceStr: params.NonceStr,
				Package: params.Package, SignType: params.SignType, PaySign: params.PaySign}); err != nil {
				t.Fatal(err)
			}

			// Its notification reaches us and is recorded as an anomaly.
			var stranger []store.PayAnomaly
			eventually(t, "the stranger's anomaly", func() bool {
				stranger, _ = e.db.ListPayAnomalies(ctx, store.AnomalyFilter{})
				return len(stranger) == 1 && stranger[0].OutTradeNo == "STRANGER-1"
			})

			// Today's bill is not made yet.
			var rep ReconcileReport
			if err := e.rent.ReconcileBills(ctx, day, day, &rep); err != nil {
				t.Fatal(err)
			}
			if len(rep.BillDays) != 1 || rep.BillDays[0].Status != BillNotReady || len(rep.Mismatches) != 0 {
				t.Fatalf("today: %+v %+v", rep.BillDays, rep.Mismatches)
			}

			e.sim.Clock().Advance(24 * time.Hour)
			reconcile := func() ReconcileReport {
				t.Helper()
				var rep ReconcileReport
				if err := e.rent.ReconcileBills(ctx, day, day, &rep); err != nil {
					t.Fatal(err)
				}
				if len(rep.BillDays) != 1 || rep.BillDays[0].Status != BillCompared {
					t.Fatalf("bill days: %+v", rep.BillDays)
				}
				return rep
			}
			kinds := func(rep ReconcileReport) []string {
				var out []string
				for _, m := range rep.Mismatches {
					out = append(out, m.Kind+" "+m.OutTradeNo+m.OutRefundNo)
				}
				slices.Sort(out)
				return out
			}
			rep = reconcile()
			bd := rep.BillDays[0]
			if bd.Lines != 4 || bd.BillPaid != kept.Total+cancelled.Total+999 || bd.BillRefunded != cancelled.Total ||
				bd.HerePaid != kept.Total+cancelled.Total || bd.HereRefunded != cancelled.Total {
				t.Errorf("day: %+v", bd)
			}
			if got := kinds(rep); !slices.Equal(got, []string{MismatchBillUnknownHere + " STRANGER-1"}) {
				t.Errorf("mismatches: %v", got)
			} else if !strings.Contains(rep.Mismatches[0].Detail, "is open") {
				t.Errorf("the stranger's open anomaly is not named: %+v", rep.Mismatches[0])
			}
			// The owner looks into it and resolves the anomaly: the line is
			// accounted for.
			if _, err := e.db.ResolvePayAnomaly(ctx, stranger[0].ID, "owner:owner", "共用商户号的另一家店", e.sim.Clock().Now()); err != nil {
				t.Fatal(err)
			}
			rep = reconcile()
			if len(rep.Mismatches) != 0 || rep.BillDays[0].Explained != 1 {
				t.Errorf("after resolving: %+v %+v", rep.Mismatches, rep.BillDays)
			}

			// Our amount is edited: the bill disagrees.
			keptNo := kept.Payments[0].OutTradeNo
			e.db.Gorm.Exec("UPDATE payments SET amount = amount + 100 WHERE out_trade_no = ?", keptNo) //nolint:errcheck
			// Our refund is recorded as failed although WeChat Pay made it.
			e.db.Gorm.Exec("UPDATE refunds SET state = 'failed' WHERE out_refund_no = ?", refund.OutRefundNo) //nolint:errcheck
			rep = reconcile()
			want := []string{MismatchBillAmount + " " + keptNo, MismatchBillState + " " + cancelled.Payments[0].OutTradeNo + refund.OutRefundNo}
			slices.Sort(want)
			if got := kinds(rep); !slices.Equal(got, want) {
				t.Errorf("after editing amounts and states:\n got %v\nwant %v", got, want)
			}
			e.db.Gorm.Exec("UPDATE payments SET amount = amount - 100 WHERE out_trade_no = ?", keptNo)           //nolint:errcheck
			e.db.Gorm.Exec("UPDATE refunds SET state = 'succeeded' WHERE out_refund_no = ?", refund.OutRefundNo) //nolint:errcheck

			// A payment we believe in under a number WeChat Pay never billed.
			e.db.Gorm.Exec("UPDATE payments SET out_trade_no = 'GHOST-1' WHERE out_trade_no = ?", keptNo) //nolint:errcheck
			rep = reconcile()
			want = []string{MismatchBillMissing + " GHOST-1", MismatchBillUnknownHere + " " + keptNo}
			slices.Sort(want)
			if got := kinds(rep); !slices.Equal(got, want) {
				t.Errorf("after renaming a payment:\n got %v\nwant %v", got, want)
			}
			for _, m := range rep.Mismatches {
				if m.Day != day.String() {
					t.Errorf("mismatch without its day: %+v", m)
				}
			}

			// The owner console asks for the same comparison.
			var api struct {
				Days       []BillDay  `json:"days"`
				Mismatches []Mismatch `json:"mismatches"`
			}
			if st := e.api(t, "GET", "/api/v1/owner/payments/bills?from="+day.String(), e.owner, nil, &api); st != 200 ||
				len(api.Days) != 1 || api.Days[0].Status != BillCompared || len(api.Mismatches) != len(rep.Mismatches) {
				t.Errorf("owner bills: %d %+v", st, api)
			}
			if st := e.api(t, "GET", "/api/v1/owner/payments/bills?from="+day.String()+"&to="+day.AddDays(40).String(), e.owner, nil, nil); st != 400 {
				t.Errorf("a 41-day range: %d", st)
			}
			if st := e.api(t, "GET", "/api/v1/owner/payments/bills", e.staff, nil, nil); st != 403 {
				t.Errorf("staff: %d", st)
			}
		})
	}
}
