package gateway

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/adapters/wxsim/paysim"
	"github.com/tacklegate/tacklegate/rental"
)

// TestOwnerResolvesAnomaly: money arrives for an order we never made; the
// anomaly is listed and reconciliation flags it until the owner resolves it
// with a note. Then it is listed only on request, with who, when and why,
// and cannot be resolved again.
func TestOwnerResolvesAnomaly(t *testing.T) {
	e := newRentalEnv(t, storetest.Targets()[0], true)
	ctx := context.Background()
	prepay, err := e.client.PrepayJSAPI(ctx, wechatpay.PrepayRequest{AppID: e.appID, Description: "?", OutTradeNo: "STRANGER-9",
		NotifyURL: e.base + "/callbacks/wechatpay", Total: 500, PayerOpenID: "o-someone"})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := e.client.RequestPayment(e.appID, prepay)
	if err := e.pay.Pay("STRANGER-9", paysim.PaymentParams{TimeStamp: p.TimeStamp, NonceStr: p.NonceStr, Package: p.Package, SignType: p.SignType, PaySign: p.PaySign}); err != nil {
		t.Fatal(err)
	}
	type list struct {
		Anomalies []store.PayAnomaly `json:"anomalies"`
	}
	var open list
	eventually(t, "the anomaly", func() bool {
		open = list{}
		e.api(t, "GET", "/api/v1/owner/payments/anomalies", e.owner, nil, &open)
		return len(open.Anomalies) == 1
	})
	a := open.Anomalies[0]
	if a.Kind != store.AnomalyUnknownTrade || a.OutTradeNo != "STRANGER-9" || a.Resolved() {
		t.Fatalf("anomaly %+v", a)
	}
	day := rental.DateOf(e.sim.Clock().Now())
	rep, err := e.rent.Reconcile(ctx, day.Start(), day.AddDays(1).Start(), nil)
	if err != nil || len(rep.Mismatches) != 1 || rep.Mismatches[0].Kind != MismatchAnomaly {
		t.Fatalf("reconcile before: %v %+v", err, rep.Mismatches)
	}

	path := fmt.Sprintf("/api/v1/owner/payments/anomalies/%d/resolve", a.ID)
	var bad answerError
	if st := e.api(t, "POST", path, e.owner, map[string]string{"note": ""}, &bad); st != 400 {
		t.Errorf("resolving without a note: %d", st)
	}
	if st := e.api(t, "POST", path, e.staff, map[string]string{"note": "x"}, nil); st != 403 {
		t.Errorf("staff resolving: %d", st)
	}
	var done struct{ Anomaly store.PayAnomaly }
	if st := e.api(t, "POST", path, e.owner, map[string]string{"note": "隔壁店共用商户号的订单，已核实"}, &done); st != 200 {
		t.Fatalf("resolve: %d", st)
	}
	if r := done.Anomaly; !r.Resolved() || r.ResolvedBy != "owner:owner" || r.Resolution != "隔壁店共用商户号的订单，已核实" ||
		!strings.HasSuffix(r.ResolvedAt.Format("-07:00"), "+08:00") {
		t.Errorf("resolved %+v", r)
	}
	var again answerError
	if st := e.api(t, "POST", path, e.owner, map[string]string{"note": "again"}, &again); st != 409 {
		t.Errorf("resolving twice: %d", st)
	}

	open = list{}
	e.api(t, "GET", "/api/v1/owner/payments/anomalies", e.owner, nil, &open)
	var resolved list
	e.api(t, "GET", "/api/v1/owner/payments/anomalies?status=resolved", e.owner, nil, &resolved)
	if len(open.Anomalies) != 0 || len(resolved.Anomalies) != 1 || resolved.Anomalies[0].ResolvedBy != "owner:owner" {
		t.Errorf("lists after resolving: open %+v resolved %+v", open.Anomalies, resolved.Anomalies)
	}
	if st := e.api(t, "GET", "/api/v1/owner/payments/anomalies?status=nope", e.owner, nil, nil); st != 400 {
		t.Errorf("bad status: %d", st)
	}
	rep, err = e.rent.Reconcile(ctx, day.Start(), day.AddDays(1).Start(), nil)
	if err != nil || len(rep.Mismatches) != 0 || len(rep.Anomalies) != 0 || len(rep.Resolved) != 1 {
		t.Errorf("reconcile after: %v %+v", err, rep)
	}
}

type answerError struct {
	Error struct{ Code, Message string }
}
