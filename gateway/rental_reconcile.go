package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/rental"
)

// Reconciliation compares what tacklegate recorded about payments and
// refunds with what WeChat Pay has, attempt by attempt, for the payment
// attempts made in a period; and lists the anomalies recorded meanwhile
// (notifications that could not be applied).

// Mismatch is one difference between tacklegate and WeChat Pay.
type Mismatch struct {
	Kind        string         `json:"kind"`
	Day         string         `json:"day,omitempty"` // the trade bill's day, for mismatches found against it
	OrderID     rental.OrderID `json:"order_id,omitempty"`
	OrderNo     string         `json:"order_no,omitempty"`
	OutTradeNo  string         `json:"out_trade_no,omitempty"`
	OutRefundNo string         `json:"out_refund_no,omitempty"`
	Here        string         `json:"here"`  // what tacklegate recorded
	There       string         `json:"there"` // what WeChat Pay says
	Detail      string         `json:"detail,omitempty"`
}

// Kinds of Mismatch.
const (
	MismatchPaidThereNotHere       = "paid_at_wechatpay_not_here"
	MismatchPaidHereNotThere       = "paid_here_not_at_wechatpay"
	MismatchAmount                 = "amount_differs"
	MismatchTransaction            = "transaction_id_differs"
	MismatchRefundMissingThere     = "refund_missing_at_wechatpay"
	MismatchRefundDoneThereNotHere = "refunded_at_wechatpay_not_here"
	MismatchRefundHereNotThere     = "refunded_here_not_at_wechatpay"
	MismatchRefundAmount           = "refund_amount_differs"
	MismatchRefundDue              = "refund_due_not_started"
	MismatchAnomaly                = "anomaly"
)

// ReconcileReport is the outcome of Reconcile.
type ReconcileReport struct {
	From, To   time.Time
	Orders     int
	Payments   int
	Refunds    int
	Mismatches []Mismatch
	// Anomalies recorded in the period and still open; those that need a
	// person also appear as mismatches of kind "anomaly".
	Anomalies []store.PayAnomaly
	// Resolved are the period's anomalies the owner marked resolved (with
	// who, when and why): listed on request, never mismatches.
	Resolved []store.PayAnomaly
	// BillDays is the comparison with WeChat Pay's trade bills, per day
	// (see ReconcileBills); empty when it was not run.
	BillDays []BillDay
}

// Reconcile compares the payments (and their refunds) of the attempts made
// in [from, to) with WeChat Pay's records. progress, when set, is called
// after each order with the counts so far.
func (r *Rental) Reconcile(ctx context.Context, from, to time.Time, progress func(orders, payments int)) (ReconcileReport, error) {
	r.init()
	rep := ReconcileReport{From: from, To: to}
	if r.Pay == nil {
		return rep, rental.Errorf("reconcile", rental.KindUnavailable, "WeChat Pay is off (TACKLEGATE_WECHATPAY_*): nothing to compare with")
	}
	var after rental.OrderID
	for {
		orders, err := r.DB.OrdersWithPayments(ctx, from, to, after, 100)
		if err != nil {
			return rep, err
		}
		if len(orders) == 0 {
			break
		}
		for _, o := range orders {
			after = o.ID
			if err := r.reconcileOrder(ctx, o, &rep); err != nil {
				return rep, err
			}
			rep.Orders++
			if progress != nil {
				progress(rep.Orders, rep.Payments)
			}
		}
	}
	var cursor int64
	for {
		list, err := r.DB.ListPayAnomalies(ctx, store.AnomalyFilter{From: from, To: to, After: cursor, Limit: 200, Status: store.AnomaliesAll})
		if err != nil {
			return rep, err
		}
		if len(list) == 0 {
			break
		}
		for _, a := range list {
			cursor = a.ID
			if a.Resolved() {
				rep.Resolved = append(rep.Resolved, a) // the owner has dealt with it
				continue
			}
			rep.Anomalies = append(rep.Anomalies, a)
			if a.Kind == store.AnomalyOrphanedPayment {
				continue // refunded automatically; the refund itself is checked above
			}
			rep.Mismatches = append(rep.Mismatches, Mismatch{Kind: MismatchAnomaly, OrderID: a.OrderID, OutTradeNo: a.OutTradeNo, OutRefundNo: a.OutRefundNo,
				Here: "recorded " + a.Kind, There: fmt.Sprintf("amount %s (expected %s)", a.Amount, a.Expected), Detail: a.Detail})
		}
	}
	return rep, nil
}

func notFoundAtPay(err error) bool {
	var ae *wechatpay.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

func (r *Rental) reconcileOrder(ctx context.Context, o *rental.Order, rep *ReconcileReport) error {
	add := func(m Mismatch) {
		m.OrderID, m.OrderNo = o.ID, o.No
		rep.Mismatches = append(rep.Mismatches, m)
	}
	for _, p := range o.Payments {
		rep.Payments++
		here := fmt.Sprintf("%s %s", p.State, p.Amount)
		t, err := r.Pay.QueryByOutTradeNo(ctx, p.OutTradeNo)
		if notFoundAtPay(err) {
			if p.State == rental.PaymentSucceeded {
				add(Mismatch{Kind: MismatchPaidHereNotThere, OutTradeNo: p.OutTradeNo, Here: here, There: "no such order"})
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("query %s: %w", p.OutTradeNo, err)
		}
		there := fmt.Sprintf("%s %s", t.TradeState, rental.Fen(t.Amount.Total))
		paidThere := t.TradeState == wechatpay.TradeStateSuccess || t.TradeState == wechatpay.TradeStateRefund
		switch {
		case paidThere && p.State != rental.PaymentSucceeded:
			add(Mismatch{Kind: MismatchPaidThereNotHere, OutTradeNo: p.OutTradeNo, Here: here, There: there, Detail: "transaction " + t.TransactionID})
		case !paidThere && p.State == rental.PaymentSucceeded:
			add(Mismatch{Kind: MismatchPaidHereNotThere, OutTradeNo: p.OutTradeNo, Here: here, There: there})
		}
		if rental.Fen(t.Amount.Total) != p.Amount {
			add(Mismatch{Kind: MismatchAmount, OutTradeNo: p.OutTradeNo, Here: here, There: there})
		}
		if paidThere && p.TransactionID != "" && t.TransactionID != p.TransactionID {
			add(Mismatch{Kind: MismatchTransaction, OutTradeNo: p.OutTradeNo, Here: p.TransactionID, There: t.TransactionID})
		}
	}
	for _, rf := range o.Refunds {
		rep.Refunds++
		here := fmt.Sprintf("%s %s", rf.State, rf.Amount)
		res, err := r.Pay.QueryRefund(ctx, rf.OutRefundNo)
		if notFoundAtPay(err) {
			if rf.State != rental.RefundFailed {
				add(Mismatch{Kind: MismatchRefundMissingThere, OutTradeNo: rf.OutTradeNo, OutRefundNo: rf.OutRefundNo, Here: here, There: "no such refund",
					Detail: "not sent yet? see the outbox dead-letter list"})
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("query refund %s: %w", rf.OutRefundNo, err)
		}
		there := fmt.Sprintf("%s %s", res.Status, rental.Fen(res.Amount.Refund))
		switch {
		case res.Status == wechatpay.RefundStatusSuccess && rf.State != rental.RefundSucceeded:
			add(Mismatch{Kind: MismatchRefundDoneThereNotHere, OutTradeNo: rf.OutTradeNo, OutRefundNo: rf.OutRefundNo, Here: here, There: there})
		case res.Status != wechatpay.RefundStatusSuccess && rf.State == rental.RefundSucceeded:
			add(Mismatch{Kind: MismatchRefundHereNotThere, OutTradeNo: rf.OutTradeNo, OutRefundNo: rf.OutRefundNo, Here: here, There: there})
		}
		if rental.Fen(res.Amount.Refund) != rf.Amount {
			add(Mismatch{Kind: MismatchRefundAmount, OutTradeNo: rf.OutTradeNo, OutRefundNo: rf.OutRefundNo, Here: here, There: there})
		}
	}
	if due := o.RefundDue(); due > 0 {
		add(Mismatch{Kind: MismatchRefundDue, Here: fmt.Sprintf("%s, %s owed to the customer", o.State, due), There: "-",
			Detail: "start it with POST /api/v1/owner/orders/:id/refund"})
	}
	return nil
}
