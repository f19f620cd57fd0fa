package main

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tacklegate/tacklegate/gateway/browsertest"
	"github.com/tacklegate/tacklegate/rental"
)

// TestCustomerPageBooksAndPaysInDemo is a person with a desktop browser on
// the demo's customer page: log in through the simulated WeChat, pick a
// 鲫鱼 rod and two days on the calendar, see the quote, order, pay in the
// simulator's pay sheet, and see 已支付 once WeChat Pay's notification has
// arrived. The server's own record must say the same.
func TestCustomerPageBooksAndPaysInDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	dir := t.TempDir()
	r := start(t, map[string]string{"TACKLEGATE_DATABASE_URL": "sqlite://" + filepath.Join(dir, "demo.db")}, "demo")
	ctx := browsertest.New(t, browsertest.Options{Timeout: 2 * time.Minute})

	var items struct {
		Items []struct {
			ID          int64    `json:"id"`
			Name        string   `json:"name"`
			PricePerDay int64    `json:"price_per_day"`
			Deposit     int64    `json:"deposit"`
			Photos      []string `json:"photos"`
		} `json:"items"`
	}
	if st := callAPI(t, "GET", r.base+"/api/v1/items?tag=鲫鱼&category=rod", "", nil, &items); st != 200 || len(items.Items) == 0 {
		t.Fatalf("seeded 鲫鱼 rods: %d %+v", st, items)
	}
	rod := items.Items[0]
	if len(rod.Photos) == 0 {
		t.Fatalf("demo item has no photo: %+v", rod)
	}
	if st, _, body := get(t, r.base+rod.Photos[0]); st != 200 || !bytes.Contains(body, []byte("<svg")) {
		t.Fatalf("GET %s: %d", rod.Photos[0], st)
	}

	// waitFor polls a JavaScript condition in the page.
	waitFor := func(what, cond string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			body, _ := browsertest.Eval[string](ctx, `document.body.innerText`)
			t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, body)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := browsertest.Eval[string](ctx, fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Log in: the demo offers the simulated wx.login.
	if err := chromedp.Do(ctx, chromedp.Navigate(r.base+"/"), chromedp.WaitVisible("#login-sim"), chromedp.Click("#login-sim")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text("#demo-banner"), "模拟器") {
		t.Errorf("the demo banner does not say the simulator plays WeChat: %q", text("#demo-banner"))
	}
	sel := fmt.Sprintf(`#items [data-item="%d"]`, rod.ID)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(sel)); err != nil {
		t.Fatal(err)
	}
	if got := text(sel); !strings.Contains(got, rod.Name) || !strings.Contains(got, yuan(rod.PricePerDay)) || !strings.Contains(got, "押金 "+yuan(rod.Deposit)) {
		t.Errorf("catalog card: %q", got)
	}

	// The item: pick the day after tomorrow to three days later on the
	// calendar (two rented days); the quote shows rent plus deposit.
	from := rental.DateOf(time.Now()).AddDays(2)
	to := from.AddDays(2)
	if err := chromedp.Do(ctx, chromedp.Click(sel), chromedp.WaitVisible(`#cal [data-day="`+from.String()+`"]`),
		chromedp.Click(`#cal [data-day="`+from.String()+`"]`), chromedp.Click(`#cal [data-day="`+to.String()+`"]`)); err != nil {
		t.Fatal(err)
	}
	total := 2*rod.PricePerDay + rod.Deposit
	waitFor("the quote", fmt.Sprintf(`(document.querySelector("#quote-total")||{}).textContent === %q && !document.querySelector("#place-order").disabled`, yuan(total)))
	if got := text("#avail"); !strings.Contains(got, "共 2 天") || !strings.Contains(got, "可租") {
		t.Errorf("availability line: %q", got)
	}

	// Order, then pay in the simulator's pay sheet.
	if err := chromedp.Do(ctx, chromedp.Click("#place-order"), chromedp.WaitVisible("#pay"), chromedp.Click("#pay"), chromedp.WaitVisible("#sim-pay")); err != nil {
		t.Fatal(err)
	}
	if got := text("#pay-params"); !strings.Contains(got, `"package": "prepay_id=`) || !strings.Contains(got, `"paySign"`) {
		t.Errorf("the wx.requestPayment parameters are not shown: %q", got)
	}
	if !strings.Contains(text("#pay-panel"), "模拟器") {
		t.Errorf("the pay panel is not labelled as the simulator: %q", text("#pay-panel"))
	}
	if err := chromedp.Do(ctx, chromedp.Click("#sim-pay")); err != nil {
		t.Fatal(err)
	}
	waitFor("已支付", `(document.querySelector("#order-state")||{}).textContent === "已支付"`)

	// The server agrees: the order is paid in full, by WeChat Pay.
	hash, err := browsertest.Eval[string](ctx, `location.hash`)
	if err != nil {
		t.Fatal(err)
	}
	token, err := browsertest.Eval[string](ctx, `JSON.parse(sessionStorage.getItem("tg.customer")).access_token`)
	if err != nil || token == "" {
		t.Fatalf("no session in the page: %v", err)
	}
	var got struct {
		Order struct {
			State  string `json:"state"`
			Total  int64  `json:"total"`
			Paid   int64  `json:"paid"`
			Period struct{ From, To string }
			Lines  []struct {
				ItemID int64 `json:"item_id"`
			} `json:"lines"`
			History []struct {
				To    string `json:"to"`
				Actor string `json:"actor"`
			} `json:"history"`
		} `json:"order"`
	}
	if st := callAPI(t, "GET", r.base+"/api/v1/orders/"+strings.TrimPrefix(hash, "#/order/"), token, nil, &got); st != 200 {
		t.Fatalf("GET order %s: %d", hash, st)
	}
	o := got.Order
	if o.State != "paid" || o.Total != total || o.Paid != total || o.Period.From != from.String() || o.Period.To != to.String() ||
		len(o.Lines) != 1 || o.Lines[0].ItemID != rod.ID {
		t.Errorf("order on the server: %+v", o)
	}
	if n := len(o.History); n == 0 || o.History[n-1].To != "paid" || o.History[n-1].Actor != "wechatpay" {
		t.Errorf("the order was not paid by WeChat Pay: %+v", o.History)
	}

	// My orders lists it as paid.
	if err := chromedp.Do(ctx, chromedp.Click(`#tabs [data-tab="orders"]`), chromedp.WaitVisible(`#orders .order-card`)); err != nil {
		t.Fatal(err)
	}
	if got := text("#orders"); !strings.Contains(got, "已支付") || !strings.Contains(got, yuan(total)) {
		t.Errorf("my orders: %q", got)
	}

	// At the counter: staff hand the rod over (pickup inspection) and take
	// it back (return inspection); the customer confirms both on the page
	// and sees the deposit come back through WeChat Pay.
	m := regexp.MustCompile(`simulator\s+(http://\S+)/sim`).FindStringSubmatch(r.stdout.String())
	if m == nil {
		t.Fatalf("banner names no simulator:\n%s", r.stdout)
	}
	var oauth struct{ Code string }
	postJSON(t, m[1]+"/sim/api/staff/laowang/oauth-code", nil, &oauth)
	var staff struct {
		Tokens struct {
			AccessToken string `json:"access_token"`
		} `json:"tokens"`
	}
	if st := callAPI(t, "POST", r.base+"/api/v1/auth/wecom", "", map[string]string{"code": oauth.Code}, &staff); st != 200 {
		t.Fatalf("staff login: %d", st)
	}
	orderID := strings.TrimPrefix(hash, "#/order/")
	var full struct {
		Order struct {
			Lines []struct {
				UnitID int64 `json:"unit_id"`
			} `json:"lines"`
		} `json:"order"`
	}
	callAPI(t, "GET", r.base+"/api/v1/staff/orders/"+orderID, staff.Tokens.AccessToken, nil, &full)
	units := []map[string]any{{"unit_id": full.Order.Lines[0].UnitID, "condition": "good", "notes": "竿身完好"}}
	if st := callAPI(t, "POST", r.base+"/api/v1/staff/orders/"+orderID+"/pickup", staff.Tokens.AccessToken, map[string]any{"units": units}, nil); st != 200 {
		t.Fatalf("pickup: %d", st)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(r.base+"/?reload=1"+hash), chromedp.WaitVisible(`[data-confirm="pickup"]`), chromedp.Click(`[data-confirm="pickup"]`)); err != nil {
		t.Fatal(err)
	}
	waitFor("the pickup confirmed", `(document.querySelector('.inspection[data-kind="pickup"]')||{}).textContent.includes("我已确认")`)
	if st := callAPI(t, "POST", r.base+"/api/v1/staff/orders/"+orderID+"/return", staff.Tokens.AccessToken, map[string]any{"units": units, "damage_fee": 0}, nil); st != 200 {
		t.Fatalf("return: %d", st)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var o struct {
			Order struct{ State string } `json:"order"`
		}
		callAPI(t, "GET", r.base+"/api/v1/orders/"+orderID, token, nil, &o)
		if o.Order.State == "settled" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deposit refund did not settle the order: %s", o.Order.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(r.base+"/?reload=2"+hash), chromedp.WaitVisible(`[data-confirm="return"]`), chromedp.Click(`[data-confirm="return"]`)); err != nil {
		t.Fatal(err)
	}
	waitFor("the return confirmed", `(document.querySelector('.inspection[data-kind="return"]')||{}).textContent.includes("我已确认")`)
	if got := text("#settlement"); !strings.Contains(got, yuan(rod.Deposit)+" · 已退回") {
		t.Errorf("deposit settlement on the page: %q", got)
	}
	if got := text("#order-state"); got != "已结算" {
		t.Errorf("order state on the page: %q", got)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "customer-order-settled.png")
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 500 || len(shot) < 10_000 {
		t.Errorf("screenshot %s is %dx%d, %d bytes: too small to show the page", file, b.Dx(), b.Dy(), len(shot))
	}

	// The owner's KPIs count what just happened: one order paid, its rent as
	// revenue, its deposit taken and given back.
	var kpis struct {
		Rental struct {
			All struct {
				Orders           int   `json:"orders"`
				Revenue          int64 `json:"revenue"`
				Deposits         int64 `json:"deposits"`
				DepositsRefunded int64 `json:"deposits_refunded"`
			} `json:"all"`
		} `json:"rental"`
	}
	if st := callAPI(t, "GET", r.base+"/api/v1/owner/kpis", ownerToken(t, r), nil, &kpis); st != 200 {
		t.Fatalf("owner KPIs: %d", st)
	}
	if k := kpis.Rental.All; k.Orders != 1 || k.Revenue != 2*rod.PricePerDay || k.Deposits != rod.Deposit || k.DepositsRefunded != rod.Deposit {
		t.Errorf("owner KPIs after one rental: %+v (rent %d, deposit %d)", k, 2*rod.PricePerDay, rod.Deposit)
	}
}

// yuan is tg.yuan: fen → "¥12.50".
func yuan(fen int64) string { return fmt.Sprintf("¥%d.%02d", fen/100, fen%100) }
