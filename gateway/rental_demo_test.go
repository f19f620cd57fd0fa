package gateway

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

// TestDemoRoutes: with the simulator (demo), the page learns where the
// simulator is, gets a wx.login code that logs in like the mini-program's,
// and may confirm only a pending payment of its own order, which then is
// paid by WeChat Pay's notification; the pay route is for customers alone.
func TestDemoRoutes(t *testing.T) {
	e := newRentalEnvWith(t, storetest.Targets()[0], true, rentalEnvOptions{demo: true})
	rod := e.stock(t, "台钓竿 3.6m", rental.CategoryRod, 1500, 20000, 1, "鲫鱼")

	var info struct {
		Simulator bool
		Page      string
	}
	if st := e.api(t, "GET", "/api/v1/demo/simulator", "", nil, &info); st != 200 || !info.Simulator || info.Page != e.sim.URL()+"/sim" {
		t.Fatalf("simulator info: %d %+v", st, info)
	}
	var login struct{ Code, OpenID string }
	if st := e.api(t, "POST", "/api/v1/demo/wx-login", "", map[string]string{"openid": "o-demo-page"}, &login); st != 200 || login.Code == "" || login.OpenID != "o-demo-page" {
		t.Fatalf("wx-login: %d %+v", st, login)
	}
	if st := e.api(t, "POST", "/api/v1/demo/wx-login", "", map[string]string{"openid": "../../x"}, nil); st != 400 {
		t.Errorf("a path in the openid: %d", st)
	}
	tok := e.tokenOf(t, "POST", "/api/v1/auth/wechat", "", map[string]string{"code": login.Code})
	other := e.customerLogin(t, "o-demo-other")

	o := e.placeOrder(t, tok, rod, 1, 1)
	pay := e.startPay(t, tok, o.ID)
	body := map[string]string{"out_trade_no": pay.Payment.OutTradeNo, "timeStamp": pay.RequestPayment.TimeStamp, "nonceStr": pay.RequestPayment.NonceStr,
		"package": pay.RequestPayment.Package, "signType": pay.RequestPayment.SignType, "paySign": pay.RequestPayment.PaySign}
	path := fmt.Sprintf("/api/v1/demo/orders/%d/pay", o.ID)
	for name, c := range map[string]struct {
		tok  string
		body map[string]string
		want int
	}{
		"anonymous":              {"", body, 401},
		"staff":                  {e.staff, body, 403},
		"another customer":       {other, body, 404},
		"another attempt number": {tok, map[string]string{"out_trade_no": "NOPE"}, 409},
	} {
		if st := e.api(t, "POST", path, c.tok, c.body, nil); st != c.want {
			t.Errorf("%s: %d, want %d", name, st, c.want)
		}
	}
	forged := map[string]string{}
	for k, v := range body {
		forged[k] = v
	}
	forged["paySign"] = strings.Repeat("A", len(body["paySign"]))
	if st := e.api(t, "POST", path, tok, forged, nil); st != 400 {
		t.Errorf("a forged paySign: %d (the simulator checks it like WeChat)", st)
	}
	if e.order(t, tok, o.ID).State != rental.StateAwaitingPayment {
		t.Fatal("refused confirmations changed the order")
	}
	if st := e.api(t, "POST", path, tok, body, nil); st != 200 {
		t.Fatalf("confirm: %d", st)
	}
	eventually(t, "paid by the notification", func() bool { return e.order(t, tok, o.ID).State == rental.StatePaid })
	if st := e.api(t, "POST", path, tok, body, nil); st != 409 {
		t.Errorf("confirming a finished payment: %d", st)
	}
}
