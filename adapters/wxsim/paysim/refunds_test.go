package paysim_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/adapters/wxsim/paysim"
)

// paid creates and pays an order of total fen.
func (e *env) paid(no string, total int64) {
	e.t.Helper()
	e.pay(no, e.prepay(no, total))
}

// TestRefundFlow covers S20's happy path and idempotency: PROCESSING, then
// SUCCESS after the (simulator-clock) delay with a REFUND.SUCCESS
// notification; the same out_refund_no never refunds twice.
func TestRefundFlow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.paid("T010001", 10000)
	req := wechatpay.RefundRequest{OutTradeNo: "T010001", OutRefundNo: "R010001", Reason: "归还押金", Refund: 3000, Total: 10000,
		NotifyURL: e.recv.srv.URL + "/refund"}
	rf, err := e.client.Refund(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if rf.Status != wechatpay.RefundStatusProcessing || rf.RefundID == "" || rf.Amount.Refund != 3000 || rf.Amount.Total != 10000 ||
		rf.CreateTime.IsZero() || !rf.SuccessTime.IsZero() || rf.OutTradeNo != "T010001" || rf.TransactionID == "" || rf.Channel != "ORIGINAL" {
		t.Fatalf("refund = %+v", rf)
	}
	again, err := e.client.Refund(ctx, req)
	if err != nil || again.RefundID != rf.RefundID {
		t.Fatalf("same out_refund_no: %+v, %v", again, err)
	}
	changed := req
	changed.Refund = 3001
	_, err = e.client.Refund(ctx, changed)
	apiError(t, err, http.StatusBadRequest, "INVALID_REQUEST")

	e.clock.Advance(3*time.Second - time.Millisecond)
	if q, err := e.client.QueryRefund(ctx, "R010001"); err != nil || q.Status != "PROCESSING" {
		t.Fatalf("before the delay: %+v, %v", q, err)
	}
	e.clock.Advance(time.Millisecond)
	q, err := e.client.QueryRefund(ctx, "R010001")
	if err != nil || q.Status != "SUCCESS" || q.SuccessTime.IsZero() || q.RefundID != rf.RefundID {
		t.Fatalf("after the delay: %+v, %v", q, err)
	}
	waitFor(t, "REFUND.SUCCESS", func() bool { return len(e.recv.notifications()) == 2 })
	n := e.recv.notifications()[1]
	if n.EventType != wechatpay.EventRefundSuccess || n.OriginalType != "refund" || n.Refund == nil {
		t.Fatalf("notification = %+v", n)
	}
	if r := n.Refund; r.OutRefundNo != "R010001" || r.RefundID != rf.RefundID || r.RefundStatus != "SUCCESS" || r.Amount.Refund != 3000 ||
		r.Amount.Total != 10000 || r.SuccessTime.IsZero() || r.OutTradeNo != "T010001" || r.MchID != testMchID {
		t.Fatalf("refund notice = %+v", r)
	}

	// The rest of the money, then one fen too many.
	if _, err := e.client.Refund(ctx, wechatpay.RefundRequest{OutTradeNo: "T010001", OutRefundNo: "R010002", Refund: 7000, Total: 10000}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.Refund(ctx, wechatpay.RefundRequest{OutTradeNo: "T010001", OutRefundNo: "R010003", Refund: 1, Total: 10000})
	apiError(t, err, http.StatusBadRequest, "INVALID_REQUEST")

	// Without notify_url nothing is sent; CompleteRefunds finishes it now.
	if n := e.sim.CompleteRefunds(); n != 1 {
		t.Fatalf("CompleteRefunds = %d", n)
	}
	if q, _ := e.client.QueryRefund(ctx, "R010002"); q.Status != "SUCCESS" {
		t.Fatalf("R010002 = %+v", q)
	}
	time.Sleep(30 * time.Millisecond)
	if len(e.recv.notifications()) != 2 {
		t.Fatal("a refund without notify_url was notified")
	}
	views := e.sim.Orders()
	if len(views) != 1 || views[0].TradeState != "REFUND" || len(views[0].Refunds) != 2 {
		t.Fatalf("views = %+v", views)
	}
}

func TestRefundRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.paid("T020001", 1000)
	e.prepay("T020002", 1000) // unpaid
	tx, _ := e.client.QueryByOutTradeNo(ctx, "T020001")
	tests := []struct {
		name   string
		req    wechatpay.RefundRequest
		status int
		code   string
	}{
		{"by transaction_id", wechatpay.RefundRequest{TransactionID: tx.TransactionID, OutRefundNo: "R020001", Refund: 1, Total: 1000}, 200, ""},
		{"both ids, same order", wechatpay.RefundRequest{TransactionID: tx.TransactionID, OutTradeNo: "T020001", OutRefundNo: "R020002", Refund: 1, Total: 1000}, 200, ""},
		{"out_refund_no of 64 with @", wechatpay.RefundRequest{OutTradeNo: "T020001", OutRefundNo: strings.Repeat("@", 64), Refund: 1, Total: 1000}, 200, ""},
		{"both ids, different orders", wechatpay.RefundRequest{TransactionID: tx.TransactionID, OutTradeNo: "T020002", OutRefundNo: "R020003", Refund: 1, Total: 1000}, 400, "INVALID_REQUEST"},
		{"total differs from the order", wechatpay.RefundRequest{OutTradeNo: "T020001", OutRefundNo: "R020004", Refund: 1, Total: 999}, 400, "PARAM_ERROR"},
		{"unpaid order", wechatpay.RefundRequest{OutTradeNo: "T020002", OutRefundNo: "R020005", Refund: 1, Total: 1000}, 400, "INVALID_REQUEST"},
		{"unknown order", wechatpay.RefundRequest{OutTradeNo: "T020404", OutRefundNo: "R020006", Refund: 1, Total: 1000}, 404, "RESOURCE_NOT_EXISTS"},
		{"no order id", wechatpay.RefundRequest{OutRefundNo: "R020007", Refund: 1, Total: 1000}, 400, "PARAM_ERROR"},
		{"no out_refund_no", wechatpay.RefundRequest{OutTradeNo: "T020001", Refund: 1, Total: 1000}, 400, "PARAM_ERROR"},
		{"out_refund_no of 65", wechatpay.RefundRequest{OutTradeNo: "T020001", OutRefundNo: strings.Repeat("R", 65), Refund: 1, Total: 1000}, 400, "PARAM_ERROR"},
		{"refund 0", wechatpay.RefundRequest{OutTradeNo: "T020001", OutRefundNo: "R020008", Refund: 0, Total: 1000}, 400, "PARAM_ERROR"},
		{"reason of 81", wechatpay.RefundRequest{OutTradeNo: "T020001", OutRefundNo: "R020009", Reason: strings.Repeat("因", 81), Refund: 1, Total: 1000}, 400, "PARAM_ERROR"},
		{"funds_account BASIC", wechatpay.RefundRequest{OutTradeNo: "T020001", OutRefundNo: "R020010", FundsAccount: "BASIC", Refund: 1, Total: 1000}, 400, "PARAM_ERROR"},
		{"more than the order", wechatpay.RefundRequest{OutTradeNo: "T020001", OutRefundNo: "R020011", Refund: 1001, Total: 1000}, 400, "INVALID_REQUEST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.Refund(ctx, tt.req)
			if tt.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			apiError(t, err, tt.status, tt.code)
		})
	}
	_, err := e.client.QueryRefund(ctx, "R020404")
	apiError(t, err, http.StatusNotFound, "RESOURCE_NOT_EXISTS")

	t.Run("refundable for a year", func(t *testing.T) {
		e.paid("T020003", 1000)
		e.clock.Advance(366 * 24 * time.Hour)
		_, err := e.client.Refund(ctx, wechatpay.RefundRequest{OutTradeNo: "T020003", OutRefundNo: "R020012", Refund: 1, Total: 1000})
		apiError(t, err, http.StatusBadRequest, "INVALID_REQUEST")
	})
}

func TestRefundAtMost50PerOrder(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.paid("T030001", 100)
	for i := range 50 {
		if _, err := e.client.Refund(ctx, wechatpay.RefundRequest{OutTradeNo: "T030001", OutRefundNo: fmt.Sprintf("R0300%02d", i), Refund: 1, Total: 100}); err != nil {
			t.Fatalf("refund %d: %v", i+1, err)
		}
	}
	_, err := e.client.Refund(ctx, wechatpay.RefundRequest{OutTradeNo: "T030001", OutRefundNo: "R030050", Refund: 1, Total: 100})
	apiError(t, err, http.StatusBadRequest, "INVALID_REQUEST")
}

func TestRefundNotEnoughBalance(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.paid("T040001", 1000)
	if status, _ := e.control("POST", "/control/balance", map[string]int64{"available": 500}); status != http.StatusOK {
		t.Fatalf("set balance: %d", status)
	}
	_, err := e.client.Refund(ctx, wechatpay.RefundRequest{OutTradeNo: "T040001", OutRefundNo: "R040001", Refund: 600, Total: 1000})
	apiError(t, err, http.StatusForbidden, "NOT_ENOUGH")
	if _, err := e.client.Refund(ctx, wechatpay.RefundRequest{OutTradeNo: "T040001", OutRefundNo: "R040002", Refund: 500, Total: 1000}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.Refund(ctx, wechatpay.RefundRequest{OutTradeNo: "T040001", OutRefundNo: "R040003", Refund: 1, Total: 1000})
	apiError(t, err, http.StatusForbidden, "NOT_ENOUGH")
	e.sim.SetAvailableBalance(-1)
	if _, err := e.client.Refund(ctx, wechatpay.RefundRequest{OutTradeNo: "T040001", OutRefundNo: "R040003", Refund: 1, Total: 1000}); err != nil {
		t.Fatalf("unlimited again: %v", err)
	}
}

func TestRefundAbnormal(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.paid("T050001", 1000)
	if _, err := e.client.Refund(ctx, wechatpay.RefundRequest{OutTradeNo: "T050001", OutRefundNo: "R050001", Refund: 1000, Total: 1000, NotifyURL: e.recv.srv.URL + "/r"}); err != nil {
		t.Fatal(err)
	}
	if status, out := e.control("POST", "/control/refunds/abnormal", map[string]string{"out_refund_no": "R050001"}); status != http.StatusOK {
		t.Fatalf("abnormal: %d %v", status, out)
	}
	if err := e.sim.FailRefund("R050001"); !errors.Is(err, paysim.ErrRefundFinished) {
		t.Fatalf("second FailRefund: %v", err)
	}
	if q, _ := e.client.QueryRefund(ctx, "R050001"); q.Status != wechatpay.RefundStatusAbnormal {
		t.Fatalf("status = %s", q.Status)
	}
	// Look the refund event up rather than assume its position: the payment
	// notification may legitimately arrive twice (a delivery whose answer
	// was lost is retried, as WeChat Pay does).
	var abnormal *wechatpay.Notification
	waitFor(t, "REFUND.ABNORMAL", func() bool {
		for _, n := range e.recv.notifications() {
			if n.EventType == wechatpay.EventRefundAbnormal {
				abnormal = n
				return true
			}
		}
		return false
	})
	if abnormal.Refund == nil || abnormal.Refund.RefundStatus != "ABNORMAL" || abnormal.Refund.OutRefundNo != "R050001" {
		t.Fatalf("notification = %+v", abnormal)
	}
}
