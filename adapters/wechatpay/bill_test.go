package wechatpay_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/adapters/wxsim/paysim"
)

// TestTradeBillFromSimulator: two payments and a refund made "today" in
// the simulator's clock; a day later the bill of that day lists exactly
// them, with a summary that adds up; today's bill is not made yet, and a
// quiet day has none. A file whose hash does not match, and a download URL
// on another host, are refused.
func TestTradeBillFromSimulator(t *testing.T) {
	var offset atomic.Int64 // the simulator's business clock runs ahead by this
	w := newWorld(t, func(c *paysim.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		c.WireNow = time.Now // signatures stay on the merchant's clock
	})
	ctx := context.Background()
	cst := time.FixedZone("CST", 8*3600)
	day := time.Now().In(cst).Format("2006-01-02")

	pay := func(no string, total int64) string {
		t.Helper()
		prepayID, err := w.client.PrepayJSAPI(ctx, w.order(no, total))
		if err != nil {
			t.Fatal(err)
		}
		params, _ := w.client.RequestPayment(appID, prepayID)
		if status, body := w.payViaControl(no, params); status != http.StatusOK {
			t.Fatalf("pay %s: %d %s", no, status, body)
		}
		tx, err := w.client.QueryByOutTradeNo(ctx, no)
		if err != nil {
			t.Fatal(err)
		}
		return tx.TransactionID
	}
	txn1 := pay("BILL-T1", 23000)
	pay("BILL-T2", 1500)
	if _, err := w.client.Refund(ctx, wechatpay.RefundRequest{TransactionID: txn1, OutRefundNo: "BILL-T1-R1", Refund: 20000, Total: 23000}); err != nil {
		t.Fatal(err)
	}

	if _, err := w.client.TradeBill(ctx, day, ""); !errors.Is(err, wechatpay.ErrBillNotReady) {
		t.Errorf("today's bill: %v, want ErrBillNotReady", err)
	}
	offset.Store(int64(24 * time.Hour))
	time.Sleep(100 * time.Millisecond) // the refund completes (50 s × RetryScale)

	bill, err := w.client.FetchTradeBill(ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	if len(bill.Rows) != 3 {
		t.Fatalf("%d rows, want 3: %+v", len(bill.Rows), bill.Rows)
	}
	byKey := map[string]wechatpay.BillRow{}
	for _, r := range bill.Rows {
		key := r.OutTradeNo
		if r.IsRefund() {
			key = r.OutRefundNo
		}
		byKey[key] = r
		if r.MchID != mchID || r.AppID != appID || r.OpenID != openID || r.TradeType != "JSAPI" || r.Time.Format("2006-01-02") != day {
			t.Errorf("row %+v", r)
		}
	}
	if r := byKey["BILL-T1"]; r.TradeState != "SUCCESS" || r.Settled != 23000 || r.Total != 23000 || r.TransactionID != txn1 || r.Refund != 0 ||
		r.Attach != "rental:42" || r.Fee != "1.38000" {
		t.Errorf("payment row %+v", r)
	}
	if r := byKey["BILL-T2"]; r.TradeState != "SUCCESS" || r.Settled != 1500 {
		t.Errorf("payment row %+v", r)
	}
	if r := byKey["BILL-T1-R1"]; !r.IsRefund() || r.OutTradeNo != "BILL-T1" || r.Refund != 20000 || r.RefundStatus != "SUCCESS" || r.RefundID == "" {
		t.Errorf("refund row %+v", r)
	}
	if s := bill.Summary; s.Count != 3 || s.Settled != 24500 || s.Refunded != 20000 || s.Total != 47500 || s.Fees != "0.27000" || s.RefundAsked != 20000 {
		t.Errorf("summary %+v", s)
	}

	// A day with no trades has no bill: an empty one.
	quiet := time.Now().In(cst).AddDate(0, 0, -2).Format("2006-01-02")
	if b, err := w.client.FetchTradeBill(ctx, quiet); err != nil || len(b.Rows) != 0 {
		t.Errorf("quiet day: %+v, %v", b, err)
	}
	if _, err := w.client.TradeBill(ctx, "2026-13-01", ""); err == nil {
		t.Error("a bad day was accepted")
	}

	// The file must match the hash from the signed answer.
	ref, err := w.client.TradeBill(ctx, day, wechatpay.BillAll)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref.DownloadURL, w.api.URL+"/pay/v3/billdownload/file?token=") {
		t.Errorf("download_url %q", ref.DownloadURL)
	}
	bad := *ref
	bad.HashValue = strings.Repeat("0", 40)
	if _, err := w.client.DownloadBill(ctx, bad); err == nil || !strings.Contains(err.Error(), "SHA1") {
		t.Errorf("altered hash: %v", err)
	}
	elsewhere := *ref
	elsewhere.DownloadURL = "http://attacker.example/v3/billdownload/file?token=x"
	if _, err := w.client.DownloadBill(ctx, elsewhere); err == nil {
		t.Error("a download URL on another host was fetched with our signature")
	}
	expired := *ref
	expired.DownloadURL = w.api.URL + "/pay/v3/billdownload/file?token=nope"
	_, err = w.client.DownloadBill(ctx, expired)
	asAPIError(t, err, http.StatusBadRequest, "INVALID_REQUEST")
	if data, err := w.client.DownloadBill(ctx, *ref); err != nil || !strings.HasPrefix(string(data), "交易时间,公众账号ID,商户号") {
		t.Errorf("download: %v %.60q", err, data)
	}
}
