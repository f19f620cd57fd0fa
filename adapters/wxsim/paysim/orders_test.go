package paysim_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/adapters/wxsim/paysim"
)

// TestPrepayValidation covers the PARAM_ERROR and APPID_MCHID_NOT_MATCH part
// of S17, each answer checked for its code and the field it names.
func TestPrepayValidation(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		edit   func(*wechatpay.PrepayRequest)
		status int
		code   string
		field  string
	}{
		{"valid", func(*wechatpay.PrepayRequest) {}, 200, "", ""},
		{"valid with every optional field", func(r *wechatpay.PrepayRequest) {
			r.Attach, r.GoodsTag, r.PayerClientIP = strings.Repeat("附", 128), "WXG", "127.0.0.1"
			r.TimeExpire = time.Now().Add(time.Hour)
			r.OutTradeNo = "Ab0_-|*x"
		}, 200, "", ""},
		{"description of 127 characters", func(r *wechatpay.PrepayRequest) { r.Description = strings.Repeat("竿", 127) }, 200, "", ""},
		{"no appid", func(r *wechatpay.PrepayRequest) { r.AppID = "" }, 400, "PARAM_ERROR", "appid"},
		{"no description", func(r *wechatpay.PrepayRequest) { r.Description = "" }, 400, "PARAM_ERROR", "description"},
		{"description of 128 characters", func(r *wechatpay.PrepayRequest) { r.Description = strings.Repeat("竿", 128) }, 400, "PARAM_ERROR", "description"},
		{"out_trade_no of 5", func(r *wechatpay.PrepayRequest) { r.OutTradeNo = "T1234" }, 400, "PARAM_ERROR", "out_trade_no"},
		{"out_trade_no of 33", func(r *wechatpay.PrepayRequest) { r.OutTradeNo = strings.Repeat("T", 33) }, 400, "PARAM_ERROR", "out_trade_no"},
		{"out_trade_no with a dot", func(r *wechatpay.PrepayRequest) { r.OutTradeNo = "T10000.1" }, 400, "PARAM_ERROR", "out_trade_no"},
		{"attach of 129", func(r *wechatpay.PrepayRequest) { r.Attach = strings.Repeat("a", 129) }, 400, "PARAM_ERROR", "attach"},
		{"no notify_url", func(r *wechatpay.PrepayRequest) { r.NotifyURL = "" }, 400, "PARAM_ERROR", "notify_url"},
		{"notify_url with query", func(r *wechatpay.PrepayRequest) { r.NotifyURL += "?order=1" }, 400, "PARAM_ERROR", "notify_url"},
		{"notify_url relative", func(r *wechatpay.PrepayRequest) { r.NotifyURL = "/notify" }, 400, "PARAM_ERROR", "notify_url"},
		{"total 0", func(r *wechatpay.PrepayRequest) { r.Total = 0 }, 400, "PARAM_ERROR", "amount.total"},
		{"total negative", func(r *wechatpay.PrepayRequest) { r.Total = -100 }, 400, "PARAM_ERROR", "amount.total"},
		{"currency USD", func(r *wechatpay.PrepayRequest) { r.Currency = "USD" }, 400, "PARAM_ERROR", "amount.currency"},
		{"no openid", func(r *wechatpay.PrepayRequest) { r.PayerOpenID = "" }, 400, "PARAM_ERROR", "payer.openid"},
		{"another appid", func(r *wechatpay.PrepayRequest) { r.AppID = "wxd678efh567hg6787" }, 400, "APPID_MCHID_NOT_MATCH", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.order("V"+strings.Repeat("0", 5)+string(rune('A'+i)), 100)
			tt.edit(&r)
			id, err := e.client.PrepayJSAPI(context.Background(), r)
			if tt.code == "" {
				if err != nil || !strings.HasPrefix(id, "wx") {
					t.Fatalf("prepay = %q, %v", id, err)
				}
				return
			}
			ae := apiError(t, err, tt.status, tt.code)
			if tt.field != "" && (ae.Detail == nil || ae.Detail.Field != tt.field || ae.Detail.Location != "body") {
				t.Fatalf("detail = %+v, want field %s", ae.Detail, tt.field)
			}
		})
	}

	// Requests the client cannot produce, signed by hand.
	raw := []struct {
		name, method, target, body string
		status                     int
		code, field                string
	}{
		{"body not JSON", "POST", "/v3/pay/transactions/jsapi", `{"appid":`, 400, "PARAM_ERROR", ""},
		{"amount not an integer", "POST", "/v3/pay/transactions/jsapi",
			`{"appid":"` + testAppID + `","mchid":"` + testMchID + `","description":"d","out_trade_no":"R000001","notify_url":"https://x.example/n","amount":{"total":1.5},"payer":{"openid":"o"}}`,
			400, "PARAM_ERROR", ""},
		{"no amount", "POST", "/v3/pay/transactions/jsapi",
			`{"appid":"` + testAppID + `","mchid":"` + testMchID + `","description":"d","out_trade_no":"R000002","notify_url":"https://x.example/n","payer":{"openid":"o"}}`,
			400, "PARAM_ERROR", "amount.total"},
		{"body mchid of another merchant", "POST", "/v3/pay/transactions/jsapi",
			`{"appid":"` + testAppID + `","mchid":"1230000109","description":"d","out_trade_no":"R000003","notify_url":"https://x.example/n","amount":{"total":1},"payer":{"openid":"o"}}`,
			400, "APPID_MCHID_NOT_MATCH", ""},
		{"query without mchid", "GET", "/v3/pay/transactions/out-trade-no/R000001", "", 400, "PARAM_ERROR", "mchid"},
		{"query with another mchid", "GET", "/v3/pay/transactions/out-trade-no/R000001?mchid=1230000109", "", 400, "PARAM_ERROR", "mchid"},
		{"close without mchid", "POST", "/v3/pay/transactions/out-trade-no/R000001/close", `{}`, 400, "PARAM_ERROR", "mchid"},
		{"unknown API", "GET", "/v3/pay/transactions/h5", "", 404, "RESOURCE_NOT_EXISTS", ""},
	}
	for _, tt := range raw {
		t.Run(tt.name, func(t *testing.T) {
			status, out := e.raw(tt.method, tt.target, tt.body)
			if status != tt.status || out["code"] != tt.code {
				t.Fatalf("HTTP %d %v, want %d %s", status, out, tt.status, tt.code)
			}
			if tt.field != "" {
				d, _ := out["detail"].(map[string]any)
				if d["field"] != tt.field {
					t.Fatalf("detail = %v, want field %s", d, tt.field)
				}
			}
		})
	}
}

// TestPrepayIdempotency covers the rest of S17: same parameters → same
// prepay_id while it is valid and a new one after 2 h; changed parameters →
// 403 OUT_TRADE_NO_USED; paid → 400 INVALID_REQUEST; closed → 400
// ORDER_CLOSED; time_expire closes the order.
func TestPrepayIdempotency(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first := e.prepay("T500001", 100)
	if again := e.prepay("T500001", 100); again != first {
		t.Fatalf("same parameters: prepay_id %s, then %s", first, again)
	}
	for name, edit := range map[string]func(*wechatpay.PrepayRequest){
		"amount":      func(r *wechatpay.PrepayRequest) { r.Total = 101 },
		"description": func(r *wechatpay.PrepayRequest) { r.Description = "鱼线" },
		"openid":      func(r *wechatpay.PrepayRequest) { r.PayerOpenID = "o-someone-else" },
	} {
		r := e.order("T500001", 100)
		edit(&r)
		_, err := e.client.PrepayJSAPI(ctx, r)
		if ae := apiError(t, err, http.StatusForbidden, "OUT_TRADE_NO_USED"); ae == nil {
			t.Fatalf("changed %s accepted", name)
		}
	}

	e.clock.Advance(2*time.Hour - time.Second)
	if again := e.prepay("T500001", 100); again != first {
		t.Fatalf("before 2 h: new prepay_id %s", again)
	}
	e.clock.Advance(time.Second)
	renewed := e.prepay("T500001", 100)
	if renewed == first {
		t.Fatal("after 2 h the prepay_id was not renewed")
	}
	// The old prepay_id no longer pays; the new one does.
	old, _ := e.client.RequestPayment(testAppID, first)
	if err := e.sim.Pay("T500001", paysim.PaymentParams(old)); !errors.Is(err, paysim.ErrNotPayable) {
		t.Fatalf("pay with the old prepay_id: %v", err)
	}
	e.pay("T500001", renewed)
	_, err := e.client.PrepayJSAPI(ctx, e.order("T500001", 100))
	apiError(t, err, http.StatusBadRequest, "INVALID_REQUEST")

	e.prepay("T500002", 100)
	if err := e.client.Close(ctx, "T500002"); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.PrepayJSAPI(ctx, e.order("T500002", 100))
	apiError(t, err, http.StatusBadRequest, "ORDER_CLOSED")

	// time_expire: unpaid past it → CLOSED, unpayable, and not re-orderable.
	r := e.order("T500003", 100)
	r.TimeExpire = e.clock.Now().Add(15 * time.Minute)
	id, err := e.client.PrepayJSAPI(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(15 * time.Minute)
	tx, err := e.client.QueryByOutTradeNo(ctx, "T500003")
	if err != nil || tx.TradeState != wechatpay.TradeStateClosed {
		t.Fatalf("after time_expire: %+v, %v", tx, err)
	}
	p, _ := e.client.RequestPayment(testAppID, id)
	if err := e.sim.Pay("T500003", paysim.PaymentParams(p)); !errors.Is(err, paysim.ErrNotPayable) {
		t.Fatalf("pay after time_expire: %v", err)
	}
	_, err = e.client.PrepayJSAPI(ctx, r)
	apiError(t, err, http.StatusBadRequest, "ORDER_CLOSED")

	// An expired prepay_id (2 h) does not pay even while the order is open.
	id = e.prepay("T500004", 100)
	p, _ = e.client.RequestPayment(testAppID, id)
	e.clock.Advance(2 * time.Hour)
	if err := e.sim.Pay("T500004", paysim.PaymentParams(p)); !errors.Is(err, paysim.ErrNotPayable) {
		t.Fatalf("pay with an expired prepay_id: %v", err)
	}
}

// TestStateMachine covers S18 through query and close: NOTPAY → SUCCESS →
// REFUND, NOTPAY → CLOSED, and what each state refuses.
func TestStateMachine(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	state := func(no string) string {
		t.Helper()
		tx, err := e.client.QueryByOutTradeNo(ctx, no)
		if err != nil {
			t.Fatalf("query %s: %v", no, err)
		}
		return tx.TradeState
	}

	_, err := e.client.QueryByOutTradeNo(ctx, "T600404")
	apiError(t, err, http.StatusNotFound, "ORDER_NOT_EXIST")
	err = e.client.Close(ctx, "T600404")
	apiError(t, err, http.StatusNotFound, "ORDER_NOT_EXIST")

	id := e.prepay("T600001", 2500)
	tx, err := e.client.QueryByOutTradeNo(ctx, "T600001")
	if err != nil || tx.TradeState != "NOTPAY" || tx.TransactionID != "" || !tx.SuccessTime.IsZero() || tx.Amount.Total != 2500 {
		t.Fatalf("unpaid: %+v, %v", tx, err)
	}
	e.sim.Abandon("T600001") // the pay sheet closed: nothing changes for the merchant
	if s := state("T600001"); s != "NOTPAY" {
		t.Fatalf("after abandon: %s", s)
	}
	e.pay("T600001", id)
	tx, err = e.client.QueryByOutTradeNo(ctx, "T600001")
	if err != nil || tx.TradeState != "SUCCESS" || len(tx.TransactionID) != 28 || tx.SuccessTime.IsZero() ||
		tx.Payer.OpenID != testOpenID || tx.Amount.PayerTotal != 2500 || tx.TradeType != "JSAPI" || tx.AppID != testAppID || tx.MchID != testMchID {
		t.Fatalf("paid: %+v, %v", tx, err)
	}
	byID, err := e.client.QueryByTransactionID(ctx, tx.TransactionID)
	if err != nil || byID.OutTradeNo != "T600001" {
		t.Fatalf("query by transaction_id: %+v, %v", byID, err)
	}
	_, err = e.client.QueryByTransactionID(ctx, "4200000000000000000000000000")
	apiError(t, err, http.StatusNotFound, "ORDER_NOT_EXIST")
	err = e.client.Close(ctx, "T600001")
	apiError(t, err, http.StatusBadRequest, "INVALID_REQUEST")
	if err := e.sim.Pay("T600001", paysim.PaymentParams{}); err == nil {
		t.Fatal("paid twice")
	}

	if _, err := e.client.Refund(ctx, wechatpay.RefundRequest{OutTradeNo: "T600001", OutRefundNo: "R600001", Refund: 500, Total: 2500}); err != nil {
		t.Fatal(err)
	}
	if s := state("T600001"); s != "REFUND" {
		t.Fatalf("after a partial refund: %s", s)
	}

	id = e.prepay("T600002", 100)
	if err := e.client.Close(ctx, "T600002"); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Close(ctx, "T600002"); err != nil {
		t.Fatalf("closing twice: %v", err)
	}
	if s := state("T600002"); s != "CLOSED" {
		t.Fatalf("after close: %s", s)
	}
	p, _ := e.client.RequestPayment(testAppID, id)
	if err := e.sim.Pay("T600002", paysim.PaymentParams(p)); !errors.Is(err, paysim.ErrNotPayable) {
		t.Fatalf("paying a closed order: %v", err)
	}
	if got := e.recv.notifications(); len(got) > 1 {
		t.Fatalf("notifications for unpaid orders: %d", len(got))
	}
}

// TestPayChecksPaySign: the customer's pay sheet verifies what the
// merchant signed (§3.5).
func TestPayChecksPaySign(t *testing.T) {
	e := newEnv(t)
	id := e.prepay("T700001", 100)
	good, _ := e.client.RequestPayment(testAppID, id)
	otherApp, _ := e.client.RequestPayment("wxd678efh567hg6787", id)
	tests := []struct {
		name string
		edit func(*paysim.PaymentParams)
		want error
	}{
		{"signed for another appid", func(p *paysim.PaymentParams) { *p = paysim.PaymentParams(otherApp) }, paysim.ErrBadPaySign},
		{"timeStamp changed", func(p *paysim.PaymentParams) { p.TimeStamp = "1" }, paysim.ErrBadPaySign},
		{"nonce changed", func(p *paysim.PaymentParams) { p.NonceStr += "x" }, paysim.ErrBadPaySign},
		{"signType MD5", func(p *paysim.PaymentParams) { p.SignType = "MD5" }, paysim.ErrBadPaySign},
		{"paySign garbage", func(p *paysim.PaymentParams) { p.PaySign = "!!" }, paysim.ErrBadPaySign},
		{"unknown order", func(*paysim.PaymentParams) {}, paysim.ErrOrderNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := paysim.PaymentParams(good)
			tt.edit(&p)
			no := "T700001"
			if tt.want == paysim.ErrOrderNotFound {
				no = "T700404"
			}
			if err := e.sim.Pay(no, p); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if err := e.sim.Pay("T700001", paysim.PaymentParams(good)); err != nil {
		t.Fatal(err)
	}
}

// TestMinCloseAge: the v2-era "not closable in the first 5 minutes" rule is
// off by default and can be switched on.
func TestMinCloseAge(t *testing.T) {
	e := newEnv(t, func(c *paysim.Config) { c.MinCloseAge = 5 * time.Minute })
	e.prepay("T800001", 100)
	err := e.client.Close(context.Background(), "T800001")
	apiError(t, err, http.StatusBadRequest, "INVALID_REQUEST")
	e.clock.Advance(5 * time.Minute)
	if err := e.client.Close(context.Background(), "T800001"); err != nil {
		t.Fatal(err)
	}
}
