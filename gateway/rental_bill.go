package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/rental"
)

// Reconciliation with WeChat Pay's daily trade bill. The queries in
// rental_reconcile.go ask about each attempt we know; the bill goes the
// other way too: it lists everything WeChat Pay settled for the merchant
// that day, so money we never heard of shows up.

// BillSource is what bill reconciliation needs of WeChat Pay
// (wechatpay.Client).
type BillSource interface {
	FetchTradeBill(ctx context.Context, day string) (*wechatpay.TradeBill, error)
}

var _ BillSource = (*wechatpay.Client)(nil)

// Kinds of Mismatch found against the bill.
const (
	MismatchBillUnknownHere = "in_bill_not_here"    // on WeChat Pay's bill, no such attempt here
	MismatchBillMissing     = "not_in_bill"         // paid or refunded here, not on WeChat Pay's bill
	MismatchBillAmount      = "bill_amount_differs" // on both, different amounts
	MismatchBillState       = "bill_state_differs"  // on both, paid/refunded on one side only
)

// BillDay is one day of the comparison with the trade bill.
type BillDay struct {
	Day rental.Date `json:"day"`
	// Status is "compared", or "not_ready" when WeChat Pay has not made the
	// bill yet (today's, or yesterday's before 10:00): run again later.
	Status       string     `json:"status"`
	Lines        int        `json:"lines"`         // lines on the bill
	BillPaid     rental.Fen `json:"bill_paid"`     // SUCCESS lines, 订单金额
	BillRefunded rental.Fen `json:"bill_refunded"` // REFUND lines that succeeded
	HerePaid     rental.Fen `json:"here_paid"`     // payments paid that day here
	HereRefunded rental.Fen `json:"here_refunded"` // refunds started that day and succeeded here
	// Explained counts the bill's lines unknown here that the owner has
	// accounted for: a payment anomaly about them marked resolved.
	Explained int `json:"explained"`
}

// Bill statuses.
const (
	BillCompared = "compared"
	BillNotReady = "not_ready"
)

// ReconcileBills compares the days from through to (Asia/Shanghai) with
// WeChat Pay's trade bills, adding the differences to rep.Mismatches and a
// summary per day to rep.BillDays. A payment or refund that crossed
// midnight (asked for at 23:59:59, made at WeChat Pay at 00:00:01) is found
// on the neighbouring day's bill, which is fetched for that reason.
func (r *Rental) ReconcileBills(ctx context.Context, from, to rental.Date, rep *ReconcileReport) error {
	r.init()
	src, ok := r.Pay.(BillSource)
	if !ok || r.Pay == nil {
		return rental.Errorf("reconcile.bills", rental.KindUnavailable, "WeChat Pay is off or cannot fetch trade bills")
	}
	today := rental.DateOf(r.now())
	bills := map[rental.Date]*wechatpay.TradeBill{}
	for d := from.AddDays(-1); !to.AddDays(1).Before(d); d = d.AddDays(1) {
		if !d.Before(today) {
			continue
		}
		b, err := src.FetchTradeBill(ctx, d.String())
		if errors.Is(err, wechatpay.ErrBillNotReady) {
			continue
		}
		if err != nil {
			return fmt.Errorf("trade bill of %s: %w", d, err)
		}
		bills[d] = b
	}

	// Everything on the fetched bills, by number.
	payRows := map[string]wechatpay.BillRow{}
	refundRows := map[string]wechatpay.BillRow{}
	for _, b := range bills {
		for _, row := range b.Rows {
			if row.IsRefund() {
				refundRows[row.OutRefundNo] = row
			} else if row.TradeState == wechatpay.TradeStateSuccess {
				payRows[row.OutTradeNo] = row
			}
		}
	}

	// Our records of the days, and of every number on the days' bills.
	start, end := from.Start(), to.AddDays(1).Start()
	paid, err := r.DB.PaymentsPaidBetween(ctx, start, end)
	if err != nil {
		return err
	}
	refunds, err := r.DB.RefundsCreatedBetween(ctx, start, end)
	if err != nil {
		return err
	}
	var tradeNos, refundNos []string
	for d := from; !to.Before(d); d = d.AddDays(1) {
		if b := bills[d]; b != nil {
			for _, row := range b.Rows {
				if row.IsRefund() {
					refundNos = append(refundNos, row.OutRefundNo)
				} else {
					tradeNos = append(tradeNos, row.OutTradeNo)
				}
			}
		}
	}
	ourPay, err := r.DB.PaymentsByOutTradeNo(ctx, tradeNos)
	if err != nil {
		return err
	}
	ourRefund, err := r.DB.RefundsByOutRefundNo(ctx, refundNos)
	if err != nil {
		return err
	}
	var unknownTrades, unknownRefunds []string
	for _, no := range tradeNos {
		if _, ok := ourPay[no]; !ok {
			unknownTrades = append(unknownTrades, no)
		}
	}
	for _, no := range refundNos {
		if _, ok := ourRefund[no]; !ok {
			unknownRefunds = append(unknownRefunds, no)
		}
	}
	anomalies, err := r.DB.PayAnomaliesFor(ctx, unknownTrades, unknownRefunds)
	if err != nil {
		return err
	}

	days := map[rental.Date]*BillDay{}
	for d := from; !to.Before(d); d = d.AddDays(1) {
		bd := &BillDay{Day: d, Status: BillNotReady}
		days[d] = bd
		b := bills[d]
		if b == nil {
			continue
		}
		bd.Status, bd.Lines = BillCompared, len(b.Rows)
		for _, row := range b.Rows {
			if row.IsRefund() {
				if row.RefundStatus == wechatpay.RefundStatusSuccess {
					bd.BillRefunded += rental.Fen(row.Refund)
				}
				r.compareRefundRow(d, bd, row, ourRefund, anomalies, rep)
				continue
			}
			if row.TradeState != wechatpay.TradeStateSuccess {
				continue // REVOKED and the like: not a mini-program payment
			}
			bd.BillPaid += rental.Fen(billOrderAmount(row))
			r.comparePaymentRow(d, bd, row, ourPay, anomalies, rep)
		}
	}
	for _, p := range paid {
		d := rental.DateOf(p.PaidAt)
		bd := days[d]
		if bd == nil {
			continue
		}
		bd.HerePaid += p.Amount
		if bd.Status != BillCompared {
			continue
		}
		if _, ok := payRows[p.OutTradeNo]; !ok {
			rep.Mismatches = append(rep.Mismatches, Mismatch{Kind: MismatchBillMissing, Day: d.String(), OrderID: p.OrderID, OrderNo: p.OrderNo,
				OutTradeNo: p.OutTradeNo, Here: fmt.Sprintf("%s %s, paid %s", p.State, p.Amount, shanghaiTime(p.PaidAt).Format("15:04:05")),
				There: "not on the trade bill"})
		}
	}
	for _, f := range refunds {
		d := rental.DateOf(f.CreatedAt)
		bd := days[d]
		if bd == nil {
			continue
		}
		if f.State == rental.RefundSucceeded {
			bd.HereRefunded += f.Amount
		}
		if bd.Status != BillCompared || (f.State == rental.RefundFailed && f.RefundID == "") {
			continue // refused when asked: WeChat Pay never made it
		}
		if _, ok := refundRows[f.OutRefundNo]; !ok {
			rep.Mismatches = append(rep.Mismatches, Mismatch{Kind: MismatchBillMissing, Day: d.String(), OrderID: f.OrderID, OrderNo: f.OrderNo,
				OutTradeNo: f.OutTradeNo, OutRefundNo: f.OutRefundNo, Here: fmt.Sprintf("refund %s %s", f.State, f.Amount),
				There: "not on the trade bill", Detail: "not sent yet? see the outbox dead-letter list"})
		}
	}
	for d := from; !to.Before(d); d = d.AddDays(1) {
		rep.BillDays = append(rep.BillDays, *days[d])
	}
	return nil
}

// billOrderAmount is what the customer was charged for the order: 订单金额
// when the bill has it, else 应结订单金额 (the same without coupons, which
// this shop does not use).
func billOrderAmount(row wechatpay.BillRow) int64 {
	if row.Total != 0 {
		return row.Total
	}
	return row.Settled
}

// unknownExplained looks at the anomalies recorded about a bill line we
// have no record of: one the owner resolved accounts for it (true); an open
// one is named in the mismatch's detail.
func unknownExplained(list []store.PayAnomaly, kinds ...string) (bool, string) {
	detail := ""
	for _, a := range list {
		if !slices.Contains(kinds, a.Kind) {
			continue
		}
		if a.Resolved() {
			return true, ""
		}
		detail = fmt.Sprintf("anomaly #%d (%s) is open", a.ID, a.Kind)
	}
	return false, detail
}

func (r *Rental) comparePaymentRow(d rental.Date, bd *BillDay, row wechatpay.BillRow, ours map[string]store.PaymentRecord,
	anomalies map[string][]store.PayAnomaly, rep *ReconcileReport) {
	there := fmt.Sprintf("%s %s, transaction %s", row.TradeState, rental.Fen(billOrderAmount(row)), row.TransactionID)
	p, ok := ours[row.OutTradeNo]
	if !ok {
		explained, detail := unknownExplained(anomalies[row.OutTradeNo], store.AnomalyUnknownTrade, store.AnomalyForeignApp, store.AnomalyForeignMerchant)
		if explained {
			bd.Explained++
			return
		}
		if detail == "" {
			detail = "no anomaly recorded: was the notification never received?"
		}
		rep.Mismatches = append(rep.Mismatches, Mismatch{Kind: MismatchBillUnknownHere, Day: d.String(), OutTradeNo: row.OutTradeNo,
			Here: "no such payment attempt", There: there, Detail: detail + "; 商户数据包 " + row.Attach})
		return
	}
	m := Mismatch{Day: d.String(), OrderID: p.OrderID, OrderNo: p.OrderNo, OutTradeNo: p.OutTradeNo, Here: fmt.Sprintf("%s %s", p.State, p.Amount), There: there}
	if p.State != rental.PaymentSucceeded {
		m.Kind = MismatchBillState
		rep.Mismatches = append(rep.Mismatches, m)
	}
	if int64(p.Amount) != billOrderAmount(row) {
		m.Kind = MismatchBillAmount
		rep.Mismatches = append(rep.Mismatches, m)
	}
}

func (r *Rental) compareRefundRow(d rental.Date, bd *BillDay, row wechatpay.BillRow, ours map[string]store.RefundRecord,
	anomalies map[string][]store.PayAnomaly, rep *ReconcileReport) {
	asked := row.RefundAsked
	if asked == 0 {
		asked = row.Refund
	}
	there := fmt.Sprintf("refund %s %s", row.RefundStatus, rental.Fen(asked))
	f, ok := ours[row.OutRefundNo]
	if !ok {
		explained, detail := unknownExplained(anomalies[row.OutRefundNo], store.AnomalyUnknownRefund)
		if explained {
			bd.Explained++
			return
		}
		rep.Mismatches = append(rep.Mismatches, Mismatch{Kind: MismatchBillUnknownHere, Day: d.String(), OutTradeNo: row.OutTradeNo,
			OutRefundNo: row.OutRefundNo, Here: "no such refund", There: there, Detail: detail})
		return
	}
	m := Mismatch{Day: d.String(), OrderID: f.OrderID, OrderNo: f.OrderNo, OutTradeNo: f.OutTradeNo, OutRefundNo: f.OutRefundNo,
		Here: fmt.Sprintf("refund %s %s", f.State, f.Amount), There: there}
	doneThere := row.RefundStatus == wechatpay.RefundStatusSuccess
	doneHere := f.State == rental.RefundSucceeded
	// A refund still PROCESSING on the bill may have finished since; only a
	// final status on the bill that contradicts ours is a mismatch.
	if doneThere != doneHere && (doneThere || row.RefundStatus != "PROCESSING") {
		m.Kind = MismatchBillState
		rep.Mismatches = append(rep.Mismatches, m)
	}
	if int64(f.Amount) != asked {
		m.Kind = MismatchBillAmount
		rep.Mismatches = append(rep.Mismatches, m)
	}
}
